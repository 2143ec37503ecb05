// With DR_PAYLOAD_KEYS set, what the Temporal server stores is ciphertext: a real runbook run on the suite's
// Temporal dev server, through the real worker builder (worker/workers.ts) and the codec the worker entry loads.
// The run is a promote of the suite's demo source, which already is a primary: validate only reads it and the run
// ends "already" with a result, so both an input and a result reach the history without changing any cluster.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { randomBytes } from 'node:crypto';
import { Client, Connection } from '@temporalio/client';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import { DefaultLogger, NativeConnection, Runtime, type Worker } from '@temporalio/worker';
import { createDriverFactory } from '../../activities/sites';
import { buildCodecServer } from '../../scripts/lib/codec-server/server';
import { temporalCliPath } from '../../scripts/lib/temporal-dev-server';
import { loadSites } from '../../activities/sites/sites-file';
import { payloadCodecFromEnv, payloadDataConverterFromEnv, ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../worker/payload-codec';
import { createRunbookWorkers } from '../../worker/workers';
import type { PromoteInput, PromoteResult } from '../../workflows/contracts/runbooks';
import { controlTaskQueue } from '../../workflows/contracts/task-queues';
import { historyJson } from '../helpers/histories';
import { testBundlePath, testLayout, testTemporalAddress } from '../helpers/test-env';

const execFileAsync = promisify(execFile);
const SOURCE = 'eu/acid-demo';
const env = { DR_PAYLOAD_KEYS: `test-2026:${randomBytes(32).toString('base64')},test-2025:${randomBytes(32).toString('base64')}` };
/** Every payload in a history the Temporal CLI printed as JSON (metadata and data in base64), as text. */
function payloadTexts(cliJson: string): Array<{ encoding: string; data: string }> {
  const found: Array<{ encoding: string; data: string }> = [];
  const walk = (v: unknown): void => {
    if (Array.isArray(v)) return v.forEach(walk);
    if (!v || typeof v !== 'object') return;
    const o = v as { metadata?: { encoding?: string }; data?: string };
    if (o.metadata?.encoding && typeof o.data === 'string') {
      found.push({ encoding: Buffer.from(o.metadata.encoding, 'base64').toString(), data: Buffer.from(o.data, 'base64').toString('latin1') });
    }
    Object.values(v).forEach(walk);
  };
  walk(JSON.parse(cliJson));
  return found;
}

const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

beforeAll(() => {
  try {
    Runtime.install({ logger: new DefaultLogger('WARN') });
  } catch {
    // Installed already by an earlier test file in this jest worker: it is one per process.
  }
});

it('stores a runbook input and result encrypted: unreadable without the key, decoded by a client and by the codec server', async () => {
  const marker = `codec-marker-${randomBytes(6).toString('hex')}`;
  const prefix = `codec${randomBytes(3).toString('hex')}-`;
  const sites = loadSites(testLayout().sitesFile);
  const nativeConnection = await NativeConnection.connect({ address: testTemporalAddress() });
  const connection = await Connection.connect({ address: testTemporalAddress() });
  const workers: Worker[] = await createRunbookWorkers({
    connection: nativeConnection, namespace: 'default',
    deps: { sites, driverFor: createDriverFactory(sites) },
    servedSites: Object.keys(sites.sites), serveControl: true,
    workflowBundle: { codePath: testBundlePath() }, taskQueuePrefix: prefix,
    dataConverter: payloadDataConverterFromEnv(env),
  });
  const running = workers.map((w) => w.run());
  try {
    const withCodec = new Client({ connection, dataConverter: payloadDataConverterFromEnv(env) });
    const withoutCodec = new Client({ connection });
    // The marker rides only in the input and the result (the source it names, which an "already" promotion only
    // echoes): no activity argument in clear, search attribute, journal line or failure message carries it.
    const input: PromoteInput = { cluster: SOURCE, source: `us/${marker}`, mode: 'unplanned', takeBackup: false };
    const workflowId = `codec-test/${prefix}`;
    const handle = await withCodec.workflow.start('promote', { workflowId, taskQueue: controlTaskQueue(prefix), args: [input] });
    const result = await handle.result() as PromoteResult;
    expect(result).toMatchObject({ cluster: SOURCE, alreadyPromoted: true });

    const raw = await withoutCodec.workflow.getHandle(workflowId).fetchHistory();
    const events = raw.events ?? [];
    const started = events.find((e) => e.workflowExecutionStartedEventAttributes)!.workflowExecutionStartedEventAttributes!;
    const completed = events.find((e) => e.workflowExecutionCompletedEventAttributes)!.workflowExecutionCompletedEventAttributes!;
    const stored: Payload[] = [...started.input!.payloads!, ...completed.result!.payloads!];
    for (const p of stored) {
      expect(text(p.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
      expect(text(p.metadata![KEY_ID_METADATA])).toBe('test-2026');
    }
    // The whole history as the Temporal CLI shows it, every payload in it opened as far as the CLI can.
    const shown = payloadTexts(historyJson(workflowId));
    expect(shown.length).toBeGreaterThanOrEqual(2);
    expect(shown.filter((p) => p.encoding === ENCRYPTED_ENCODING).length).toBeGreaterThanOrEqual(2);
    expect(shown.filter((p) => p.data.includes(marker))).toEqual([]);
    expect(stored.some((p) => Buffer.from(p.data!).includes(marker) || Buffer.from(p.data!).includes('alreadyPromoted'))).toBe(false);

    // The same stored payloads, through the codec: the input and result as sent.
    const codec = payloadCodecFromEnv(env)!;
    const [decodedInput] = await codec.decode(started.input!.payloads!);
    expect(defaultPayloadConverter.fromPayload(decodedInput)).toEqual(input);
    // A client without the key gets ciphertext it cannot convert; one with it, the result.
    await expect(withoutCodec.workflow.getHandle(workflowId).result()).rejects.toThrow(/binary\/encrypted/);
    expect(await withCodec.workflow.getHandle(workflowId).result()).toMatchObject({ cluster: SOURCE, alreadyPromoted: true });

    // What the UI does: the Temporal CLI asks the codec server (scripts/codec-server) over Temporal's remote codec
    // protocol, the same one the UI's "Codec Server" setting uses, and shows the input in clear.
    const codecServer = buildCodecServer({ codec, corsOrigins: [], authorization: 'Bearer codec-test' });
    // A port the kernel picks: no fixed port of the suite's layout can be taken by it.
    const codecUrl = await codecServer.listen({ host: '127.0.0.1', port: 0 });
    try {
      // Asynchronously: the codec server answers from this very process, so a blocking call would never return.
      const { stdout: throughCodec } = await execFileAsync(temporalCliPath(), [
        'workflow', 'show', '--address', testTemporalAddress(), '--namespace', 'default', '--workflow-id', workflowId,
        '--output', 'json', '--codec-endpoint', codecUrl, '--codec-auth', 'Bearer codec-test',
      ], { encoding: 'utf8', timeout: 30_000 });
      const opened = payloadTexts(throughCodec);
      expect(opened.filter((p) => p.encoding === ENCRYPTED_ENCODING)).toEqual([]);
      expect(opened.some((p) => p.encoding === 'json/plain' && p.data.includes(marker))).toBe(true);
      expect(opened.some((p) => p.encoding === 'json/plain' && p.data.includes('"alreadyPromoted":true'))).toBe(true);
    } finally {
      await codecServer.close();
    }
  } finally {
    for (const w of workers) if (w.getState() === 'RUNNING') w.shutdown();
    await Promise.allSettled(running);
    await connection.close();
    await nativeConnection.close();
  }
}, 60_000);
