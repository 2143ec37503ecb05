// walg-compat is a stand-in for WAL-G: the few commands our runbooks use, writing and reading WAL-G's exact
// S3 layout, so that a real wal-g binary can replace it with no other change. See README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

const version = "0.1.0"

// exitNotFound is WAL-G's exit code for "no such file in the archive" (EX_IOERR): restore_command wrappers
// tell it apart from S3 or network trouble.
const exitNotFound = 74

const usage = `usage: walg-compat <command> [args]
  wal-push <path>                        compress and upload a WAL segment or .history/.partial/.backup file
  wal-fetch <file name> <destination>    download one WAL file (exit 74: not in the archive)
  backup-push <pgdata>                   base backup of the server at $PGHOST:$PGPORT
  backup-fetch <destination> <name|LATEST>
  backup-list [--detail] [--json] [--pretty]
  --version
Environment: WALG_S3_PREFIX, AWS_ENDPOINT, AWS_REGION, AWS_S3_FORCE_PATH_STYLE, AWS credentials (SDK default
chain), PG* for backup-push, WALG_COMPRESSION_METHOD (lz4 only), WALG_PREVENT_WAL_OVERWRITE,
WALG_COMPAT_ALLOW_STANDBY, WALG_COMPAT_S3_TIMEOUT (seconds, default 60), WALG_COMPAT_PG_BIN.
`

// exitError carries a specific exit code; any other error exits 1, as WAL-G's fatal errors do.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// logf writes WAL-G-style log lines ("INFO: 2006/01/02 15:04:05.000000 ...") to stderr; stdout is for results.
func logf(level, format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s: %s %s\n", level, time.Now().Format("2006/01/02 15:04:05.000000"), fmt.Sprintf(format, args...))
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	cmd, rest := args[0], args[1:]
	var err error
	switch {
	case cmd == "--version" || cmd == "version":
		fmt.Printf("walg-compat %s (WAL-G v3 command subset)\n", version)
		return 0
	case cmd == "--help" || cmd == "-h" || cmd == "help":
		fmt.Print(usage)
		return 0
	case cmd == "wal-push" && len(rest) == 1:
		err = withStore(ctx, func(s *store) error { return walPush(ctx, s, rest[0]) })
	case cmd == "wal-fetch" && len(rest) == 2:
		err = withStore(ctx, func(s *store) error { return walFetch(ctx, s, rest[0], rest[1]) })
	case cmd == "backup-push" && len(rest) == 1:
		err = withStore(ctx, func(s *store) error { return backupPush(ctx, s, rest[0]) })
	case cmd == "backup-fetch" && len(rest) == 2:
		err = withStore(ctx, func(s *store) error { return backupFetch(ctx, s, rest[0], rest[1]) })
	case cmd == "backup-list":
		var f listFlags
		if f, err = parseListFlags(rest); err == nil {
			err = withStore(ctx, func(s *store) error { return backupList(ctx, s, f) })
		}
	default:
		fmt.Fprintf(os.Stderr, "walg-compat: unknown command or wrong arguments: %q\n%s", args, usage)
		return 2
	}
	if err == nil {
		return 0
	}
	logf("ERROR", "%v", err)
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

// withStore checks the settings every command shares, then runs f.
func withStore(ctx context.Context, f func(*store) error) error {
	if m := os.Getenv("WALG_COMPRESSION_METHOD"); m != "" && m != "lz4" {
		return fmt.Errorf("WALG_COMPRESSION_METHOD=%s is not supported by walg-compat (lz4 only)", m)
	}
	s, err := newStore(ctx)
	if err != nil {
		return err
	}
	return f(s)
}

type listFlags struct{ json, pretty bool }

func parseListFlags(args []string) (listFlags, error) {
	var f listFlags
	for _, a := range args {
		switch a {
		case "--json":
			f.json = true
		case "--pretty":
			f.pretty = true
		case "--detail": // our listing always has the details
		default:
			return f, fmt.Errorf("backup-list: unknown flag %q", a)
		}
	}
	return f, nil
}
