// render-worker-rbac: the worker's ServiceAccount, Role and RoleBinding for each `zalando` site of a sites file
// (or the one named), as YAML to apply with kubectl, or one JSON document with --json. Exit 2 on bad input.
import { Command } from 'commander';
import { loadSites, type ZalandoSiteConfig } from '../../activities/sites/sites-file';
import { BadInputError } from '../../workflows/contracts/errors';
import { stringify } from 'yaml';
import {
  exampleWorkerRbacYaml, renderWorkerAdmissionPolicy, renderWorkerRbac, workerRbacYaml, type WorkerRbacOptions,
} from './worker-rbac';

const HEADER = (site: string, sitesFile: string) =>
  `The standby-runbooks worker's identity at site ${site}, rendered from ${sitesFile} by scripts/render-worker-rbac.\n` +
  'Re-render and apply it whenever the site\'s "clusters" change (a new cluster, a member added by scaling up, a\n' +
  'user): the Role names each Secret and member pod it grants, and refuses the rest.';

function main(argv: string[]): number {
  const p = new Command('render-worker-rbac')
    .description('the worker\'s ServiceAccount, Role and RoleBinding for each zalando site, from the sites file\'s "clusters"')
    .option('--sites <file>', 'the sites file (default: $DR_SITES_FILE)')
    .option('--site <name>', 'only this site')
    .option('--patroni-port <port...>', 'Patroni\'s REST port on the pods (default 8008, Spilo\'s)')
    .option('--service-account-namespace <ns>', 'where the ServiceAccount lives, if not in the site\'s namespace')
    .option('--json', 'one JSON document: { "sites": { "<site>": [objects] } }')
    .option('--admission-policy', 'instead: the ValidatingAdmissionPolicy that pins the worker\'s creates to the listed names (a cluster admin applies it)')
    .option('--example', 'deploy/kubernetes/worker-rbac.yaml, from the example sites file in deploy/kubernetes/regions/eu/worker.yaml')
    .exitOverride();
  p.parse(argv);
  const o = p.opts<{ sites?: string; site?: string; patroniPort?: string[]; serviceAccountNamespace?: string; json?: boolean; example?: boolean; admissionPolicy?: boolean }>();
  if (o.example) {
    process.stdout.write(exampleWorkerRbacYaml());
    return 0;
  }
  const loaded = loadSites(o.sites);
  const opts: WorkerRbacOptions = { serviceAccountNamespace: o.serviceAccountNamespace };
  if (o.patroniPort) {
    opts.patroniPorts = o.patroniPort.map((v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 65535) throw new BadInputError(`--patroni-port ${v} is not a port`);
      return n;
    });
  }
  const sites = Object.values(loaded.sites).filter((s): s is ZalandoSiteConfig & { name: string } => s.kind === 'zalando' && (!o.site || s.name === o.site));
  if (sites.length === 0) throw new BadInputError(o.site ? `${loaded.path} has no zalando site "${o.site}"` : `${loaded.path} has no zalando site`);
  const render = o.admissionPolicy ? renderWorkerAdmissionPolicy : renderWorkerRbac;
  if (o.json) {
    process.stdout.write(`${JSON.stringify({ sites: Object.fromEntries(sites.map((s) => [s.name, render(s, opts)])) }, null, 2)}\n`);
  } else if (o.admissionPolicy) {
    process.stdout.write(sites.flatMap((s) => renderWorkerAdmissionPolicy(s, opts)).map((d) => stringify(d, { lineWidth: 0 })).join('---\n'));
  } else {
    process.stdout.write(sites.map((s) => workerRbacYaml(s, opts, HEADER(s.name, o.sites ?? '$DR_SITES_FILE'))).join('---\n'));
  }
  return 0;
}

try {
  process.exitCode = main(process.argv);
} catch (err) {
  const e = err as Error & { code?: string; exitCode?: number };
  if (e.code?.startsWith('commander.')) process.exitCode = e.code === 'commander.helpDisplayed' || e.code === 'commander.version' ? 0 : 2;
  else {
    process.stderr.write(`render-worker-rbac: ${e.message}\n`);
    process.exitCode = err instanceof BadInputError ? 2 : 1;
  }
}
