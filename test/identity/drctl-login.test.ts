// drctl login against the test sandbox's issuer: the token lands in a 0600 file of the user's cache and verifies;
// --json tells who logged in, never the token; a refused login exits 1 and stores nothing.
import { spawn } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { verifyIdToken } from '../../activities/identity/verify-id-token';
import { readStoredIdToken, tokenCacheFile } from '../../scripts/lib/identity/token-cache';
import { sandboxIdentity, sandboxUsers } from '../helpers/identity';
import { REPO_ROOT, testLayout } from '../helpers/test-env';

interface Run { code: number | null; stdout: string; stderr: string }

/** drctl as a user runs it, with `input` on its stdin (a password typed into a pipe). */
function drctl(args: string[], env: Record<string, string>, input = ''): Promise<Run> {
  const child = spawn(join(REPO_ROOT, 'scripts', 'drctl'), args, { cwd: REPO_ROOT, env: { ...process.env, ...env } });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += d; });
  child.stderr.on('data', (d) => { stderr += d; });
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const freshCache = () => ({ XDG_CACHE_HOME: mkdtempSync(join(tmpdir(), 'drctl-cache-')), DR_SITES_FILE: testLayout().sitesFile });

describe('drctl login', () => {
  test('against the sandbox: the password comes from its users file, the token is kept 0600 and verifies', async () => {
    const env = freshCache();
    const run = await drctl(['login', '--user', 'carol', '--json'], env);
    expect(run.code).toBe(0);
    const doc = JSON.parse(run.stdout);
    expect(doc).toMatchObject({ ok: true, command: 'login', subject: 'carol', groups: ['dr-approvers', 'dba-leads'], issuer: sandboxUsers().issuer });
    expect(new Date(doc.expiresAt).getTime()).toBeGreaterThan(Date.now());
    const file = tokenCacheFile(env);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(env.XDG_CACHE_HOME, 'standby-runbooks')).mode & 0o777).toBe(0o700);
    const stored = readStoredIdToken(env)!;
    expect(run.stdout + run.stderr).not.toContain(stored.token);
    expect(run.stdout + run.stderr).not.toContain(sandboxUsers().users.carol.password);
    expect((await verifyIdToken(sandboxIdentity(), stored.token, {})).subject).toBe('carol');
  });

  test('elsewhere the password is asked for; a wrong one is refused by the issuer and nothing is stored', async () => {
    // The same issuer, but a sites file with no sandbox users file beside it: drctl must ask.
    const env = freshCache();
    const elsewhere = mkdtempSync(join(tmpdir(), 'sites-'));
    copyFileSync(testLayout().sitesFile, join(elsewhere, 'sites.json'));
    env.DR_SITES_FILE = join(elsewhere, 'sites.json');
    const wrong = await drctl(['login', '--user', 'bob', '--json'], env, `${sandboxUsers().users.alice.password}\n`);
    expect(wrong.code).toBe(1);
    expect(JSON.parse(wrong.stdout).error).toMatchObject({ kind: 'refused', message: expect.stringMatching(/refused the login of bob: wrong username or password/) });
    expect(existsSync(tokenCacheFile(env))).toBe(false);

    const right = await drctl(['login', '--user', 'bob'], env, `${sandboxUsers().users.bob.password}\n`);
    expect(right.code).toBe(0);
    expect(right.stdout).toMatch(/^logged in as bob \(dr-approvers\) at http:\/\/127\.0\.0\.1:\d+, until /);
    expect(JSON.parse(readFileSync(tokenCacheFile(env), 'utf8')).issuer).toBe(sandboxUsers().issuer);
  });
});
