package main

import (
	"archive/tar"
	"bytes"
	"io"
	"testing"
)

const label = `START WAL LOCATION: 0/10000028 (file 000000010000000000000010)
CHECKPOINT LOCATION: 0/10000060
BACKUP METHOD: streamed
BACKUP FROM: primary
START TIME: 2026-11-27 09:30:02 UTC
LABEL: pg_basebackup base backup
START TIMELINE: 1
`

const manifest = `{ "PostgreSQL-Backup-Manifest-Version": 1,
"Files": [
{ "Path": "global/pg_control", "Size": 8192, "Last-Modified": "2026-11-27 09:30:03 GMT", "Checksum-Algorithm": "CRC32C", "Checksum": "43872087" }
],
"WAL-Ranges": [
{ "Timeline": 1, "Start-LSN": "0/10000028", "End-LSN": "0/10000100" }
],
"Manifest-Checksum": "2a94"}
`

func TestParseBackupLabel(t *testing.T) {
	bl, err := parseBackupLabel(label)
	if err != nil {
		t.Fatal(err)
	}
	if bl.startLSN != 0x10000028 || bl.timeline != 1 || bl.fromStandby || bl.walFile != "000000010000000000000010" {
		t.Errorf("parsed %+v", bl)
	}
	if backupName(bl.timeline, bl.startLSN, 16<<20) != "base_"+bl.walFile {
		t.Error("computed name disagrees with the label")
	}
	bl, err = parseBackupLabel("START WAL LOCATION: 0/3000028 (file 000000020000000000000003)\nBACKUP FROM: standby\nSTART TIMELINE: 2\n")
	if err != nil || !bl.fromStandby || bl.timeline != 2 {
		t.Errorf("standby label: %+v %v", bl, err)
	}
	if _, err := parseBackupLabel("garbage"); err == nil {
		t.Error("garbage label accepted")
	}
}

func TestManifestEnd(t *testing.T) {
	lsn, tli, err := manifestEnd([]byte(manifest))
	if err != nil || lsn != 0x10000100 || tli != 1 {
		t.Errorf("manifestEnd = %X, %d, %v", lsn, tli, err)
	}
	if _, _, err := manifestEnd([]byte(`{"WAL-Ranges": []}`)); err == nil {
		t.Error("empty WAL-Ranges accepted")
	}
}

// A tar shaped like pg_basebackup's: backup_label first, backup_manifest last. The label is read from the
// head of the stream and the whole stream (head replayed) still yields the manifest, byte for byte.
func TestTarStream(t *testing.T) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range []struct{ name, body string }{{"backup_label", label}, {"base/1/1234", string(make([]byte, 100000))}, {"backup_manifest", manifest}} {
		tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o600, Size: int64(len(f.body)), Typeflag: tar.TypeReg})
		tw.Write([]byte(f.body))
	}
	tw.Close()
	orig := append([]byte(nil), buf.Bytes()...)
	stream := bytes.NewReader(orig)
	head := &bytes.Buffer{}
	bl, err := readLabel(io.TeeReader(stream, head))
	if err != nil || bl.startLSN != 0x10000028 {
		t.Fatalf("readLabel: %+v %v", bl, err)
	}
	var out bytes.Buffer
	tee := io.TeeReader(io.MultiReader(head, stream), &out)
	m, err := findManifest(tee)
	if err != nil || string(m) != manifest {
		t.Fatalf("findManifest: %v", err)
	}
	io.Copy(io.Discard, tee)
	if !bytes.Equal(out.Bytes(), orig) {
		t.Errorf("replayed stream differs: %d vs %d bytes", out.Len(), len(orig))
	}
}
