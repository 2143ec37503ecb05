// Every saved history of a real run must replay against today's runbook code: a change that would break a
// running workflow fails here, not in production.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from '@temporalio/worker';
import { historyFromJSON } from '@temporalio/common/lib/proto-utils';
import { HISTORIES_DIR } from '../helpers/histories';
import { testBundlePath } from '../helpers/test-env';

const files = readdirSync(HISTORIES_DIR).filter((f) => f.endsWith('.json')).sort();

describe('replay of saved histories', () => {
  it('has histories to replay', () => {
    expect(files).toEqual(expect.arrayContaining([
      'provision-standby.archive.json', 'provision-standby.stream.json',
      'drill.non-disruptive.json', 'drill.promotion-fails.json', 'drill.disruptive.json',
    ]));
  });

  it.each(files)('%s replays deterministically', async (file) => {
    const history = historyFromJSON(JSON.parse(readFileSync(join(HISTORIES_DIR, file), 'utf8')));
    await Worker.runReplayHistory({ workflowBundle: { codePath: testBundlePath() } }, history, file);
  });
});
