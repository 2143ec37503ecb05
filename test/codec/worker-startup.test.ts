// The worker entry (worker/main.ts, what the Deployment runs) with a bad payload key: it must stop before it
// connects, exit non-zero, and say what is wrong without printing the key. A real process, as Kubernetes starts it.
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { REPO_ROOT, testLayout } from '../helpers/test-env';

function startWorker(extraEnv: Record<string, string>) {
  return spawnSync(join(REPO_ROOT, 'node_modules', '.bin', 'tsx'), [join(REPO_ROOT, 'worker', 'main.ts')], {
    env: {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: process.env.HOME ?? '/root',
      AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
      DR_SITES_FILE: testLayout().sitesFile,
      // Nothing listens here: a worker that got as far as connecting would fail with a connection error instead.
      TEMPORAL_ADDRESS: '127.0.0.1:1',
      ...extraEnv,
    },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('worker/main.ts refuses to start with a malformed payload key', () => {
  it('a key of the wrong length: exit 1, the variable, entry and key ID named, no key material', () => {
    const shortKey = randomBytes(24).toString('base64');
    const r = startWorker({ DR_PAYLOAD_KEYS: `prod-2026:${shortKey}` });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('worker failed: DR_PAYLOAD_KEYS, entry 1 (key "prod-2026"): the key decodes to 24 bytes, AES-256 needs 32');
    expect(r.stderr + r.stdout).not.toContain(shortKey.slice(0, 8));
    expect(r.stdout).not.toContain('worker ready');
  });

  it('a key file that is missing: exit 1, the path named', () => {
    const r = startWorker({ DR_PAYLOAD_KEYS_FILE: '/nonexistent/dr-payload-keys' });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('worker failed: DR_PAYLOAD_KEYS_FILE=/nonexistent/dr-payload-keys cannot be read: ENOENT');
  });
});
