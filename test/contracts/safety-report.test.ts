// The promotion-safety table of docs/RELIABILITY.md: every catalogued test exists under the name jest will report,
// and the table shows what the run gave it — a failure or a test that did not run is never shown as a pass.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SAFETY_TESTS } from '../../scripts/lib/safety-catalogue';
import { mergeResults, renderSafetySection } from '../../scripts/lib/safety-report';
import { REPO_ROOT } from '../helpers/test-env';

const quoted = (s: string) => [`'${s.replace(/'/g, "\\'")}'`, `"${s}"`, `\`${s}\``];

describe('promotion-safety report', () => {
  it('names only tests that exist, as describe + test title', () => {
    for (const t of SAFETY_TESTS) {
      const text = readFileSync(join(REPO_ROOT, t.file), 'utf8');
      const describes = [...text.matchAll(/describe\((['"`])((?:\\.|(?!\1).)*)\1/g)].map((m) => m[2].replace(/\\'/g, "'"));
      // The longest describe the name starts with: "fencing epoch" is also the start of "fencing epoch of a …".
      const outer = describes.filter((d) => t.name.startsWith(`${d} `)).sort((a, b) => b.length - a.length)[0];
      expect({ file: t.file, describe: outer ?? null }).toEqual({ file: t.file, describe: expect.any(String) });
      const title = t.name.slice(outer!.length + 1);
      expect({ file: t.file, title, found: quoted(title).some((q) => text.includes(q)) }).toEqual({ file: t.file, title, found: true });
    }
  });

  it('shows a failed test as FAIL and a test the run did not execute as not run', () => {
    const first = SAFETY_TESTS[0];
    const second = SAFETY_TESTS.find((t) => t.file !== first.file)!;
    const rest = SAFETY_TESTS.filter((t) => t !== first && t !== second);
    const md = renderSafetySection({
      startTime: Date.parse('2026-12-06T00:00:00Z'),
      testResults: [
        { name: `/x/${first.file}`, assertionResults: [{ fullName: first.name, status: 'passed', duration: 3000 }] },
        { name: `/x/${second.file}`, assertionResults: [{ fullName: second.name, status: 'failed', failureMessages: ['Error: two writers\n  at x'] }] },
      ],
    });
    const line = (name: string) => md.split('\n').find((l) => l.includes(name))!;
    expect(line(first.name)).toContain('| pass |');
    expect(line(second.name)).toContain('**FAIL** (Error: two writers)');
    for (const t of rest) expect(line(t.name)).toContain('| not run |');
    expect(md).toContain(`${SAFETY_TESTS.length} safety tests, 1 passed, ${SAFETY_TESTS.length - 1} not passed`);
  });

  it('takes a later rerun of a file over the full run, and keeps the files the rerun did not run', () => {
    const a = SAFETY_TESTS[0];
    const b = SAFETY_TESTS.find((t) => t.file !== a.file)!;
    const merged = mergeResults([
      { startTime: 1, testResults: [
        { name: `/ci/${a.file}`, assertionResults: [{ fullName: a.name, status: 'passed' }] },
        { name: `/ci/${b.file}`, assertionResults: [{ fullName: b.name, status: 'failed', failureMessages: ['timeout'] }] },
      ] },
      { startTime: 2, testResults: [{ name: `/dev/${b.file}`, assertionResults: [{ fullName: b.name, status: 'passed' }] }] },
    ]);
    const md = renderSafetySection(merged);
    const line = (name: string) => md.split('\n').find((l) => l.includes(name))!;
    expect(line(a.name)).toContain('| pass |');
    expect(line(b.name)).toContain('| pass |');
  });
});
