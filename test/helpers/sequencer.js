// Runs the audit tests last: they inspect what the rest of the suite left behind.
const Sequencer = require('@jest/test-sequencer').default;

class AuditLastSequencer extends Sequencer {
  sort(tests) {
    const isAudit = (t) => t.path.includes('/test/audit/');
    return [...super.sort(tests.filter((t) => !isAudit(t))), ...tests.filter(isAudit).sort((a, b) => a.path.localeCompare(b.path))];
  }
}

module.exports = AuditLastSequencer;
