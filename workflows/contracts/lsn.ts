// Postgres LSNs ("16/B374D848") as bigint byte positions. Bundle-safe.
import { BadInputError } from './errors';

export function parseLsn(text: string): bigint {
  const m = /^([0-9A-Fa-f]{1,8})\/([0-9A-Fa-f]{1,8})$/.exec(text);
  if (!m) throw new BadInputError(`"${text}" is not a Postgres LSN (expected e.g. "0/3000060")`);
  return (BigInt(`0x${m[1]}`) << 32n) | BigInt(`0x${m[2]}`);
}

export function formatLsn(pos: bigint): string {
  return `${(pos >> 32n).toString(16).toUpperCase()}/${(pos & 0xffffffffn).toString(16).toUpperCase()}`;
}

/** Bytes from `from` to `to`; negative when `to` is behind. */
export function lsnDiff(to: string, from: string): number {
  return Number(parseLsn(to) - parseLsn(from));
}

export function lsnAtOrAfter(a: string, b: string): boolean {
  return parseLsn(a) >= parseLsn(b);
}

export const WAL_SEGMENT_BYTES = 16n * 1024n * 1024n;

/** The LSN at the end of a WAL segment file name such as 000000010000000000000003. */
export function walSegmentEndLsn(segment: string): { timeline: number; endLsn: string } {
  const m = /^([0-9A-F]{8})([0-9A-F]{8})([0-9A-F]{8})$/.exec(segment);
  if (!m) throw new BadInputError(`"${segment}" is not a WAL segment name`);
  const log = BigInt(`0x${m[2]}`);
  const seg = BigInt(`0x${m[3]}`);
  const segmentsPerLog = 0x100000000n / WAL_SEGMENT_BYTES;
  const end = (log * segmentsPerLog + seg + 1n) * WAL_SEGMENT_BYTES;
  return { timeline: parseInt(m[1], 16), endLsn: formatLsn(end) };
}
