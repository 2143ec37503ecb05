// Per-caller rate limits: a fixed window per verified key. Counted after the signature is verified, so one caller
// cannot spend another's allowance; kept in memory (a restart starts every window afresh).
import type { CallerKey } from './config';

export type RateVerdict = { ok: true } | { ok: false; retryAfterSeconds: number; reason: string };

export class RateLimiter {
  private readonly windows = new Map<string, { startMs: number; count: number }>();

  take(caller: CallerKey, nowMs = Date.now()): RateVerdict {
    const { max, windowSeconds } = caller.rateLimit;
    const key = `${caller.identity}\u0000${caller.keyId}`;
    let w = this.windows.get(key);
    if (!w || nowMs - w.startMs >= windowSeconds * 1000) {
      w = { startMs: nowMs, count: 0 };
      this.windows.set(key, w);
    }
    if (w.count >= max) {
      const retryAfterSeconds = Math.max(1, Math.ceil((w.startMs + windowSeconds * 1000 - nowMs) / 1000));
      return { ok: false, retryAfterSeconds, reason: `rate limit: key "${caller.keyId}" (${caller.identity}) may send ${max} requests in ${windowSeconds} s; try again in ${retryAfterSeconds} s` };
    }
    w.count += 1;
    return { ok: true };
  }
}
