// Encryption at rest of workflow payloads (inputs, results, signal/update/query arguments, heartbeat details,
// memos) with AES-256-GCM, as a Temporal PayloadCodec. Codecs run in the worker and the clients, outside the
// workflow sandbox, so this Node-only module is never imported by workflow code or by workflows/contracts/.
// Each encrypted payload is the serialized original Payload (protobuf `temporal.api.common.v1.Payload`, so the
// original encoding comes back with the data), sealed as iv(12) | ciphertext | tag(16), with metadata
// `encoding: binary/encrypted` and `encryption-key-id: <id>` in clear so a decoder picks the right key after a
// rotation. Not encrypted, because the server must read them: workflow IDs, search attributes, task queues,
// type names, and failure messages (which carry facts, never secrets; see docs/OPERATIONS.md).
import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { METADATA_ENCODING_KEY, type DataConverter, type Payload, type PayloadCodec } from '@temporalio/common';
import { Reader, Writer } from 'protobufjs/minimal';
import { loadPayloadKeys, type PayloadKey } from './payload-keys';

export const ENCRYPTED_ENCODING = 'binary/encrypted';
export const KEY_ID_METADATA = 'encryption-key-id';
export const CIPHER_METADATA = 'encryption-cipher';
const CIPHER = 'AES-256-GCM';
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** A payload that cannot be decrypted: its key is not configured, or it was altered. Names the key ID only. */
export class PayloadDecryptionError extends Error {}

export class AesGcmPayloadCodec implements PayloadCodec {
  readonly #encrypting: PayloadKey;
  readonly #byId: Map<string, PayloadKey>;

  /** `keys[0]` encrypts; every key decrypts. */
  constructor(keys: PayloadKey[]) {
    if (keys.length === 0) throw new Error('AesGcmPayloadCodec needs at least one key');
    this.#encrypting = keys[0];
    this.#byId = new Map(keys.map((k) => [k.id, k]));
  }

  get encryptingKeyId(): string {
    return this.#encrypting.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.#seal(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.#open(p));
  }

  #seal(payload: Payload): Payload {
    const key = this.#encrypting;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', key.bytes(), iv);
    // The key ID is authenticated too: relabelling a payload with another ID fails like any other tampering.
    cipher.setAAD(Buffer.from(key.id, 'utf8'));
    const sealed = Buffer.concat([iv, cipher.update(serializePayload(payload)), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: {
        [METADATA_ENCODING_KEY]: Buffer.from(ENCRYPTED_ENCODING),
        [KEY_ID_METADATA]: Buffer.from(key.id),
        [CIPHER_METADATA]: Buffer.from(CIPHER),
      },
      data: sealed,
    };
  }

  #open(payload: Payload): Payload {
    // Payloads written before encryption was turned on stay readable.
    if (metadataText(payload, METADATA_ENCODING_KEY) !== ENCRYPTED_ENCODING) return payload;
    const id = metadataText(payload, KEY_ID_METADATA);
    if (!id) throw new PayloadDecryptionError(`an encrypted payload has no ${KEY_ID_METADATA}: it was not written by this codec`);
    const key = this.#byId.get(id);
    if (!key) {
      throw new PayloadDecryptionError(
        `a payload is encrypted with key "${id}", which is not configured (known: ${[...this.#byId.keys()].join(', ')}): ` +
        'add that key back to DR_PAYLOAD_KEYS after the encrypting one to read it',
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) throw new PayloadDecryptionError(`a payload encrypted with key "${id}" is truncated`);
    const decipher = createDecipheriv('aes-256-gcm', key.bytes(), data.subarray(0, IV_BYTES));
    decipher.setAAD(Buffer.from(id, 'utf8'));
    decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
    let plain: Buffer;
    try {
      plain = Buffer.concat([decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)), decipher.final()]);
    } catch {
      throw new PayloadDecryptionError(
        `a payload encrypted with key "${id}" failed authentication: it was altered, or "${id}" names a different key than the one that encrypted it`,
      );
    }
    return deserializePayload(plain);
  }
}

/**
 * The data converter of every worker and client of a deployment: the payload codec when DR_PAYLOAD_KEYS or
 * DR_PAYLOAD_KEYS_FILE is set, none otherwise (the sandbox and the tests stay readable). Throws
 * PayloadKeyConfigError for a malformed key, so a misconfigured process stops before it connects.
 */
export function payloadDataConverterFromEnv(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const codec = payloadCodecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : undefined;
}

/** The codec DR_PAYLOAD_KEYS / DR_PAYLOAD_KEYS_FILE configure, or null when encryption is off. */
export function payloadCodecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmPayloadCodec | null {
  const keys = loadPayloadKeys(env);
  return keys ? new AesGcmPayloadCodec(keys) : null;
}

function metadataText(payload: Payload, key: string): string | undefined {
  const v = payload.metadata?.[key];
  return v ? Buffer.from(v).toString('utf8') : undefined;
}

// The wire form of temporal.api.common.v1.Payload: field 1 map<string, bytes> metadata, field 2 bytes data.
function serializePayload(payload: Payload): Uint8Array {
  const w = Writer.create();
  for (const [k, v] of Object.entries(payload.metadata ?? {})) {
    w.uint32(10).fork().uint32(10).string(k).uint32(18).bytes(v ?? new Uint8Array()).ldelim();
  }
  if (payload.data?.length) w.uint32(18).bytes(payload.data);
  return w.finish();
}

function deserializePayload(bytes: Uint8Array): Payload {
  const r = Reader.create(bytes);
  const metadata: Record<string, Uint8Array> = {};
  let data: Uint8Array = new Uint8Array();
  while (r.pos < r.len) {
    const tag = r.uint32();
    if (tag === 10) {
      const end = r.uint32() + r.pos;
      let key = '';
      let value: Uint8Array = new Uint8Array();
      while (r.pos < end) {
        const t = r.uint32();
        if (t === 10) key = r.string();
        else if (t === 18) value = r.bytes();
        else r.skipType(t & 7);
      }
      metadata[key] = value;
    } else if (tag === 18) {
      data = r.bytes();
    } else {
      r.skipType(tag & 7);
    }
  }
  return { metadata, data };
}
