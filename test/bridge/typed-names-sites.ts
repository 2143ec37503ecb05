// The incident bridge decides with the typed name its allow-list gives the caller's verified key: it is not (yet)
// an issuer the gates trust (docs/SECURITY.md, "Not yet"). Its tests run against workers whose sites file still
// accepts typed names; the sandbox's and the shared test worker's sites file do not.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { testLayout } from '../helpers/test-env';

/** The test sandbox's sites file with `approvals.acceptTypedNames: true` (its rules unchanged), written once per call. */
export function typedNamesSitesFile(): string {
  const file = JSON.parse(readFileSync(testLayout().sitesFile, 'utf8'));
  file.approvals = { ...file.approvals, acceptTypedNames: true };
  const path = join(testLayout().dir, 'sites-typed-names.json');
  writeFileSync(path, JSON.stringify(file, null, 2));
  return path;
}
