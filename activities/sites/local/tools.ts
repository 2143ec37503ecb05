// Where the external binaries are. Relative to the repository (not the current directory), so CI works from a
// fresh clone anywhere; DR_TOOLS_BIN / DR_PG_BIN override.
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { PreconditionFailedError } from '../../../workflows/contracts/errors';

export function toolsBin(): string {
  return process.env.DR_TOOLS_BIN ? resolve(process.env.DR_TOOLS_BIN) : resolve(__dirname, '../../../.tools/bin');
}

export function pgBinDir(): string {
  return process.env.DR_PG_BIN ? resolve(process.env.DR_PG_BIN) : '/usr/lib/postgresql/15/bin';
}

/** PATH for children: system dirs only, so a pyenv shim on root's PATH cannot replace Patroni's python. */
export const CHILD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

function findOnPath(name: string): string | null {
  for (const d of CHILD_PATH.split(':')) if (existsSync(join(d, name))) return join(d, name);
  return null;
}

function need(path: string | null, what: string): string {
  if (!path || !existsSync(path)) {
    throw new PreconditionFailedError(`${what} not found${path ? ` at ${path}` : ''}: run scripts/bootstrap`, { what });
  }
  return path;
}

/**
 * WAL-G, in the order scripts/bootstrap uses: WALG_BIN, a wal-g on PATH, then the one scripts/bootstrap builds into
 * the tools folder (v3.0.9 from the vendored source; Spilo images ship their own).
 */
export function walgBin(): string {
  if (process.env.WALG_BIN) return need(resolve(process.env.WALG_BIN), 'wal-g (WALG_BIN)');
  for (const p of [findOnPath('wal-g'), join(toolsBin(), 'wal-g')]) {
    if (p && existsSync(p)) return p;
  }
  return need(null, 'wal-g');
}
export const versitygwBin = (): string => need(join(toolsBin(), 'versitygw'), 'versitygw');
export const etcdBin = (): string => need(process.env.DR_ETCD_BIN ?? findOnPath('etcd'), 'etcd');

/** Which Patroni the local sites run: DR_PATRONI=4 (default) or 3; anything else is refused before a member starts. */
export function patroniMajor(): 3 | 4 {
  const v = process.env.DR_PATRONI ?? '4';
  if (v === '4' || v === '3') return Number(v) as 3 | 4;
  throw new PreconditionFailedError(`DR_PATRONI=${v} is not a Patroni this project runs: set 4 (default) or 3`, { what: 'DR_PATRONI' });
}

/**
 * Patroni: DR_PATRONI_BIN wins; else DR_PATRONI=4 (default) is the 4.1 venv scripts/bootstrap installs into the tools
 * folder, DR_PATRONI=3 is Debian's 3.0.2 on PATH.
 */
export function patroniBin(): string {
  if (process.env.DR_PATRONI_BIN) return need(resolve(process.env.DR_PATRONI_BIN), 'patroni (DR_PATRONI_BIN)');
  if (patroniMajor() === 3) return need(findOnPath('patroni'), 'patroni 3 (Debian, DR_PATRONI=3)');
  return need(resolve(__dirname, '../../../.tools/patroni-4/bin/patroni'), 'patroni 4.1 (DR_PATRONI=4)');
}
