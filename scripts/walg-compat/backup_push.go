package main

// backup-push: pg_basebackup streams one tar of the data directory (no WAL: the archive has it); we compress
// it with lz4 into tar_partitions/part_1.tar.lz4, then write metadata.json and, last, the stop sentinel.
// Why pg_basebackup and not WAL-G's own way (pg_backup_start + reading PGDATA): the server then decides what
// belongs in a base backup, and we need no copy of its exclusion rules.

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pierrec/lz4/v4"
)

// pgBin finds the client programs: WALG_COMPAT_PG_BIN, else Debian's directory for the data directory's
// major version (pg_basebackup refuses servers newer than itself), else PATH.
func pgBin(pgdata, prog string) string {
	if d := os.Getenv("WALG_COMPAT_PG_BIN"); d != "" {
		return filepath.Join(d, prog)
	}
	if v, err := os.ReadFile(filepath.Join(pgdata, "PG_VERSION")); err == nil {
		p := filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(v)), "bin", prog)
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return prog
}

// pgEnv is the libpq environment of the children; psql needs a database (pg_basebackup ignores it).
func pgEnv() []string {
	env := os.Environ()
	if os.Getenv("PGDATABASE") == "" {
		env = append(env, "PGDATABASE=postgres")
	}
	return env
}

type serverInfo struct {
	inRecovery bool
	versionNum int
	systemID   uint64
	segSize    uint64
}

func queryServer(ctx context.Context, pgdata string) (serverInfo, error) {
	const q = `select pg_is_in_recovery(), current_setting('server_version_num'),
	(select system_identifier from pg_control_system()),
	(select setting from pg_settings where name = 'wal_segment_size')`
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgBin(pgdata, "psql"), "-X", "-A", "-t", "-q", "-F", "|", "-v", "ON_ERROR_STOP=1", "-c", q)
	cmd.Env = pgEnv()
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return serverInfo{}, fmt.Errorf("cannot query the server with psql: %w", err)
	}
	f := strings.Split(strings.TrimSpace(string(out)), "|")
	if len(f) != 4 {
		return serverInfo{}, fmt.Errorf("unexpected psql output %q", out)
	}
	var si serverInfo
	var e1, e2, e3 error
	si.inRecovery = f[0] == "t"
	si.versionNum, e1 = strconv.Atoi(f[1])
	si.systemID, e2 = strconv.ParseUint(f[2], 10, 64)
	si.segSize, e3 = strconv.ParseUint(f[3], 10, 64)
	if err := errors.Join(e1, e2, e3); err != nil {
		return serverInfo{}, fmt.Errorf("unexpected psql output %q: %w", out, err)
	}
	return si, nil
}

// countingWriter counts what passes through, for progress and the sentinel's sizes.
type countingWriter struct {
	w io.Writer
	n atomic.Int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func backupPush(ctx context.Context, s *store, pgdata string) error {
	si, err := queryServer(ctx, pgdata)
	if err != nil {
		return err
	}
	// A backup of a replica is not a backup of this cluster's own history; never claim one by accident.
	allowStandby := os.Getenv("WALG_COMPAT_ALLOW_STANDBY") == "true"
	if si.inRecovery && !allowStandby {
		return errors.New("the server is in recovery (a standby): refusing backup-push (set WALG_COMPAT_ALLOW_STANDBY=true to allow)")
	}
	start := time.Now().UTC()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// -X none: WAL comes from the archive, and the server waits until the backup's last segment is archived
	// before pg_basebackup returns, as WAL-G's backup-push does. A tar on stdout starts with backup_label and
	// ends with backup_manifest; they give us the start and the end of the backup.
	cmd := exec.CommandContext(ctx, pgBin(pgdata, "pg_basebackup"), "-D", "-", "-F", "t", "-X", "none",
		"-c", "fast", "--no-sync", "-v", "-l", "walg-compat "+start.Format(time.RFC3339))
	cmd.Env = pgEnv()
	cmd.Stderr = os.Stderr
	// Killed with us even on SIGKILL, so that no orphan keeps a backup (and a walsender) open on the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start pg_basebackup: %w", err)
	}
	fail := func(err error) error {
		cancel()
		io.Copy(io.Discard, stdout)
		cmd.Wait()
		return err
	}
	// Read backup_label (the first member) while keeping its bytes: the archive must start at byte 0.
	head := &bytes.Buffer{}
	bl, err := readLabel(io.TeeReader(stdout, head))
	if err != nil {
		return fail(err)
	}
	if bl.fromStandby && !allowStandby { // the server was demoted after our check
		return fail(errors.New("pg_basebackup reports a backup from a standby: refusing"))
	}
	name := backupName(bl.timeline, bl.startLSN, si.segSize)
	if name != "base_"+bl.walFile {
		return fail(fmt.Errorf("backup name %s disagrees with backup_label's WAL file %s", name, bl.walFile))
	}
	logf("INFO", "Backup %s starts at %s on timeline %d", name, formatLSN(bl.startLSN), bl.timeline)
	// Parts from an earlier attempt under the same name are about to be overwritten: its sentinel must not
	// vouch for them meanwhile.
	if err := s.delete(ctx, backupDir+name+sentinelTail); err != nil {
		return fail(err)
	}

	// tar -> count (uncompressed) -> lz4 -> count (compressed) -> pipe -> multipart upload; the tar is
	// walked on the way to find backup_manifest.
	pr, pw := io.Pipe()
	compressed := &countingWriter{w: pw}
	zw := lz4.NewWriter(compressed)
	raw := &countingWriter{w: zw}
	var endLSN uint64
	var endTLI uint32
	go func() {
		tee := io.TeeReader(io.MultiReader(head, stdout), raw)
		manifest, err := findManifest(tee)
		if err == nil {
			_, err = io.Copy(io.Discard, tee) // the tar's trailing blocks
		}
		if err == nil {
			endLSN, endTLI, err = manifestEnd(manifest)
		}
		if err == nil {
			err = zw.Close()
		}
		pw.CloseWithError(err)
	}()
	var uploaded atomic.Int64
	done := make(chan struct{})
	go progress(done, func() string {
		return fmt.Sprintf("backup-push: read %d MiB from pg_basebackup, uploaded %d MiB (lz4)", raw.n.Load()>>20, uploaded.Load()>>20)
	})
	_, err = s.uploadStream(ctx, backupDir+name+tarPartsDir+"part_1.tar.lz4", pr, uploaded.Store)
	close(done)
	if err != nil {
		pr.CloseWithError(err)
		return fail(err)
	}
	// Only now, after the upload read the pipe to its end, are endLSN and endTLI set.
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("pg_basebackup failed: %w", err)
	}
	if endTLI != bl.timeline {
		return fmt.Errorf("backup ended on timeline %d, started on %d: refusing", endTLI, bl.timeline)
	}
	host, _ := os.Hostname()
	abs, _ := filepath.Abs(pgdata)
	m := metadata{
		StartTime: start, FinishTime: time.Now().UTC(), DateFmt: dateFmt, Hostname: host, DataDir: abs,
		PgVersion: si.versionNum, StartLSN: bl.startLSN, FinishLSN: endLSN, SystemIdentifier: &si.systemID,
		UncompressedSize: raw.n.Load(), CompressedSize: compressed.n.Load(),
	}
	mj, _ := json.Marshal(m)
	if err := s.put(ctx, backupDir+name+metadataFile, mj); err != nil {
		return err
	}
	sj, _ := json.Marshal(newSentinel(m))
	if err := s.put(ctx, backupDir+name+sentinelTail, sj); err != nil {
		return err
	}
	// The first line is WAL-G's own (callers grep it); the second is the documented stdout result.
	logf("INFO", "Wrote backup with name %s", name)
	fmt.Printf("backup name: %s\n", name)
	return nil
}

func readLabel(r io.Reader) (backupLabel, error) {
	tr := tar.NewReader(r)
	h, err := tr.Next()
	if err != nil {
		return backupLabel{}, fmt.Errorf("reading pg_basebackup's output: %w", err)
	}
	if h.Name != "backup_label" {
		return backupLabel{}, fmt.Errorf("pg_basebackup's tar starts with %q, not backup_label", h.Name)
	}
	text, err := io.ReadAll(tr)
	if err != nil {
		return backupLabel{}, err
	}
	return parseBackupLabel(string(text))
}

// findManifest reads a whole tar and returns its backup_manifest member.
func findManifest(r io.Reader) ([]byte, error) {
	tr := tar.NewReader(r)
	var manifest []byte
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading pg_basebackup's output: %w", err)
		}
		if h.Name == "backup_manifest" {
			if manifest, err = io.ReadAll(tr); err != nil {
				return nil, err
			}
		}
	}
	if manifest == nil {
		return nil, errors.New("pg_basebackup's tar has no backup_manifest (pg_basebackup 13 or later is needed)")
	}
	return manifest, nil
}

// progress prints a heartbeat line every 5 s, whether data moves or stalls, until done is closed: callers
// (a Temporal activity) turn output into heartbeats.
func progress(done <-chan struct{}, line func() string) {
	t := time.NewTicker(5 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-done:
			return
		case <-t.C:
			logf("INFO", "%s", line())
		}
	}
}
