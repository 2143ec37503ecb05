package main

// backup-list and backup-fetch: both see only complete backups, i.e. those with a stop sentinel.

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/pierrec/lz4/v4"
)

// listComplete reads every sentinel directly under basebackups_005/, oldest first by finish LSN. Times and
// hostname come from metadata.json when the sentinel lacks them (real WAL-G v3 archives).
func listComplete(ctx context.Context, s *store) ([]listRow, error) {
	objs, err := s.list(ctx, backupDir, true)
	if err != nil {
		return nil, err
	}
	var rows []listRow
	for _, o := range objs {
		name, ok := strings.CutSuffix(strings.TrimPrefix(o.rel, backupDir), sentinelTail)
		if !ok || backupTimeline(name) == 0 {
			continue
		}
		sj, err := s.get(ctx, o.rel)
		if err != nil {
			return nil, err
		}
		var st sentinel
		if err := json.Unmarshal(sj, &st); err != nil {
			logf("WARNING", "skipping %s: unreadable sentinel: %v", name, err)
			continue
		}
		r := listRow{
			BackupName: name, Time: o.modified, WalFileName: strings.TrimPrefix(name, "base_")[:24], StorageName: "default",
			StartTime: st.StartTime, FinishTime: st.FinishTime, DateFmt: dateFmt, Hostname: st.Hostname,
			PgVersion: st.PgVersion, StartLSN: st.LSN, FinishLSN: st.FinishLSN, IsPermanent: st.IsPermanent,
			SystemIdentifier: st.SystemIdentifier, UncompressedSize: st.UncompressedSize, CompressedSize: st.CompressedSize,
		}
		if mj, err := s.get(ctx, backupDir+name+metadataFile); err == nil {
			var m metadata
			if json.Unmarshal(mj, &m) == nil {
				r.StartTime, r.FinishTime, r.Hostname, r.DataDir = m.StartTime, m.FinishTime, m.Hostname, m.DataDir
			}
		} else if !errors.Is(err, errNotFound) {
			return nil, err
		}
		rows = append(rows, r)
	}
	sort.Slice(rows, func(i, j int) bool { return rows[j].newerThan(rows[i]) })
	return rows, nil
}

func backupList(ctx context.Context, s *store, f listFlags) error {
	rows, err := listComplete(ctx, s)
	if err != nil {
		return err
	}
	if len(rows) == 0 {
		logf("INFO", "No backups found")
	}
	if f.json {
		if rows == nil {
			rows = []listRow{}
		}
		enc := json.NewEncoder(os.Stdout)
		if f.pretty {
			enc.SetIndent("", "    ")
		}
		return enc.Encode(rows)
	}
	if len(rows) == 0 {
		return nil
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 1, ' ', 0)
	fmt.Fprintln(w, "name\tmodified\twal_file_name\tstart_lsn\tfinish_lsn\tfinish_time\thostname")
	for _, r := range rows {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.BackupName, r.Time.UTC().Format(time.RFC3339), r.WalFileName,
			formatLSN(r.StartLSN), formatLSN(r.FinishLSN), r.FinishTime.UTC().Format(time.RFC3339), r.Hostname)
	}
	return w.Flush()
}

func backupFetch(ctx context.Context, s *store, dest, name string) error {
	if err := checkDest(dest); err != nil {
		return err
	}
	if name == "LATEST" {
		rows, err := listComplete(ctx, s)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("no complete backup (with a stop sentinel) under %s", s.url(backupDir))
		}
		name = rows[len(rows)-1].BackupName
		logf("INFO", "LATEST backup is: '%s'", name)
	}
	sj, err := s.get(ctx, backupDir+name+sentinelTail)
	if errors.Is(err, errNotFound) {
		return fmt.Errorf("backup '%s' does not exist (no stop sentinel)", name)
	} else if err != nil {
		return err
	}
	var st sentinel
	if err := json.Unmarshal(sj, &st); err != nil {
		return fmt.Errorf("backup %s: unreadable sentinel: %w", name, err)
	}
	if st.DeltaFrom != nil || st.DeltaFromLSN != nil {
		return fmt.Errorf("backup %s is a delta backup: walg-compat restores full backups only", name)
	}
	parts, err := s.list(ctx, backupDir+name+tarPartsDir, false)
	if err != nil {
		return err
	}
	sort.Slice(parts, func(i, j int) bool { return partOrder(parts[i].rel) < partOrder(parts[j].rel) })
	if len(parts) == 0 {
		return fmt.Errorf("backup %s has no tar partitions", name)
	}
	if err := os.MkdirAll(dest, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dest, 0o700); err != nil {
		return err
	}
	var n atomic.Int64
	done := make(chan struct{})
	defer close(done)
	go progress(done, func() string { return fmt.Sprintf("backup-fetch: extracted %d MiB", n.Load()>>20) })
	for _, p := range parts {
		if !strings.HasSuffix(p.rel, ".tar.lz4") {
			return fmt.Errorf("%s: only lz4-compressed tar partitions are supported", s.url(p.rel))
		}
		logf("INFO", "Extracting %s", filepath.Base(p.rel))
		if err := extractPart(ctx, s, p.rel, dest, &n); err != nil {
			return err
		}
	}
	// One sync for the whole tree: the caller starts Postgres on it next.
	syscall.Sync()
	logf("INFO", "Backup extraction complete: %s (%d MiB), start %s, finish %s", name, n.Load()>>20, formatLSN(st.LSN), formatLSN(st.FinishLSN))
	return nil
}

// partOrder: part_1, part_2, ... numerically, then other partitions, and pg_control last as WAL-G does, so
// an interrupted fetch never leaves a startable-looking data directory.
func partOrder(rel string) int {
	base := filepath.Base(rel)
	if strings.HasPrefix(base, "pg_control.tar") {
		return 1 << 30
	}
	if n, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(base, "part_"), ".tar.lz4")); err == nil {
		return n
	}
	return 1<<30 - 1
}

// checkDest accepts an absent destination or an empty directory (created, or made 0700, once the backup
// is known to exist).
func checkDest(dest string) error {
	entries, err := os.ReadDir(dest)
	switch {
	case os.IsNotExist(err):
		return nil
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("destination %s is not empty", dest)
	}
	return nil
}

func extractPart(ctx context.Context, s *store, rel, dest string, n *atomic.Int64) error {
	body, err := s.open(ctx, rel)
	if err != nil {
		return err
	}
	defer body.Close()
	tr := tar.NewReader(lz4.NewReader(body))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", s.url(rel), err)
		}
		if err := extractEntry(tr, h, dest, n); err != nil {
			return fmt.Errorf("%s: %s: %w", s.url(rel), h.Name, err)
		}
	}
}

func extractEntry(tr *tar.Reader, h *tar.Header, dest string, n *atomic.Int64) error {
	name := filepath.Clean(h.Name)
	if filepath.IsAbs(name) || name == ".." || strings.HasPrefix(name, "../") {
		return errors.New("path escapes the destination")
	}
	path := filepath.Join(dest, name)
	mode := os.FileMode(h.Mode) & os.ModePerm
	switch h.Typeflag {
	case tar.TypeDir:
		if err := os.MkdirAll(path, 0o700); err != nil {
			return err
		}
		return os.Chmod(path, mode)
	case tar.TypeReg:
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
		if err != nil {
			return err
		}
		c, err := io.Copy(f, tr)
		n.Add(c)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	case tar.TypeSymlink:
		os.Remove(path)
		return os.Symlink(h.Linkname, path)
	case tar.TypeLink:
		target := filepath.Join(dest, filepath.Clean(h.Linkname))
		if !strings.HasPrefix(target, filepath.Clean(dest)+"/") {
			return errors.New("hard link escapes the destination")
		}
		return os.Link(target, path)
	}
	logf("WARNING", "skipping %s: unsupported tar entry type %q", h.Name, h.Typeflag)
	return nil
}
