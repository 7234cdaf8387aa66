// The control plane's secrets at rest: the event-signing secret keys and the PSK master are sealed
// with AES-256-GCM (NIST SP 800-38D) under a 32-byte key kept in a file apart from the database
// (default FILE.secrets.key, mode 0600), so a copy of the database alone reveals neither. Each
// sealed value is bound to what it is (the additional data), so rows cannot be swapped.

import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { ControlPlaneFileError } from './errors.js';
import { assertPrivateFile, writePrivateFileOnce } from './private-file.js';

/** Default secrets key file: the database path plus this. */
export const SECRETS_KEY_SUFFIX = '.secrets.key';

const MAGIC = Buffer.from('pxs1');
const NONCE_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;

/** True when `stored` is a sealed value rather than a plaintext secret. */
export function isSealed(stored: Uint8Array): boolean {
  return stored.length > MAGIC.length + NONCE_BYTES + TAG_BYTES && Buffer.from(stored.subarray(0, MAGIC.length)).equals(MAGIC);
}

/** Seals and opens secrets under one key. */
export class SecretBox {
  readonly #key: Buffer;
  /** Where the key came from, for error messages. */
  readonly keyFile: string;

  /** `key`: 32 bytes. Throws RangeError otherwise. */
  constructor(key: Uint8Array, keyFile: string) {
    if (key.length !== KEY_BYTES) throw new RangeError(`expected a ${KEY_BYTES}-byte secrets key, got ${key.length} bytes`);
    this.#key = Buffer.from(key);
    this.keyFile = keyFile;
  }

  /** `plaintext` sealed for `purpose`: magic || nonce || ciphertext || tag. */
  seal(purpose: string, plaintext: Uint8Array): Buffer {
    const nonce = randomBytes(NONCE_BYTES);
    const c = createCipheriv('aes-256-gcm', this.#key, nonce);
    c.setAAD(Buffer.from(purpose));
    const body = Buffer.concat([c.update(plaintext), c.final()]);
    return Buffer.concat([MAGIC, nonce, body, c.getAuthTag()]);
  }

  /**
   * The secret stored for `purpose`: opened when sealed, as is when it is a plaintext secret of
   * `plainLength` bytes (a row written before encryption, or by an older build). Throws
   * ControlPlaneFileError ERR_CP_SECRETS_KEY when it does not open (another key file, or altered).
   */
  reveal(purpose: string, stored: Uint8Array, plainLength = KEY_BYTES): Buffer {
    if (!isSealed(stored)) {
      if (stored.length !== plainLength) throw new ControlPlaneFileError('ERR_CP_SECRETS_KEY', `stored ${purpose} is neither sealed nor ${plainLength} bytes`);
      return Buffer.from(stored);
    }
    const s = Buffer.from(stored);
    const nonce = s.subarray(MAGIC.length, MAGIC.length + NONCE_BYTES);
    const body = s.subarray(MAGIC.length + NONCE_BYTES, s.length - TAG_BYTES);
    try {
      const d = createDecipheriv('aes-256-gcm', this.#key, nonce);
      d.setAAD(Buffer.from(purpose));
      d.setAuthTag(s.subarray(s.length - TAG_BYTES));
      return Buffer.concat([d.update(body), d.final()]);
    } catch (err) {
      throw new ControlPlaneFileError('ERR_CP_SECRETS_KEY', `cannot decrypt ${purpose} with ${this.keyFile}: not the key this database was sealed with`, { cause: err });
    }
  }
}

/**
 * The secrets key in `file`; when the file is absent it is created (32 CSPRNG bytes, base64, mode
 * 0600) only if `mayCreate`, which the caller passes when the database holds nothing sealed yet.
 * Throws ControlPlaneFileError: ERR_CP_SECRETS_KEY when the file is missing although sealed
 * secrets exist (a new key would not open them, and regenerating them would change every PSK) or
 * is malformed; ERR_CP_INSECURE_PERMISSIONS as assertPrivateFile.
 */
export function loadSecretsKey(file: string, mayCreate: boolean, allowInsecure: boolean): SecretBox {
  if (!existsSync(file)) {
    if (!mayCreate) {
      throw new ControlPlaneFileError(
        'ERR_CP_SECRETS_KEY',
        `secrets key ${file} is missing, but the database holds secrets sealed with it; restore the file (or point --secrets-key at it)`,
      );
    }
    writePrivateFileOnce(file, `${randomBytes(KEY_BYTES).toString('base64')}\n`);
  }
  assertPrivateFile(file, 'secrets key', allowInsecure);
  const text = readFileSync(file, 'utf8').trim();
  const key = Buffer.from(text, 'base64');
  if (key.length !== KEY_BYTES || key.toString('base64') !== text) {
    throw new ControlPlaneFileError('ERR_CP_SECRETS_KEY', `secrets key ${file} is not ${KEY_BYTES} bytes of base64`);
  }
  return new SecretBox(key, file);
}
