// Orders and splits the suite. scripts/test runs it as concurrent shards (each with its own Temporal, sandbox and
// ports); the split balances the files' measured durations (test/helpers/test-durations.json, refreshed with
// DR_SAVE_DURATIONS=1) so the shards end together. The secrets audit runs last in every shard: it inspects what that
// shard's own runbooks left behind. The other audit files run last in the shard that gets them.
const { readFileSync, existsSync } = require('node:fs');
const { join, relative } = require('node:path');
const Sequencer = require('@jest/test-sequencer').default;

const ROOT = join(__dirname, '..', '..');
const DURATIONS_FILE = join(__dirname, 'test-durations.json');
/** A file not measured yet counts as a middling integration file. */
const UNMEASURED_SECONDS = 60;
const EVERY_SHARD = ['test/audit/no-secrets.test.ts'];

const rel = (t) => relative(ROOT, t.path);
const isAudit = (t) => rel(t).startsWith('test/audit/');

function durations() {
  return existsSync(DURATIONS_FILE) ? JSON.parse(readFileSync(DURATIONS_FILE, 'utf8')) : {};
}

class BalancedShardSequencer extends Sequencer {
  shard(tests, { shardIndex, shardCount }) {
    const seconds = durations();
    const cost = (t) => seconds[rel(t)] ?? UNMEASURED_SECONDS;
    const load = new Array(shardCount).fill(0);
    const picked = new Set();
    // Longest first, each onto the least loaded shard; ties by path so every shard process computes the same split.
    const spread = tests.filter((t) => !EVERY_SHARD.includes(rel(t)))
      .sort((a, b) => cost(b) - cost(a) || rel(a).localeCompare(rel(b)));
    for (const t of spread) {
      const target = load.indexOf(Math.min(...load));
      load[target] += cost(t);
      if (target === shardIndex - 1) picked.add(t);
    }
    return tests.filter((t) => picked.has(t) || EVERY_SHARD.includes(rel(t)));
  }

  sort(tests) {
    const byPath = (a, b) => rel(a).localeCompare(rel(b));
    return [...super.sort(tests.filter((t) => !isAudit(t))), ...tests.filter(isAudit).sort(byPath)];
  }
}

module.exports = BalancedShardSequencer;
