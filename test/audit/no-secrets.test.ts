// Runs last (test/helpers/sequencer.js): no secret value the sandbox created may appear in any workflow history,
// search attribute or memo of the whole suite, nor in any log the runbooks wrote.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { HISTORIES_DIR } from '../helpers/histories';
import { AUDIT_SECRETS_DIR, testLayout, testTemporalAddress } from '../helpers/test-env';

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    const st = statSync(p);
    if (st.isDirectory()) walk(p, out);
    else out.push(p);
  }
  return out;
}

/**
 * Every password in every region's secret store, the S3 secret key, the sandbox issuer's users' passwords and private
 * signing keys, and what other tests handed over.
 */
function secretValues(): string[] {
  const layout = testLayout();
  const values = new Set<string>();
  for (const f of walk(join(layout.dir, 'regions')).filter((p) => /\/secrets\/.+\.json$/.test(p))) {
    values.add((JSON.parse(readFileSync(f, 'utf8')) as { password: string }).password);
  }
  const creds = readFileSync(layout.credentialsFile, 'utf8');
  values.add(/aws_secret_access_key\s*=\s*(\S+)/.exec(creds)![1]);
  const identity = join(layout.dir, 'identity');
  if (existsSync(join(identity, 'users.json'))) {
    const { users } = JSON.parse(readFileSync(join(identity, 'users.json'), 'utf8')) as { users: Record<string, { password: string }> };
    for (const u of Object.values(users)) values.add(u.password);
    for (const k of (JSON.parse(readFileSync(join(identity, 'jwks.json'), 'utf8')) as { keys: Array<{ d: string }> }).keys) values.add(k.d);
  }
  for (const f of walk(AUDIT_SECRETS_DIR())) for (const v of JSON.parse(readFileSync(f, 'utf8')) as string[]) values.add(v);
  return [...values].filter((v) => v.length >= 8);
}

/**
 * Everything a history says, payloads included as text: payload data is bytes (base64 in the CLI's JSON), so a
 * search of the raw JSON alone would never find a secret inside an input, a result or a heartbeat.
 */
export function readableText(value: unknown): string {
  const parts: string[] = [];
  const visit = (v: unknown, key?: string): void => {
    if (v instanceof Uint8Array) parts.push(Buffer.from(v).toString('utf8'));
    else if (typeof v === 'string') {
      parts.push(v);
      if (key === 'data' && /^[A-Za-z0-9+/]+={0,2}$/.test(v)) parts.push(Buffer.from(v, 'base64').toString('utf8'));
    } else if (Array.isArray(v)) v.forEach((x) => visit(x));
    else if (v && typeof v === 'object') for (const [k, x] of Object.entries(v)) visit(x, k);
  };
  visit(value);
  return parts.join('\n');
}

describe('secrets never leave the activities', () => {
  const secrets = secretValues();

  it('the sandbox created secrets to look for', () => {
    expect(secrets.length).toBeGreaterThanOrEqual(4);
  });

  it('the search reads inside payloads, in the CLI\'s JSON (base64) and in the SDK\'s history (bytes)', () => {
    const planted = JSON.stringify({ password: 'planted-secret-value' });
    const cliJson = JSON.parse(JSON.stringify({ events: [{ input: { payloads: [{ metadata: {}, data: Buffer.from(planted).toString('base64') }] } }] }));
    expect(JSON.stringify(cliJson)).not.toContain('planted-secret-value');
    expect(readableText(cliJson)).toContain('planted-secret-value');
    expect(readableText({ events: [{ result: { payloads: [{ data: new TextEncoder().encode(planted) }] } }] })).toContain('planted-secret-value');
  });

  it('no history, search attribute or memo of any run of this suite holds a secret value', async () => {
    const client = new Client({ connection: await Connection.connect({ address: testTemporalAddress() }) });
    let runs = 0;
    const leaks: string[] = [];
    for await (const wf of client.workflow.list()) {
      runs++;
      const history = readableText(await client.workflow.getHandle(wf.workflowId, wf.runId).fetchHistory());
      const visible = JSON.stringify({ sa: wf.typedSearchAttributes, memo: await wf.memo });
      for (const s of secrets) {
        if (history.includes(s) || visible.includes(s)) leaks.push(`${wf.workflowId}/${wf.runId}`);
      }
    }
    await client.connection.close();
    expect(runs).toBeGreaterThan(0);
    expect(leaks).toEqual([]);
  });

  it('no saved history fixture and no log file holds a secret value', () => {
    const files = [...walk(HISTORIES_DIR), ...walk(testLayout().dir).filter((p) => p.endsWith('.log'))];
    expect(files.length).toBeGreaterThan(0);
    const leaks = files.filter((f) => {
      const raw = readFileSync(f, 'utf8');
      const text = f.endsWith('.json') ? readableText(JSON.parse(raw)) : raw;
      return secrets.some((s) => text.includes(s));
    });
    expect(leaks).toEqual([]);
  });
});
