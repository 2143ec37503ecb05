package main

// wal-push and wal-fetch: archive_command and restore_command. One WAL file is at most a segment (16 MiB by
// default), so it is handled in memory.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/pierrec/lz4/v4"
)

// compress makes an lz4 frame (the format WAL-G's lz4 method writes and reads, extension ".lz4").
func compress(data []byte) ([]byte, error) {
	var out bytes.Buffer
	w := lz4.NewWriter(&out)
	if _, err := w.Write(data); err != nil {
		return nil, err
	}
	if err := w.Close(); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

func decompress(data []byte) ([]byte, error) {
	return io.ReadAll(lz4.NewReader(bytes.NewReader(data)))
}

func walPush(ctx context.Context, s *store, path string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	name := filepath.Base(path)
	rel := walDir + name + ".lz4"
	// WAL-G overwrites by default. With WALG_PREVENT_WAL_OVERWRITE it accepts a re-push of identical
	// content (archive_command may be retried after a crash) and refuses different content, which would
	// mean two servers archiving into one prefix.
	if os.Getenv("WALG_PREVENT_WAL_OVERWRITE") == "true" {
		old, err := s.get(ctx, rel)
		switch {
		case errors.Is(err, errNotFound):
		case err != nil:
			return err
		default:
			prev, err := decompress(old)
			if err != nil {
				return fmt.Errorf("%s exists and cannot be decompressed: %w", s.url(rel), err)
			}
			if !bytes.Equal(prev, data) {
				return fmt.Errorf("%s already archived with different content; not overwriting (WALG_PREVENT_WAL_OVERWRITE)", name)
			}
			logf("INFO", "%s already archived with identical content", name)
			return nil
		}
	}
	body, err := compress(data)
	if err != nil {
		return fmt.Errorf("compress %s: %w", path, err)
	}
	if err := s.put(ctx, rel, body); err != nil {
		return err
	}
	logf("INFO", "FILE PATH: %s", rel)
	return nil
}

// walFetch writes the file atomically (temporary file, fsync, rename): Postgres must never read a partial
// segment under the name it asked for.
func walFetch(ctx context.Context, s *store, name, dest string) error {
	if name != filepath.Base(name) {
		return fmt.Errorf("wal-fetch: %q is not a WAL file name", name)
	}
	body, err := s.get(ctx, walDir+name+".lz4")
	if errors.Is(err, errNotFound) {
		return &exitError{exitNotFound, fmt.Errorf("Archive '%s' does not exist.", name)}
	}
	if err != nil {
		return err
	}
	data, err := decompress(body)
	if err != nil {
		return fmt.Errorf("decompress %s: %w", name, err)
	}
	return writeFileAtomic(dest, data, 0o600)
}

func writeFileAtomic(dest string, data []byte, mode os.FileMode) error {
	tmp := fmt.Sprintf("%s.walg-compat-%d.tmp", dest, os.Getpid())
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, mode)
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dest)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
