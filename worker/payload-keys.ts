// The keys of the payload codec, from the environment: DR_PAYLOAD_KEYS (the list itself) or DR_PAYLOAD_KEYS_FILE
// (a file holding it, e.g. a mounted Kubernetes Secret). The list is `<id>:<base64 of 32 bytes>` entries separated
// by commas or newlines; the first encrypts, all decrypt, so a key is rotated by putting a new one first and
// dropping the old one only once no history that needs it is retained. Errors name the variable, the entry's
// position and id, never key material: they end up in pod logs and CI output.
import { readFileSync } from 'node:fs';
import { inspect } from 'node:util';

export const PAYLOAD_KEYS_ENV = 'DR_PAYLOAD_KEYS';
export const PAYLOAD_KEYS_FILE_ENV = 'DR_PAYLOAD_KEYS_FILE';
const KEY_BYTES = 32;
// Key IDs travel in clear in every payload's metadata and in error messages: short, printable, not secret.
const KEY_ID = /^[A-Za-z0-9._-]{1,64}$/;
const BASE64 = /^[A-Za-z0-9+/_-]+={0,2}$/;

/** One AES-256 key. Its bytes never print, log or serialize. */
export class PayloadKey {
  readonly #bytes: Buffer;
  constructor(readonly id: string, bytes: Buffer) {
    this.#bytes = bytes;
  }
  /** For createCipheriv/createDecipheriv only. */
  bytes(): Buffer {
    return this.#bytes;
  }
  toJSON(): string {
    return `[payload key ${this.id}]`;
  }
  toString(): string {
    return `[payload key ${this.id}]`;
  }
  [inspect.custom](): string {
    return `[payload key ${this.id}]`;
  }
}

export class PayloadKeyConfigError extends Error {}

/** Parses a key list. `source` says where it came from, for the messages. The first key is the encrypting one. */
export function parsePayloadKeys(text: string, source: string): PayloadKey[] {
  const entries = text.split(/[,\n]/).map((e) => e.trim()).filter((e) => e !== '' && !e.startsWith('#'));
  if (entries.length === 0) {
    throw new PayloadKeyConfigError(`${source} holds no key: expected <id>:<base64 of ${KEY_BYTES} bytes>[,<id>:<base64>...]`);
  }
  const keys: PayloadKey[] = [];
  entries.forEach((entry, i) => {
    const at = `${source}, entry ${i + 1}`;
    const colon = entry.indexOf(':');
    // Without a colon the whole entry may be a pasted key: it is not repeated back.
    if (colon < 0) throw new PayloadKeyConfigError(`${at} has no key ID: write it as <id>:<base64 key>`);
    const id = entry.slice(0, colon).trim();
    const encoded = entry.slice(colon + 1).trim();
    if (!KEY_ID.test(id)) {
      throw new PayloadKeyConfigError(`${at}: the key ID must be 1-64 characters of A-Z a-z 0-9 . _ - (it is stored in clear in every payload)`);
    }
    if (keys.some((k) => k.id === id)) throw new PayloadKeyConfigError(`${at}: key ID "${id}" appears twice`);
    if (!BASE64.test(encoded)) throw new PayloadKeyConfigError(`${at} (key "${id}"): the key is not base64`);
    // Node's base64 decoder reads the URL-safe alphabet too, so either form of `openssl rand -base64 32` works.
    const bytes = Buffer.from(encoded, 'base64');
    if (bytes.length !== KEY_BYTES) {
      throw new PayloadKeyConfigError(
        `${at} (key "${id}"): the key decodes to ${bytes.length} bytes, AES-256 needs ${KEY_BYTES} (make one with: openssl rand -base64 32)`,
      );
    }
    keys.push(new PayloadKey(id, bytes));
  });
  return keys;
}

/**
 * The keys the environment configures, or null when encryption is off (neither variable set, or set empty, as an
 * unset optional Secret reference leaves it). Setting both is refused: which one wins would be a guess.
 */
export function loadPayloadKeys(env: NodeJS.ProcessEnv = process.env): PayloadKey[] | null {
  const inline = env[PAYLOAD_KEYS_ENV]?.trim() ? env[PAYLOAD_KEYS_ENV]! : undefined;
  const file = env[PAYLOAD_KEYS_FILE_ENV]?.trim() || undefined;
  if (inline && file) throw new PayloadKeyConfigError(`set ${PAYLOAD_KEYS_ENV} or ${PAYLOAD_KEYS_FILE_ENV}, not both`);
  if (inline) return parsePayloadKeys(inline, PAYLOAD_KEYS_ENV);
  if (!file) return null;
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new PayloadKeyConfigError(`${PAYLOAD_KEYS_FILE_ENV}=${file} cannot be read: ${(err as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  return parsePayloadKeys(text, `${PAYLOAD_KEYS_FILE_ENV} ${file}`);
}
