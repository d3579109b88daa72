// RFC 6238 TOTP (HMAC-SHA1, 30 s steps, 6 digits), what an authenticator
// app shows: the browser tests type it like a person would.
import { createHmac } from 'node:crypto';

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** Decodes RFC 4648 base32 (no padding needed, case-insensitive). */
export function base32Decode(text) {
  const clean = text.replace(/=+$/, '').replace(/\s+/g, '').toUpperCase();
  let bits = 0;
  let value = 0;
  const out = [];
  for (const c of clean) {
    const index = ALPHABET.indexOf(c);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(c)}`);
    value = (value << 5) | index;
    bits += 5;
    if (bits >= 8) {
      out.push((value >>> (bits - 8)) & 0xff);
      bits -= 8;
    }
  }
  return Buffer.from(out);
}

/** The code for `secret` (base32) at `time` (ms since the epoch). */
export function totp(secret, { time = Date.now(), step = 30, digits = 6 } = {}) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(time / 1000 / step)));
  const mac = createHmac('sha1', base32Decode(secret)).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const binary = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(binary % 10 ** digits).padStart(digits, '0');
}

/**
 * Seconds until the next step begins (at `time`, ms since the epoch): a
 * code is accepted once per step per user, so a second step-up with the
 * app waits for a new code, as a person would.
 */
export function secondsUntilNextStep({ time = Date.now(), step = 30 } = {}) {
  return step - ((time / 1000) % step);
}

// RFC 6238 appendix B (SHA-1, secret "12345678901234567890"): a wrong
// helper fails here, not as a mysterious refusal in the browser.
const RFC_SECRET = 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ';
for (const [seconds, code] of [[59, '94287082'], [1111111109, '07081804'], [2000000000, '69279037']]) {
  if (totp(RFC_SECRET, { time: seconds * 1000, digits: 8 }) !== code) {
    throw new Error(`totp helper fails the RFC 6238 vector at T=${seconds}`);
  }
}
