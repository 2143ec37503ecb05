// Cluster references `<site>/<cluster>` and Zalando naming rules. Bundle-safe.
import { BadInputError } from './errors';

export interface ClusterRef {
  site: string;
  cluster: string;
}

const SITE_NAME = /^[a-z][a-z0-9-]{0,30}$/;
// DNS-1035 label: the operator uses the name as the Patroni scope and in Service names.
const CLUSTER_NAME = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
export const MAX_CLUSTER_NAME_LENGTH = 53;

/** Parse `<site>/<cluster>`; throws BadInputError saying what to fix. */
export function parseClusterRef(text: unknown, field = 'cluster'): ClusterRef {
  if (text !== undefined && text !== null && typeof text !== 'string') {
    throw new BadInputError(`${field} must be a string "<site>/<cluster>", e.g. "eu/acid-demo", not a ${Array.isArray(text) ? 'list' : typeof text}`);
  }
  if (typeof text !== 'string' || text.length === 0) {
    throw new BadInputError(`${field} is missing: give it as "<site>/<cluster>", e.g. "eu/acid-demo"`);
  }
  const parts = text.split('/');
  if (parts.length !== 2) {
    throw new BadInputError(`${field} "${text}" must be "<site>/<cluster>", e.g. "eu/acid-demo"`);
  }
  const [site, cluster] = parts;
  if (!SITE_NAME.test(site)) {
    throw new BadInputError(`${field} "${text}": site "${site}" must be lower-case letters, digits and '-'`);
  }
  const problem = zalandoClusterNameProblem(cluster);
  if (problem) throw new BadInputError(`${field} "${text}": ${problem}`);
  return { site, cluster };
}

/** Why a name is not a valid Zalando `postgresql` name, or undefined when it is. */
export function zalandoClusterNameProblem(name: string): string | undefined {
  if (name.length > MAX_CLUSTER_NAME_LENGTH) {
    return `cluster name "${name}" has ${name.length} characters; the operator allows at most ${MAX_CLUSTER_NAME_LENGTH}`;
  }
  if (!CLUSTER_NAME.test(name)) {
    return `cluster name "${name}" must be lower-case letters, digits and '-', start with a letter and end with a letter or digit`;
  }
  const dash = name.indexOf('-');
  if (dash <= 0 || dash === name.length - 1) {
    return `cluster name "${name}" must start with its team id and a dash, e.g. "acid-${name}"`;
  }
  return undefined;
}

export function formatClusterRef(ref: ClusterRef): string {
  return `${ref.site}/${ref.cluster}`;
}

export function sameCluster(a: ClusterRef, b: ClusterRef): boolean {
  return a.site === b.site && a.cluster === b.cluster;
}
