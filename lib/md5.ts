// MD5 of a string, in hex: the upstream's request signature (X-Xss-Real) needs one per upstream call.
//
// Why not node:crypto's createHash: for a 30-byte input its Hash object, the update/digest calls and the hex
// conversion cost several times the hashing itself, three times per completion. This is RFC 1321 over the
// string's UTF-8 bytes, checked against node:crypto in tests/md5.test.ts.

const S = [7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21];
const K = new Int32Array(64);
for (let i = 0; i < 64; i++) K[i] = Math.floor(Math.abs(Math.sin(i + 1)) * 2 ** 32) | 0;
const HEX = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, "0"));
const encoder = new TextEncoder();
const M = new Int32Array(16);

/** The MD5 digest of `text` (UTF-8), as 32 lowercase hex digits. */
export function md5Hex(text: string): string {
  const bytes = encoder.encode(text);
  const n = bytes.length;
  // Padding: 0x80, zeros, then the bit length (little-endian 64-bit) so the total is a multiple of 64 bytes.
  const total = (((n + 8) >>> 6) + 1) << 6;
  const buf = new Uint8Array(total);
  buf.set(bytes);
  buf[n] = 0x80;
  const bits = n * 8;
  buf[total - 8] = bits & 0xff;
  buf[total - 7] = (bits >>> 8) & 0xff;
  buf[total - 6] = (bits >>> 16) & 0xff;
  buf[total - 5] = (bits >>> 24) & 0xff;
  buf[total - 4] = Math.floor(bits / 2 ** 32) & 0xff;
  let a0 = 0x67452301 | 0;
  let b0 = 0xefcdab89 | 0;
  let c0 = 0x98badcfe | 0;
  let d0 = 0x10325476 | 0;
  for (let off = 0; off < total; off += 64) {
    for (let i = 0; i < 16; i++) {
      const j = off + i * 4;
      M[i] = buf[j]! | (buf[j + 1]! << 8) | (buf[j + 2]! << 16) | (buf[j + 3]! << 24);
    }
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) & 15;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) & 15;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) & 15;
      }
      const t = d;
      d = c;
      c = b;
      const x = (a + f + K[i]! + M[g]!) | 0;
      b = (b + ((x << S[i]!) | (x >>> (32 - S[i]!)))) | 0;
      a = t;
    }
    a0 = (a0 + a) | 0;
    b0 = (b0 + b) | 0;
    c0 = (c0 + c) | 0;
    d0 = (d0 + d) | 0;
  }
  let out = "";
  for (const w of [a0, b0, c0, d0]) out += HEX[w & 0xff]! + HEX[(w >>> 8) & 0xff]! + HEX[(w >>> 16) & 0xff]! + HEX[(w >>> 24) & 0xff]!;
  return out;
}
