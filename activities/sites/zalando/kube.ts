// How the zalando driver talks to Kubernetes: @kubernetes/client-node loads the kubeconfig context (or the
// in-cluster ServiceAccount) and authenticates every request; REST paths are used directly, since the driver needs
// a handful of them, including Patroni's REST API through the pods/proxy subresource and exec for Spilo's scripts.
// Every refusal by the API server becomes a typed error that names what to fix.
import https from 'node:https';
import { PassThrough, Writable } from 'node:stream';
import { Exec, KubeConfig, type V1Status } from '@kubernetes/client-node';
import {
  BadInputError, NotReadyError, PreconditionFailedError, SiteUnreachableError,
} from '../../../workflows/contracts/errors';

export interface KubeAccessConfig {
  /** kubeconfig file; absent: the in-cluster ServiceAccount of the worker's pod. */
  kubeconfig?: string;
  context?: string;
  namespace: string;
}

export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    uid?: string;
    resourceVersion?: string;
    labels?: Record<string, string>;
    annotations?: Record<string, string>;
  };
  [field: string]: unknown;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

// The Role names the clusters, Secrets and pods it grants: a refusal may mean a cluster or member the sites file
// does not list yet, so the message says where the Role comes from.
const RBAC_FILE = 'rendered from the sites file\'s "clusters" by scripts/render-worker-rbac, as deploy/kubernetes/worker-rbac.yaml is';

export class KubeAccess {
  readonly kc = new KubeConfig();
  readonly namespace: string;
  private readonly where: string;

  constructor(cfg: KubeAccessConfig) {
    this.namespace = cfg.namespace;
    if (cfg.kubeconfig) {
      try {
        this.kc.loadFromFile(cfg.kubeconfig);
      } catch (err) {
        throw new BadInputError(`cannot read kubeconfig ${cfg.kubeconfig}: ${(err as Error).message}`);
      }
      if (cfg.context) {
        if (!this.kc.getContexts().some((c) => c.name === cfg.context)) {
          throw new BadInputError(`kubeconfig ${cfg.kubeconfig} has no context "${cfg.context}" (it has: ${this.kc.getContexts().map((c) => c.name).join(', ')})`);
        }
        this.kc.setCurrentContext(cfg.context);
      }
    } else {
      this.kc.loadFromCluster();
    }
    this.where = `${cfg.context ? `context ${cfg.context}` : 'in-cluster'}, namespace ${cfg.namespace}`;
  }

  /** `/api/v1/namespaces/<ns>/<rest>` (groupVersion '') or `/apis/<group>/<version>/namespaces/<ns>/<rest>`. */
  path(groupVersion: string, rest: string): string {
    return `${groupVersion === '' ? '/api/v1' : `/apis/${groupVersion}`}/namespaces/${this.namespace}/${rest}`;
  }

  async get<T extends KubeObject>(path: string): Promise<T | null> {
    const r = await this.request('GET', path);
    return r.status === 404 ? null : (this.check(r, 'GET', path) as T);
  }

  async list<T extends KubeObject>(path: string, labelSelector?: string): Promise<T[]> {
    const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
    return ((this.check(await this.request('GET', path + q), 'LIST', path) as { items?: T[] }).items ?? []);
  }

  async create<T extends KubeObject>(path: string, body: KubeObject): Promise<T> {
    return this.check(await this.request('POST', path, body), 'CREATE', path) as T;
  }

  /** JSON merge patch (RFC 7386): null removes a field. */
  async mergePatch<T extends KubeObject>(path: string, patch: unknown): Promise<T> {
    return this.check(await this.request('PATCH', path, patch, 'application/merge-patch+json'), 'PATCH', path) as T;
  }

  /** Deletes; false when it was already gone. */
  async delete(path: string): Promise<boolean> {
    const r = await this.request('DELETE', path);
    if (r.status === 404) return false;
    this.check(r, 'DELETE', path);
    return true;
  }

  /** Patroni's REST API on a pod, through the API server (pods/proxy). Null when Patroni does not answer. */
  async patroni<T>(pod: string, port: number, method: 'GET' | 'PATCH' | 'POST', path: string, body?: unknown): Promise<{ status: number; body: T } | null> {
    const proxyPath = this.path('', `pods/${pod}:${port}/proxy${path}`);
    const r = await this.request(method, proxyPath, body);
    // The API server answers 503 (its own Status object) when it cannot reach the pod; Patroni itself answers
    // 503 on some health endpoints with its JSON: tell them apart by the body.
    const fromApiServer = (r.json as { kind?: string } | null)?.kind === 'Status';
    if (r.status === 403 || r.status === 401) this.check(r, method, proxyPath);
    if (fromApiServer && r.status >= 500) return null;
    if (r.status === 404 && fromApiServer) return null;
    return { status: r.status, body: r.json as T };
  }

  /**
   * A container's log (pods/log) from `since` on, each line without the kubelet's timestamp; null when the pod or
   * its log is gone. Spilo's Patroni logs to the container's stdout, so this is where Patroni says what it did.
   */
  async podLog(pod: string, container: string, since: Date): Promise<string[] | null> {
    const sinceTime = new Date(Math.floor(since.getTime() / 1000) * 1000).toISOString().replace('.000Z', 'Z');
    const path = this.path('', `pods/${pod}/log?container=${encodeURIComponent(container)}&timestamps=true&sinceTime=${encodeURIComponent(sinceTime)}`);
    const r = await this.request('GET', path);
    if (r.status === 401 || r.status === 403) this.check(r, 'GET', path);
    if (r.status !== 200) return null;
    // timestamps=true: "<RFC3339Nano> <line>"; filtered again here since sinceTime is whole seconds.
    return r.text.split('\n').flatMap((l) => {
      const sp = l.indexOf(' ');
      const at = Date.parse(l.slice(0, sp));
      return sp > 0 && at >= since.getTime() - 1_000 ? [l.slice(sp + 1)] : [];
    });
  }

  /** Runs argv in a container of a pod (pods/exec) and returns its exit code and output. */
  async exec(pod: string, container: string, argv: string[], timeoutMs: number, onLine?: (line: string) => void): Promise<ExecResult> {
    const out: string[] = [];
    const err: string[] = [];
    const sink = (acc: string[]) => new Writable({
      write(chunk: Buffer, _enc, done) {
        const text = chunk.toString('utf8');
        acc.push(text);
        if (onLine) for (const l of text.split('\n')) if (l.trim()) onLine(l.trim());
        done();
      },
    });
    const status = await new Promise<V1Status>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SiteUnreachableError(`exec in ${this.namespace}/${pod} (${argv[0]}) did not finish in ${timeoutMs} ms`)), timeoutMs);
      const stdin = new PassThrough();
      stdin.end();
      new Exec(this.kc).exec(this.namespace, pod, container, argv, sink(out), sink(err), null, false, (s) => {
        clearTimeout(timer);
        resolve(s);
      }).catch((e: unknown) => {
        clearTimeout(timer);
        reject(this.execFailure(e, pod));
      });
    });
    return { exitCode: exitCodeOf(status), stdout: out.join(''), stderr: err.join('') };
  }

  private execFailure(e: unknown, pod: string): Error {
    const msg = String((e as { message?: string })?.message ?? e);
    if (/403|forbidden/i.test(msg)) {
      return new PreconditionFailedError(`Kubernetes (${this.where}) refused exec in pod ${pod}: ${msg}; the worker's Role (${RBAC_FILE}) must allow "get" and "create" on "pods/exec" (a WebSocket exec is a GET)`);
    }
    return new SiteUnreachableError(`exec in ${this.namespace}/${pod} failed: ${msg}`);
  }

  private check(r: { status: number; json: unknown; text: string }, verb: string, path: string): unknown {
    if (r.status >= 200 && r.status < 300) return r.json;
    const message = (r.json as { message?: string } | null)?.message ?? r.text.slice(0, 300);
    const what = `${verb} ${path} (${this.where})`;
    if (r.status === 401) throw new PreconditionFailedError(`Kubernetes did not accept the worker's credentials for ${what}: ${message}`);
    if (r.status === 403) {
      throw new PreconditionFailedError(`Kubernetes refused ${what}: ${message}. The worker's Role (${RBAC_FILE}) must allow it.`);
    }
    if (r.status === 400 || r.status === 422) throw new BadInputError(`Kubernetes rejected ${what}: ${message}`);
    if (r.status === 409) throw new NotReadyError(`conflict on ${what}: ${message}`);
    if (r.status === 404) throw new PreconditionFailedError(`${what}: not found (${message})`);
    throw new SiteUnreachableError(`Kubernetes answered ${r.status} to ${what}: ${message}`);
  }

  private async request(method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<{ status: number; json: unknown; text: string }> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new BadInputError(`kubeconfig (${this.where}) names no cluster`);
    const url = new URL(cluster.server + path);
    const opts: https.RequestOptions = { method, headers: { accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(opts);
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    if (payload) Object.assign(opts.headers as Record<string, string>, { 'content-type': contentType, 'content-length': String(payload.length) });
    return new Promise((resolve, reject) => {
      const req = https.request(url, { ...opts, timeout: 30_000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json: unknown = null;
          try {
            json = text ? JSON.parse(text) : null;
          } catch {
            json = null;
          }
          resolve({ status: res.statusCode ?? 0, json, text });
        });
      });
      req.on('timeout', () => req.destroy(new Error('timed out after 30 s')));
      req.on('error', (e) => reject(new SiteUnreachableError(`Kubernetes API ${cluster.server} (${this.where}) unreachable: ${e.message}`)));
      if (payload) req.write(payload);
      req.end();
    });
  }
}

/** The exit code exec reports: Success is 0; a non-zero exit is a Failure with cause ExitCode. */
function exitCodeOf(s: V1Status): number {
  if (s.status === 'Success') return 0;
  const cause = s.details?.causes?.find((c) => c.reason === 'ExitCode');
  return cause?.message ? Number(cause.message) : 1;
}
