// Command stand-in-kubelet is a STAND-IN for the kubelet's streaming endpoints, for TESTS ONLY.
//
// Our tests run a real kube-apiserver but no real kubelet or container runtime. Pods are
// "backed" by Patroni/Postgres processes running directly on this host. This program serves
// the kubelet's HTTPS exec endpoint so that a real `pods/exec` through the real API server
// (which forwards exec to the kubelet of the pod's node) runs a command for that pod.
//
// The stream handling (SPDY and WebSocket protocol negotiation, channels, the final
// metav1.Status with the exit code) is the kubelet's own code:
// k8s.io/kubelet/pkg/cri/streaming/remotecommand.ServeExec. Only the "container runtime" is
// ours: --pods names a JSON file mapping "<namespace>/<pod>" to {"shim": "/abs/executable"},
// re-read on every request, and an exec runs `<shim> <argv...>` ON THIS HOST, with the
// exec's argv passed unchanged and STANDIN_NAMESPACE / STANDIN_POD / STANDIN_CONTAINER in
// the environment. It is NOT isolated in any way: never expose it beyond a test machine.
//
// Endpoints (as the kubelet's):
//
//	GET|POST /exec/{namespace}/{pod}[/{uid}]/{container}?command=..&command=..&input=1&output=1&error=1&tty=0
//	         (the API server turns pods/exec's stdin/stdout/stderr into the kubelet's input/output/error)
//	POST     /run/{namespace}/{pod}[/{uid}]/{container}?cmd=space+separated   -> 200, stdout+stderr
//	GET      /containerLogs/{namespace}/{pod}/{container}?sinceTime=RFC3339&timestamps=true
//	         (pods/log: the pod's "log" file from the pods file, i.e. the backing Patroni's log, which a Spilo
//	         container writes to stdout; each line's time is Patroni's own asctime, in this host's zone)
//	GET      /healthz
//
// TTY is not emulated: with tty=1 the command still runs on pipes (no pty, resizes ignored).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/types"
	remotecommandconsts "k8s.io/apimachinery/pkg/util/remotecommand"
	"k8s.io/client-go/tools/remotecommand"
	streaming "k8s.io/kubelet/pkg/cri/streaming/remotecommand"
	utilexec "k8s.io/utils/exec"
)

type podEntry struct {
	Shim string `json:"shim"`
	Log  string `json:"log"`
}

type kubelet struct{ podsFile string }

// shimFor re-reads the pods file and returns the shim backing namespace/pod.
func (k *kubelet) shimFor(ns, pod string) (string, error) {
	e, err := k.entry(ns, pod)
	return e.Shim, err
}

func (k *kubelet) entry(ns, pod string) (podEntry, error) {
	data, err := os.ReadFile(k.podsFile)
	if err != nil {
		return podEntry{}, fmt.Errorf("stand-in kubelet: reading %s: %v", k.podsFile, err)
	}
	var pods map[string]podEntry
	if err := json.Unmarshal(data, &pods); err != nil {
		return podEntry{}, fmt.Errorf("stand-in kubelet: parsing %s: %v", k.podsFile, err)
	}
	e, ok := pods[ns+"/"+pod]
	if !ok || e.Shim == "" {
		return podEntry{}, fmt.Errorf("pod %s/%s not backed by the stand-in kubelet", ns, pod)
	}
	return e, nil
}

// serveLogs answers pods/log from the pod's log file. Like the kubelet, sinceTime drops older lines and
// timestamps=true prefixes each line with its RFC3339Nano time; a line without Patroni's asctime (pg_rewind's
// output, logged as one multi-line message) carries the time of the line before it.
func (k *kubelet) serveLogs(w http.ResponseWriter, req *http.Request) {
	ns, pod, _, ok := parsePath(req.URL.Path, "containerLogs")
	if !ok {
		http.NotFound(w, req)
		return
	}
	e, err := k.entry(ns, pod)
	if err == nil && e.Log == "" {
		err = fmt.Errorf("pod %s/%s has no log file", ns, pod)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	var since time.Time
	if s := req.URL.Query().Get("sinceTime"); s != "" {
		if since, err = time.Parse(time.RFC3339, s); err != nil {
			http.Error(w, "sinceTime: "+err.Error(), http.StatusBadRequest)
			return
		}
	}
	stamps := req.URL.Query().Get("timestamps") == "true"
	data, err := os.ReadFile(e.Log)
	if err != nil && !os.IsNotExist(err) {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	var at time.Time
	for _, line := range strings.Split(string(data), "\n") {
		if len(line) >= 23 {
			if t, perr := time.ParseInLocation("2006-01-02 15:04:05,000", line[:23], time.Local); perr == nil {
				at = t
			}
		}
		if line == "" || at.IsZero() || at.Before(since) {
			continue
		}
		if stamps {
			_, _ = io.WriteString(w, at.UTC().Format(time.RFC3339Nano)+" ")
		}
		_, _ = io.WriteString(w, line+"\n")
	}
}

// executor implements streaming.Executor for one request (the pod name it is given is the
// bare pod name, so the namespace is carried here).
type executor struct {
	k         *kubelet
	namespace string
}

func (e executor) ExecInContainer(ctx context.Context, pod string, _ types.UID, container string, argv []string,
	in io.Reader, out, errOut io.WriteCloser, _ bool, resize <-chan remotecommand.TerminalSize, _ time.Duration) error {
	if resize != nil {
		go func() {
			for range resize {
			}
		}()
	}
	shim, err := e.k.shimFor(e.namespace, pod)
	if err == nil && len(argv) == 0 {
		err = errors.New("no command given")
	}
	if err == nil {
		err = run(ctx, shim, e.namespace, pod, container, argv, in, out, errOut)
	}
	log.Printf("exec %s/%s/%s %q: %v", e.namespace, pod, container, argv, errText(err))
	return err
}

// run executes `shim argv...`. A non-zero exit is returned as a utilexec.ExitError so that
// ServeExec reports it exactly like the kubelet (Reason NonZeroExitCode, cause ExitCode).
func run(ctx context.Context, shim, ns, pod, container string, argv []string, in io.Reader, out, errOut io.Writer) error {
	cmd := exec.CommandContext(ctx, shim, argv...)
	cmd.Env = append(os.Environ(), "STANDIN_NAMESPACE="+ns, "STANDIN_POD="+pod, "STANDIN_CONTAINER="+container)
	if out != nil {
		cmd.Stdout = out
	}
	if errOut != nil {
		cmd.Stderr = errOut
	}
	// Background children (e.g. `pg_ctl start`) may keep stdout/stderr open: once the shim
	// has exited, stop waiting for them after a grace period.
	cmd.WaitDelay = 2 * time.Second
	var stdin io.WriteCloser
	if in != nil {
		var err error
		if stdin, err = cmd.StdinPipe(); err != nil {
			return err
		}
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	if stdin != nil {
		// Not awaited: a client may never close stdin; the copy ends with the stream.
		go func() { _, _ = io.Copy(stdin, in); _ = stdin.Close() }()
	}
	err := cmd.Wait()
	if errors.Is(err, exec.ErrWaitDelay) {
		return nil // exited 0, only the output pipes were held open by a child
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.Exited() {
		return utilexec.CodeExitError{Err: err, Code: ee.ExitCode()}
	}
	return err
}

func errText(err error) string {
	if err == nil {
		return "exit 0"
	}
	return err.Error()
}

// parsePath splits "/{verb}/{ns}/{pod}[/{uid}]/{container}".
func parsePath(path, verb string) (ns, pod, container string, ok bool) {
	p := strings.Split(strings.TrimPrefix(path, "/"+verb+"/"), "/")
	switch len(p) {
	case 3:
		return p[0], p[1], p[2], true
	case 4:
		return p[0], p[1], p[3], true
	}
	return "", "", "", false
}

func (k *kubelet) serveExec(w http.ResponseWriter, req *http.Request) {
	ns, pod, container, ok := parsePath(req.URL.Path, "exec")
	if !ok {
		http.NotFound(w, req)
		return
	}
	opts, err := streaming.NewOptions(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	// An unknown pod is reported inside the stream (Failure status), so every client sees it.
	streaming.ServeExec(w, req, executor{k, ns}, pod, "", container, req.URL.Query()["command"], opts,
		4*time.Hour, remotecommandconsts.DefaultStreamCreationTimeout, remotecommandconsts.SupportedStreamingProtocols)
}

func (k *kubelet) serveRun(w http.ResponseWriter, req *http.Request) {
	ns, pod, container, ok := parsePath(req.URL.Path, "run")
	if !ok || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	shim, err := k.shimFor(ns, pod)
	if err != nil {
		http.Error(w, err.Error(), http.StatusNotFound)
		return
	}
	var buf bytes.Buffer
	argv := strings.Split(req.URL.Query().Get("cmd"), " ")
	err = run(req.Context(), shim, ns, pod, container, argv, nil, &buf, &buf)
	log.Printf("run %s/%s/%s %q: %v", ns, pod, container, argv, errText(err))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	_, _ = w.Write(buf.Bytes())
}

func main() {
	listen := flag.String("listen", "127.0.0.1:10250", "address to serve HTTPS on")
	pods := flag.String("pods", "", "JSON file: {\"<namespace>/<pod>\": {\"shim\": \"/abs/executable\"}}")
	cert := flag.String("tls-cert", "", "serving certificate (PEM)")
	key := flag.String("tls-key", "", "serving key (PEM)")
	flag.Parse()
	if *pods == "" || *cert == "" || *key == "" {
		flag.Usage()
		os.Exit(2)
	}
	k := &kubelet{podsFile: *pods}
	mux := http.NewServeMux()
	mux.HandleFunc("/exec/", k.serveExec)
	mux.HandleFunc("/run/", k.serveRun)
	mux.HandleFunc("/containerLogs/", k.serveLogs)
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := &http.Server{Addr: *listen, Handler: mux, ReadHeaderTimeout: 30 * time.Second}
	log.Printf("stand-in kubelet serving https://%s (pods file %s)", *listen, *pods)
	log.Fatal(srv.ListenAndServeTLS(*cert, *key))
}
