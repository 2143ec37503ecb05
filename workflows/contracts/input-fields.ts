// Refuses fields a runbook does not know. A typo in the UI's JSON form ("limit", "dataLosPolicy") would
// otherwise be dropped silently and the run would go ahead on defaults the operator did not choose. Bundle-safe.
import { BadInputError } from './errors';

/**
 * Throws BadInputError naming every field of `input` that is not in `known`. `known` is typed as a record of
 * the input interface's keys, so a field added to the contract and not here fails to compile.
 */
export function rejectUnknownFields<T>(input: object, known: Record<keyof T, true>, where = 'input'): void {
  if (Array.isArray(input)) throw new BadInputError(`${where} must be a JSON object with the fields ${Object.keys(known).join(', ')}, not a list`);
  const unknown = Object.keys(input).filter((k) => !Object.prototype.hasOwnProperty.call(known, k));
  if (unknown.length === 0) return;
  throw new BadInputError(
    `${where} has unknown field${unknown.length > 1 ? 's' : ''} ${unknown.map((k) => `"${k}"`).join(', ')}: ` +
      `remove ${unknown.length > 1 ? 'them' : 'it'} or fix the spelling; known fields are ${Object.keys(known).join(', ')}`,
  );
}
