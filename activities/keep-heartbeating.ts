// Driver operations that wait on Patroni (a rewind, an operator's rolling update, a WAL upload) can outlast the
// heartbeat timeout without reporting progress of their own: a steady heartbeat keeps Temporal from starting a
// second attempt while the first is still working.
import { Context } from '@temporalio/activity';

export async function keepHeartbeating<T>(what: string, work: () => Promise<T>, everyMs = 10_000): Promise<T> {
  const ctx = Context.current();
  const t0 = Date.now();
  const beat = setInterval(() => ctx.heartbeat({ step: what, elapsedMs: Date.now() - t0 }), everyMs);
  try {
    return await work();
  } finally {
    clearInterval(beat);
  }
}
