// The payload codec on its own: what it writes, what it refuses to read, and key rotation. No server needed.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { inspect } from 'node:util';
import { defaultPayloadConverter, type Payload } from '@temporalio/common';
import {
  AesGcmPayloadCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, payloadDataConverterFromEnv, PayloadDecryptionError,
} from '../../worker/payload-codec';
import { loadPayloadKeys, parsePayloadKeys, PayloadKeyConfigError } from '../../worker/payload-keys';

const newKey = () => randomBytes(32).toString('base64');
const codecOf = (spec: string) => new AesGcmPayloadCodec(parsePayloadKeys(spec, 'DR_PAYLOAD_KEYS'));
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const input = { cluster: 'us/acid-orders', mode: 'planned', ticket: 'INC-4711' };

describe('AesGcmPayloadCodec', () => {
  it('round-trips a payload: same metadata and data back, nothing of it readable in between', async () => {
    const codec = codecOf(`k1:${newKey()}`);
    const original = defaultPayloadConverter.toPayload(input);
    const [sealed] = await codec.encode([original]);
    expect(text(sealed.metadata!.encoding)).toBe(ENCRYPTED_ENCODING);
    expect(text(sealed.metadata![KEY_ID_METADATA])).toBe('k1');
    expect(Buffer.from(sealed.data!).includes('acid-orders')).toBe(false);
    expect(Buffer.from(sealed.data!).includes('json/plain')).toBe(false);
    const [opened] = await codec.decode([sealed]);
    expect(text(opened.metadata!.encoding)).toBe('json/plain');
    expect(defaultPayloadConverter.fromPayload(opened)).toEqual(input);
  });

  it('round-trips the payloads Temporal sends with no data and with binary data', async () => {
    const codec = codecOf(`k1:${newKey()}`);
    const empty = defaultPayloadConverter.toPayload(undefined);
    const binary = defaultPayloadConverter.toPayload(new Uint8Array([0, 1, 2, 255]));
    const opened = await codec.decode(await codec.encode([empty, binary]));
    expect(defaultPayloadConverter.fromPayload(opened[0])).toBeUndefined();
    expect(Buffer.from(defaultPayloadConverter.fromPayload(opened[1]) as Uint8Array)).toEqual(Buffer.from([0, 1, 2, 255]));
  });

  it('uses a fresh IV for every payload, so equal inputs do not look equal at rest', async () => {
    const codec = codecOf(`k1:${newKey()}`);
    const p = defaultPayloadConverter.toPayload(input);
    const [a, b] = await codec.encode([p, p]);
    expect(Buffer.from(a.data!).equals(Buffer.from(b.data!))).toBe(false);
  });

  it('refuses a payload whose ciphertext was altered (GCM authentication fails)', async () => {
    const codec = codecOf(`k1:${newKey()}`);
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(input)]);
    const data = Buffer.from(sealed.data!);
    data[20] ^= 0x01;
    await expect(codec.decode([{ ...sealed, data }])).rejects.toThrow(PayloadDecryptionError);
    await expect(codec.decode([{ ...sealed, data }])).rejects.toThrow(/key "k1" failed authentication/);
  });

  it('refuses a payload relabelled with another configured key ID', async () => {
    const codec = codecOf(`k2:${newKey()},k1:${newKey()}`);
    const [sealed] = await codec.encode([defaultPayloadConverter.toPayload(input)]);
    const relabelled: Payload = { ...sealed, metadata: { ...sealed.metadata, [KEY_ID_METADATA]: Buffer.from('k1') } };
    await expect(codec.decode([relabelled])).rejects.toThrow(/key "k1" failed authentication/);
  });

  it('refuses a payload under an unknown key ID, naming that ID and the known ones', async () => {
    const writer = codecOf(`retired-2025:${newKey()}`);
    const reader = codecOf(`current-2026:${newKey()}`);
    const [sealed] = await writer.encode([defaultPayloadConverter.toPayload(input)]);
    await expect(reader.decode([sealed])).rejects.toThrow(PayloadDecryptionError);
    await expect(reader.decode([sealed])).rejects.toThrow(/key "retired-2025", which is not configured \(known: current-2026\)/);
  });

  it('rotation: the new first key encrypts, the old one still decrypts what it wrote', async () => {
    const oldKey = newKey();
    const before = codecOf(`2026-05:${oldKey}`);
    const after = codecOf(`2026-11:${newKey()},2026-05:${oldKey}`);
    const [old] = await before.encode([defaultPayloadConverter.toPayload(input)]);
    const [fresh] = await after.encode([defaultPayloadConverter.toPayload(input)]);
    expect(text(fresh.metadata![KEY_ID_METADATA])).toBe('2026-11');
    const [a, b] = await after.decode([old, fresh]);
    expect(defaultPayloadConverter.fromPayload(a)).toEqual(input);
    expect(defaultPayloadConverter.fromPayload(b)).toEqual(input);
    // The worker that has not been given the new key yet cannot read what the new one wrote: roll keys out
    // to every reader before any writer encrypts with them (docs/OPERATIONS.md).
    await expect(before.decode([fresh])).rejects.toThrow(/key "2026-11"/);
  });

  it('passes payloads written before encryption was turned on through unchanged', async () => {
    const codec = codecOf(`k1:${newKey()}`);
    const plain = defaultPayloadConverter.toPayload(input);
    const [out] = await codec.decode([plain]);
    expect(defaultPayloadConverter.fromPayload(out)).toEqual(input);
  });
});

describe('payload keys from the environment', () => {
  const key = newKey();

  it('encryption is off when neither DR_PAYLOAD_KEYS nor DR_PAYLOAD_KEYS_FILE is set, or set empty', () => {
    expect(payloadDataConverterFromEnv({})).toBeUndefined();
    expect(payloadDataConverterFromEnv({ DR_PAYLOAD_KEYS: '', DR_PAYLOAD_KEYS_FILE: '' })).toBeUndefined();
  });

  it('reads the list from a file (a mounted Secret), newlines and comments allowed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'dr-payload-keys-'));
    try {
      const file = join(dir, 'keys');
      writeFileSync(file, `# newest first\nk2:${newKey()}\nk1:${key}\n`, { mode: 0o600 });
      expect(loadPayloadKeys({ DR_PAYLOAD_KEYS_FILE: file })!.map((k) => k.id)).toEqual(['k2', 'k1']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  // Each message must say what to fix and never repeat key material: it goes to pod logs.
  const malformed: Array<[string, NodeJS.ProcessEnv, RegExp]> = [
    ['a key without an ID', { DR_PAYLOAD_KEYS: key }, /DR_PAYLOAD_KEYS, entry 1 has no key ID/],
    ['a key of 16 bytes', { DR_PAYLOAD_KEYS: `k1:${randomBytes(16).toString('base64')}` }, /key "k1"\): the key decodes to 16 bytes, AES-256 needs 32/],
    ['a key that is not base64', { DR_PAYLOAD_KEYS: `k1:${key.slice(0, 20)}!!${key.slice(22)}` }, /key "k1"\): the key is not base64/],
    ['a second entry that is broken', { DR_PAYLOAD_KEYS: `k1:${key},k2:${key.slice(0, 30)}` }, /entry 2 \(key "k2"\): the key decodes to/],
    ['the same ID twice', { DR_PAYLOAD_KEYS: `k1:${key},k1:${newKey()}` }, /key ID "k1" appears twice/],
    ['an ID with a space', { DR_PAYLOAD_KEYS: `my key:${key}` }, /the key ID must be 1-64 characters/],
    ['only commas', { DR_PAYLOAD_KEYS: ',,' }, /DR_PAYLOAD_KEYS holds no key/],
    ['both variables', { DR_PAYLOAD_KEYS: `k1:${key}`, DR_PAYLOAD_KEYS_FILE: '/nonexistent' }, /not both/],
    ['a file that is not there', { DR_PAYLOAD_KEYS_FILE: '/nonexistent/dr-keys' }, /DR_PAYLOAD_KEYS_FILE=\/nonexistent\/dr-keys cannot be read: ENOENT/],
  ];
  it.each(malformed)('refuses %s, saying what to fix without the key', (_name, env, message) => {
    let thrown: unknown;
    try {
      payloadDataConverterFromEnv(env);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(PayloadKeyConfigError);
    const msg = (thrown as Error).message;
    expect(msg).toMatch(message);
    for (const part of (env.DR_PAYLOAD_KEYS ?? '').split(',')) {
      const material = part.slice(part.indexOf(':') + 1);
      if (material.length >= 8) expect(msg).not.toContain(material.slice(0, 8));
    }
  });

  it('a key never prints: not in JSON, string or inspect output', () => {
    const [k] = parsePayloadKeys(`k1:${key}`, 'test');
    const shown = `${JSON.stringify({ k })} ${String(k)} ${inspect(k)}`;
    expect(shown).not.toContain(key.slice(0, 8));
    expect(shown).toContain('k1');
  });
});
