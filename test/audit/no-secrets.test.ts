// Runs last (test/helpers/sequencer.js): no secret value the sandbox created may appear in any workflow history,
// search attribute or memo of the whole suite, nor in any log the runbooks wrote.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { Client, Connection } from '@temporalio/client';
import { HISTORIES_DIR, historyJson } from '../helpers/histories';
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

/** Every password in every region's secret store, the S3 secret key, and what other tests handed over. */
function secretValues(): string[] {
  const layout = testLayout();
  const values = new Set<string>();
  for (const f of walk(join(layout.dir, 'regions')).filter((p) => /\/secrets\/.+\.json$/.test(p))) {
    values.add((JSON.parse(readFileSync(f, 'utf8')) as { password: string }).password);
  }
  const creds = readFileSync(layout.credentialsFile, 'utf8');
  values.add(/aws_secret_access_key\s*=\s*(\S+)/.exec(creds)![1]);
  for (const f of walk(AUDIT_SECRETS_DIR())) for (const v of JSON.parse(readFileSync(f, 'utf8')) as string[]) values.add(v);
  return [...values].filter((v) => v.length >= 8);
}

describe('secrets never leave the activities', () => {
  const secrets = secretValues();

  it('the sandbox created secrets to look for', () => {
    expect(secrets.length).toBeGreaterThanOrEqual(4);
  });

  it('no history, search attribute or memo of any run of this suite holds a secret value', async () => {
    const client = new Client({ connection: await Connection.connect({ address: testTemporalAddress() }) });
    let runs = 0;
    const leaks: string[] = [];
    for await (const wf of client.workflow.list()) {
      runs++;
      const history = historyJson(wf.workflowId, wf.runId);
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
      const text = readFileSync(f, 'utf8');
      return secrets.some((s) => text.includes(s));
    });
    expect(leaks).toEqual([]);
  });
});
