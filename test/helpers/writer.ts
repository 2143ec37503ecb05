// The continuous writer, aimed at sandbox clusters by their `<site>/<cluster>` names: one cluster, or both sides
// of a pair, to follow the primary across a switchover.
import { startWriter as startWriterOn, type Writer } from '../../scripts/lib/writer';
import { driverOf } from './clusters';

export type { Writer };

export function startWriter(refs: string | string[], everyMs = 20, firstId = 1): Promise<Writer> {
  return startWriterOn((Array.isArray(refs) ? refs : [refs]).map(driverOf), everyMs, firstId);
}
