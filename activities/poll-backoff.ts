// Waits a runbook sits in (a WAL file reaching S3, a standby replaying to a marker) usually end within a second of
// starting, so a fixed interval of several seconds mostly adds its own length to the run. Looking again soon and
// then less and less often, up to the caller's interval, ends those waits promptly and keeps long ones as cheap.

/** The pause before the next look: `firstMs`, doubling each time, never more than `maxMs`. */
export function backoffPauses(maxMs: number, firstMs = 200): () => number {
  let next = Math.min(firstMs, maxMs);
  return () => {
    const pause = next;
    next = Math.min(next * 2, maxMs);
    return pause;
  };
}
