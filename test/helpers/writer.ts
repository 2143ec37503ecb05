// The continuous writer, aimed at a sandbox cluster by its `<site>/<cluster>` name.
import { startWriter as startWriterOn, type Writer } from '../../scripts/lib/writer';
import { driverOf } from './clusters';

export type { Writer };

export function startWriter(ref: string, everyMs = 20, firstId = 1): Promise<Writer> {
  const { driver, cluster } = driverOf(ref);
  return startWriterOn(driver, cluster, everyMs, firstId);
}
