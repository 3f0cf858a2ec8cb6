/*
 * mpcheck.ts — a bounded walk over untrusted msgpack bytes before they are
 * unpacked (the port of common/mpcheck.c): exactly one object, no trailing
 * bytes, nesting at most maxDepth, every declared count no larger than the
 * bytes left (each element takes at least one byte), no ext types. O(len);
 * a count bomb is rejected at its header, before anything is allocated.
 */

const DEPTH_LIMIT = 64;

/** True when p holds exactly one well-formed msgpack object within the bounds. */
export function mpCheck(p: Uint8Array, maxDepth: number): boolean {
  const depthMax = Math.min(maxDepth, DEPTH_LIMIT);
  const pending: number[] = [1];
  const len = p.length;
  let depth = 0;
  let off = 0;
  const be = (at: number, n: number): number => {
    let v = 0;
    for (let i = 0; i < n; i++) v = v * 256 + p[at + i]!;
    return v;
  };

  for (;;) {
    while (depth > 0 && pending[depth] === 0) depth--;
    if (pending[depth] === 0) break; // the one top-level object is complete
    pending[depth]!--;
    if (off >= len) return false;
    const left = len - off;
    const b = p[off]!;
    let hdr = 1;
    let skip = 0;
    let children = 0;
    let container = false;

    if (b <= 0x7f || b >= 0xe0 || b === 0xc0 || b === 0xc2 || b === 0xc3) {
      // fixint, negative fixint, nil, false, true
    } else if ((b & 0xf0) === 0x80) {
      container = true;
      children = (b & 0x0f) * 2;
    } else if ((b & 0xf0) === 0x90) {
      container = true;
      children = b & 0x0f;
    } else if ((b & 0xe0) === 0xa0) {
      skip = b & 0x1f;
    } else {
      switch (b) {
        case 0xcc:
        case 0xd0:
          skip = 1;
          break;
        case 0xcd:
        case 0xd1:
          skip = 2;
          break;
        case 0xce:
        case 0xd2:
        case 0xca:
          skip = 4;
          break;
        case 0xcf:
        case 0xd3:
        case 0xcb:
          skip = 8;
          break;
        case 0xc4:
        case 0xd9:
        case 0xc5:
        case 0xda:
        case 0xc6:
        case 0xdb: {
          const n = b === 0xc4 || b === 0xd9 ? 1 : b === 0xc5 || b === 0xda ? 2 : 4;
          if (left < 1 + n) return false;
          hdr = 1 + n;
          skip = be(off + 1, n);
          break;
        }
        case 0xdc:
        case 0xdd:
        case 0xde:
        case 0xdf: {
          const n = b === 0xdc || b === 0xde ? 2 : 4;
          if (left < 1 + n) return false;
          hdr = 1 + n;
          container = true;
          children = be(off + 1, n) * (b >= 0xde ? 2 : 1);
          break;
        }
        default:
          return false; // 0xc1 (never used) and every ext type
      }
    }
    if (hdr > left || skip > left - hdr) return false;
    off += hdr + skip;
    if (container) {
      if (depth + 1 > depthMax) return false;
      if (children > len - off) return false;
      if (children) pending[++depth] = children;
    }
  }
  return off === len;
}
