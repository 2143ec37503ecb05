// The few Patroni REST calls the local runtime needs (the lead's activities have their own client).

export interface PatroniClusterMember {
  name: string;
  /** `leader`, `standby_leader`, `replica`, `sync_standby` */
  role: string;
  /** `running`, `streaming`, `starting`, `creating replica`, `stopped`, ... */
  state: string;
  host?: string;
  port?: number;
  api_url?: string;
  timeline?: number;
  lag?: number | string;
}

export interface PatroniClusterView {
  members: PatroniClusterMember[];
  pause?: boolean;
}

export interface PatroniNodeStatus {
  state: string;
  /** `master` (Patroni < 4), `primary`, `replica`, `standby_leader` */
  role: string;
  timeline?: number;
  server_version?: number;
  xlog?: Record<string, unknown>;
  patroni?: { version: string; scope: string };
}

/** GET a Patroni endpoint; null when nothing answers (connection refused, timeout). */
export async function patroniGet<T>(baseUrl: string, path: string, timeoutMs = 3_000): Promise<T | null> {
  try {
    const r = await fetch(`${baseUrl}${path}`, { signal: AbortSignal.timeout(timeoutMs) });
    // /patroni answers 200 or 503 with a body; both are answers.
    const text = await r.text();
    return text ? (JSON.parse(text) as T) : null;
  } catch {
    return null;
  }
}

export const LEADER_ROLES = new Set(['leader', 'standby_leader']);

export function leaderOf(view: PatroniClusterView | null): PatroniClusterMember | null {
  return view?.members.find((m) => LEADER_ROLES.has(m.role)) ?? null;
}
