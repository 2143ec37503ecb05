package main

// The pure parts: LSNs, WAL file names and the JSON documents of WAL-G's S3 layout. Everything here is what
// a reader of the archive (our backup catalogue, a real wal-g) depends on, so it is unit-tested.

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Folders under WALG_S3_PREFIX, as WAL-G names them ("_005" is the layout version, not ours to change).
const (
	walDir         = "wal_005/"
	backupDir      = "basebackups_005/"
	sentinelTail   = "_backup_stop_sentinel.json"
	tarPartsDir    = "/tar_partitions/"
	metadataFile   = "/metadata.json"
	defaultSegSize = 16 << 20
)

// parseLSN reads Postgres' text form "X/Y" (two hex numbers of at most 32 bits each).
func parseLSN(s string) (uint64, error) {
	hi, lo, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok || hi == "" || lo == "" || len(hi) > 8 || len(lo) > 8 {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	h, err1 := strconv.ParseUint(hi, 16, 32)
	l, err2 := strconv.ParseUint(lo, 16, 32)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("not an LSN: %q", s)
	}
	return h<<32 | l, nil
}

func formatLSN(lsn uint64) string { return fmt.Sprintf("%X/%X", lsn>>32, lsn&0xFFFFFFFF) }

// walFileName is the name of the WAL segment holding lsn on timeline tli, as pg_walfile_name() gives it:
// 8 hex digits each of timeline, "log id" and segment within that log id.
func walFileName(tli uint32, lsn uint64, segSize uint64) string {
	if segSize == 0 {
		segSize = defaultSegSize
	}
	segNo := lsn / segSize
	perID := uint64(0x100000000) / segSize
	return fmt.Sprintf("%08X%08X%08X", tli, segNo/perID, segNo%perID)
}

// backupName is what WAL-G calls a full backup: "base_" + the WAL file name of its start LSN.
func backupName(tli uint32, startLSN uint64, segSize uint64) string {
	return "base_" + walFileName(tli, startLSN, segSize)
}

// backupTimeline reads the timeline back out of a backup name (0 if it is not one).
func backupTimeline(name string) uint32 {
	s := strings.TrimPrefix(name, "base_")
	if len(s) < 24 || s == name {
		return 0
	}
	t, err := strconv.ParseUint(s[:8], 16, 32)
	if err != nil {
		return 0
	}
	return uint32(t)
}

// sentinel is <name>_backup_stop_sentinel.json. WAL-G writes LSNs as JSON integers. Written last: a backup
// exists only when its sentinel does. Real WAL-G v3 keeps the times and hostname in metadata.json instead,
// so a reader must accept them missing here. The Delta* fields are only read, to refuse delta backups.
type sentinel struct {
	LSN              uint64          `json:"LSN"`
	FinishLSN        uint64          `json:"FinishLSN"`
	StartTime        time.Time       `json:"StartTime"`
	FinishTime       time.Time       `json:"FinishTime"`
	Hostname         string          `json:"Hostname"`
	PgVersion        int             `json:"PgVersion"`
	SystemIdentifier *uint64         `json:"SystemIdentifier,omitempty"`
	UncompressedSize int64           `json:"UncompressedSize"`
	CompressedSize   int64           `json:"CompressedSize"`
	DataCatalogSize  int64           `json:"DataCatalogSize"`
	IsPermanent      bool            `json:"IsPermanent"`
	UserData         json.RawMessage `json:"UserData"`
	DeltaFrom        *string         `json:"DeltaFrom,omitempty"`
	DeltaFromLSN     *uint64         `json:"DeltaFromLSN,omitempty"`
}

// metadata is <name>/metadata.json, WAL-G's "extended metadata" (what `backup-list --detail` shows).
type metadata struct {
	StartTime        time.Time       `json:"start_time"`
	FinishTime       time.Time       `json:"finish_time"`
	DateFmt          string          `json:"date_fmt"`
	Hostname         string          `json:"hostname"`
	DataDir          string          `json:"data_dir"`
	PgVersion        int             `json:"pg_version"`
	StartLSN         uint64          `json:"start_lsn"`
	FinishLSN        uint64          `json:"finish_lsn"`
	IsPermanent      bool            `json:"is_permanent"`
	SystemIdentifier *uint64         `json:"system_identifier"`
	UncompressedSize int64           `json:"uncompressed_size"`
	CompressedSize   int64           `json:"compressed_size"`
	UserData         json.RawMessage `json:"user_data,omitempty"`
}

// listRow is one element of `backup-list --json` (WAL-G's --detail fields, always given).
type listRow struct {
	BackupName       string    `json:"backup_name"`
	Time             time.Time `json:"time"`
	WalFileName      string    `json:"wal_file_name"`
	StorageName      string    `json:"storage_name"`
	StartTime        time.Time `json:"start_time"`
	FinishTime       time.Time `json:"finish_time"`
	DateFmt          string    `json:"date_fmt"`
	Hostname         string    `json:"hostname"`
	DataDir          string    `json:"data_dir"`
	PgVersion        int       `json:"pg_version"`
	StartLSN         uint64    `json:"start_lsn"`
	FinishLSN        uint64    `json:"finish_lsn"`
	IsPermanent      bool      `json:"is_permanent"`
	SystemIdentifier *uint64   `json:"system_identifier"`
	UncompressedSize int64     `json:"uncompressed_size"`
	CompressedSize   int64     `json:"compressed_size"`
}

const dateFmt = "%Y-%m-%dT%H:%M:%S.%fZ"

func newSentinel(m metadata) sentinel {
	return sentinel{
		LSN: m.StartLSN, FinishLSN: m.FinishLSN, StartTime: m.StartTime, FinishTime: m.FinishTime,
		Hostname: m.Hostname, PgVersion: m.PgVersion, SystemIdentifier: m.SystemIdentifier,
		UncompressedSize: m.UncompressedSize, CompressedSize: m.CompressedSize,
		DataCatalogSize: m.UncompressedSize, UserData: json.RawMessage("null"),
	}
}

// newerThan orders backups for LATEST: by finish LSN, then timeline (never by modification time).
func (r listRow) newerThan(o listRow) bool {
	if r.FinishLSN != o.FinishLSN {
		return r.FinishLSN > o.FinishLSN
	}
	return backupTimeline(r.BackupName) > backupTimeline(o.BackupName)
}

// backupLabel is what we need from the backup_label file, the first member of pg_basebackup's tar:
//
//	START WAL LOCATION: 0/2000028 (file 000000010000000000000002)
//	BACKUP FROM: primary
//	START TIMELINE: 1
type backupLabel struct {
	startLSN    uint64
	walFile     string
	fromStandby bool
	timeline    uint32
}

var (
	labelStartRe = regexp.MustCompile(`(?m)^START WAL LOCATION: ([0-9A-F]+/[0-9A-F]+) \(file ([0-9A-F]{24})\)$`)
	labelFromRe  = regexp.MustCompile(`(?m)^BACKUP FROM: (\w+)$`)
	labelTLIRe   = regexp.MustCompile(`(?m)^START TIMELINE: (\d+)$`)
)

func parseBackupLabel(text string) (backupLabel, error) {
	var bl backupLabel
	m, from, tli := labelStartRe.FindStringSubmatch(text), labelFromRe.FindStringSubmatch(text), labelTLIRe.FindStringSubmatch(text)
	if m == nil || from == nil || tli == nil {
		return bl, fmt.Errorf("unexpected backup_label: %q", text)
	}
	bl.startLSN, _ = parseLSN(m[1])
	bl.walFile = m[2]
	bl.fromStandby = from[1] != "primary"
	t, err := strconv.ParseUint(tli[1], 10, 32)
	if err != nil || t == 0 {
		return bl, fmt.Errorf("unexpected backup_label timeline: %q", tli[1])
	}
	bl.timeline = uint32(t)
	return bl, nil
}

// manifestEnd reads the backup's end from backup_manifest, the last member of pg_basebackup's tar when it
// writes to stdout: "WAL-Ranges": [{"Timeline": 1, "Start-LSN": "0/2000028", "End-LSN": "0/2000100"}].
// (pg_basebackup prints its start and end points only when it also copies WAL, which we do not.)
func manifestEnd(manifest []byte) (lsn uint64, tli uint32, err error) {
	var m struct {
		Ranges []struct {
			Timeline uint32 `json:"Timeline"`
			EndLSN   string `json:"End-LSN"`
		} `json:"WAL-Ranges"`
	}
	if err := json.Unmarshal(manifest, &m); err != nil {
		return 0, 0, fmt.Errorf("backup_manifest: %w", err)
	}
	if len(m.Ranges) == 0 {
		return 0, 0, errors.New("backup_manifest has no WAL-Ranges")
	}
	last := m.Ranges[len(m.Ranges)-1]
	lsn, err = parseLSN(last.EndLSN)
	return lsn, last.Timeline, err
}
