// A folder of 0600 JSON files standing in for the operator's Kubernetes Secrets
// (`<user>.<cluster>.credentials.postgresql.acid.zalan.do` becomes `<dir>/<cluster>/<user>.json`).
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, fsyncSync, mkdirSync, openSync, closeSync, readFileSync, readdirSync, renameSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { BadInputError } from '../../../workflows/contracts/errors';

export interface Credentials {
  username: string;
  password: string;
}

const NAME = /^[a-z0-9]([a-z0-9_.-]{0,61}[a-z0-9])?$/;

function checkName(kind: string, value: string): void {
  if (!NAME.test(value)) throw new BadInputError(`invalid ${kind} name "${value}" for the secret store`);
}

export class SecretStore {
  constructor(readonly dir: string) {}

  private file(cluster: string, user: string): string {
    checkName('cluster', cluster);
    checkName('user', user);
    return join(this.dir, cluster, `${user}.json`);
  }

  read(cluster: string, user: string): Credentials | null {
    const f = this.file(cluster, user);
    if (!existsSync(f)) return null;
    let v: Partial<Credentials>;
    try {
      v = JSON.parse(readFileSync(f, 'utf8')) as Partial<Credentials>;
    } catch {
      // A SyntaxError would be retried as if the file could mend itself. Its message quotes the file's text, a
      // password perhaps, so only the file is named.
      throw new BadInputError(`secret ${cluster}/${user} is not valid JSON: rewrite ${f} as {"username": "...", "password": "..."}`);
    }
    if (typeof v.username !== 'string' || typeof v.password !== 'string') {
      throw new BadInputError(`secret ${cluster}/${user} is malformed (needs username and password)`);
    }
    return { username: v.username, password: v.password };
  }

  /** Atomic (temp file + rename), 0600 in 0700 folders; writing the same value again changes nothing. */
  write(cluster: string, user: string, value: Credentials): { changed: boolean } {
    const f = this.file(cluster, user);
    const cur = this.read(cluster, user);
    if (cur && cur.username === value.username && cur.password === value.password) return { changed: false };
    mkdirSync(this.dir, { recursive: true, mode: 0o700 });
    chmodSync(this.dir, 0o700);
    const dir = join(this.dir, cluster);
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    chmodSync(dir, 0o700);
    const tmp = `${f}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`;
    const fd = openSync(tmp, 'wx', 0o600);
    try {
      writeSync(fd, JSON.stringify({ username: value.username, password: value.password }) + '\n');
      fsyncSync(fd);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, f);
    return { changed: true };
  }

  /** Creates a random password for `user` unless a secret already exists (a pre-existing one is adopted). */
  ensure(cluster: string, user: string): { changed: boolean } {
    if (this.read(cluster, user)) return { changed: false };
    return this.write(cluster, user, { username: user, password: randomBytes(24).toString('base64url') });
  }

  listUsers(cluster: string): string[] {
    checkName('cluster', cluster);
    const dir = join(this.dir, cluster);
    if (!existsSync(dir)) return [];
    return readdirSync(dir)
      .filter((f) => f.endsWith('.json'))
      .map((f) => f.slice(0, -'.json'.length))
      .sort();
  }

  deleteCluster(cluster: string): { changed: boolean } {
    checkName('cluster', cluster);
    const dir = join(this.dir, cluster);
    if (!existsSync(dir)) return { changed: false };
    rmSync(dir, { recursive: true, force: true });
    return { changed: true };
  }
}
