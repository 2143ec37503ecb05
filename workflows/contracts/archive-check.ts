// The answer of an archive check (WAL-G wal-verify from one backup to one LSN in one prefix). Bundle-safe.

export interface ArchiveSegmentRange {
  timeline: number;
  start: string;
  end: string;
  count: number;
  /** WAL-G's words: FOUND, MISSING_DELAYED, MISSING_UPLOADING, MISSING_LOST. */
  status: string;
}

export interface ArchiveCheck {
  /** OK: a restore of fromBackup reaches upToLsn from this prefix alone. WARNING: segments still being uploaded. */
  status: 'OK' | 'WARNING' | 'FAILURE';
  walPrefix: string;
  fromBackup: string;
  timeline: number;
  upToLsn: string;
  ranges: ArchiveSegmentRange[];
  gaps: ArchiveSegmentRange[];
  detail: string;
}
