package main

import (
	"bytes"
	"encoding/json"
	"math/rand"
	"strings"
	"testing"
	"time"
)

func TestParseFormatLSN(t *testing.T) {
	for _, c := range []struct {
		in   string
		want uint64
	}{{"0/2000028", 0x2000028}, {"16/B374D848", 0x16B374D848}, {"FFFFFFFF/FFFFFFFF", ^uint64(0)}, {"0/0", 0}} {
		got, err := parseLSN(c.in)
		if err != nil || got != c.want {
			t.Errorf("parseLSN(%q) = %X, %v; want %X", c.in, got, err, c.want)
		}
		if f := formatLSN(got); f != strings.ToUpper(c.in) {
			t.Errorf("formatLSN(%X) = %q, want %q", got, f, c.in)
		}
	}
	for _, bad := range []string{"", "0", "/1", "1/", "G/1", "123456789/0", "0/1/2"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q) accepted", bad)
		}
	}
}

func TestBackupName(t *testing.T) {
	// Values as pg_walfile_name() gives them (16 MiB segments, and one 64 MiB case).
	for _, c := range []struct {
		tli  uint32
		lsn  string
		seg  uint64
		want string
	}{
		{1, "0/2000028", 16 << 20, "base_000000010000000000000002"},
		{2, "0/3000000", 16 << 20, "base_000000020000000000000003"},
		{1, "16/B374D848", 16 << 20, "base_0000000100000016000000B3"},
		{0x1A, "1/FF000000", 16 << 20, "base_0000001A00000001000000FF"},
		{1, "1/FF000000", 0, "base_0000000100000001000000FF"},
		{3, "2/8C000000", 64 << 20, "base_000000030000000200000023"},
	} {
		lsn, _ := parseLSN(c.lsn)
		if got := backupName(c.tli, lsn, c.seg); got != c.want {
			t.Errorf("backupName(%d, %s, %d) = %s, want %s", c.tli, c.lsn, c.seg, got, c.want)
		}
		if got := backupTimeline(c.want); got != c.tli {
			t.Errorf("backupTimeline(%s) = %d, want %d", c.want, got, c.tli)
		}
	}
	if backupTimeline("base_12") != 0 || backupTimeline("000000010000000000000002") != 0 {
		t.Error("backupTimeline accepted a non-backup name")
	}
}

func TestSentinelJSON(t *testing.T) {
	sysid := uint64(7312345678901234567)
	start := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC)
	m := metadata{StartTime: start, FinishTime: start.Add(time.Minute), Hostname: "h", PgVersion: 150018,
		StartLSN: 0x2000028, FinishLSN: 0x2000100, SystemIdentifier: &sysid, UncompressedSize: 100, CompressedSize: 40}
	b, err := json.Marshal(newSentinel(m))
	if err != nil {
		t.Fatal(err)
	}
	var got map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber() // integers must stay integers (a JS reader does Number(...))
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"LSN": "33554472", "FinishLSN": "33554688", "PgVersion": "150018",
		"SystemIdentifier": "7312345678901234567", "UncompressedSize": "100", "CompressedSize": "40"}
	for k, v := range want {
		if n, ok := got[k].(json.Number); !ok || n.String() != v {
			t.Errorf("%s = %#v, want integer %s", k, got[k], v)
		}
	}
	if got["StartTime"] != "2024-05-01T10:00:00Z" || got["FinishTime"] != "2024-05-01T10:01:00Z" {
		t.Errorf("times: %v %v", got["StartTime"], got["FinishTime"])
	}
	if v, ok := got["UserData"]; !ok || v != nil {
		t.Errorf("UserData must be present and null, got %#v", v)
	}
	if got["IsPermanent"] != false || got["Hostname"] != "h" {
		t.Errorf("IsPermanent/Hostname: %v", got)
	}
	for _, k := range []string{"DeltaFrom", "DeltaFromLSN"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s must be omitted from a full backup", k)
		}
	}
	// A real WAL-G v3 sentinel (no times or hostname) still reads.
	var st sentinel
	if err := json.Unmarshal([]byte(`{"LSN":50331688,"FinishLSN":50331920,"PgVersion":150004,"SystemIdentifier":7312345678901234567,"UncompressedSize":1,"CompressedSize":1,"DataCatalogSize":1,"Spec":null}`), &st); err != nil {
		t.Fatal(err)
	}
	if st.LSN != 0x3000028 || *st.SystemIdentifier != sysid || !st.StartTime.IsZero() {
		t.Errorf("parsed %+v", st)
	}
}

func TestLatestOrder(t *testing.T) {
	a := listRow{BackupName: "base_000000010000000000000009", FinishLSN: 0x9000100}
	b := listRow{BackupName: "base_000000020000000000000005", FinishLSN: 0x5000100}
	c := listRow{BackupName: "base_000000020000000000000009", FinishLSN: 0x9000100}
	if !a.newerThan(b) || b.newerThan(a) || !c.newerThan(a) {
		t.Error("LATEST must order by finish LSN, then timeline")
	}
}

func TestLZ4RoundTrip(t *testing.T) {
	seg := make([]byte, 16<<20) // a WAL segment: mostly zeros with some noise
	rand.New(rand.NewSource(1)).Read(seg[:1<<20])
	for _, data := range [][]byte{seg, []byte("00000002.history\t1\t0/3000000\tno recovery target specified\n"), {}} {
		z, err := compress(data)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(z, []byte{0x04, 0x22, 0x4D, 0x18}) {
			t.Fatalf("not an lz4 frame: % x", z[:4])
		}
		back, err := decompress(z)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("round trip of %d bytes failed: %v", len(data), err)
		}
	}
	if _, err := decompress([]byte("not lz4 at all")); err == nil {
		t.Error("garbage decompressed without error")
	}
}

func TestPartOrder(t *testing.T) {
	prev := -1
	for _, n := range []string{"x/part_1.tar.lz4", "x/part_2.tar.lz4", "x/part_10.tar.lz4", "x/backup_label.tar.lz4", "x/pg_control.tar.lz4"} {
		if o := partOrder(n); o <= prev {
			t.Errorf("%s out of order", n)
		} else {
			prev = o
		}
	}
	if partSize(1) != 16<<20 || partSize(1001) != 32<<20 || partSize(10000) != 256<<20 {
		t.Error("part sizes")
	}
}
