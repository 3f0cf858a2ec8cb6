/* mpcheck.c — bounded msgpack structure check; see mpcheck.h. */
#include "mpcheck.h"

#include <herald/error.h>

/* Reads a big-endian unsigned of n bytes at p (n ≤ 4). */
static uint32_t be(const uint8_t *p, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Walks objects iteratively: `pending[d]` counts objects still expected at
 * depth d. Returns 0 or HERALD_EPROTOCOL. */
int mp_check(const uint8_t *p, size_t len, unsigned max_depth)
{
    /* Objects still to read at each open level; level 0 is the top. */
    uint64_t pending[64];
    unsigned depth = 0;
    size_t off = 0;

    if (max_depth > 62)
        max_depth = 62;
    pending[0] = 1;
    while (depth > 0 || pending[0] > 0) {
        uint8_t b;
        size_t skip = 0;     /* payload bytes after the header */
        uint64_t children = 0; /* objects inside a container */
        size_t hdr = 1;      /* header bytes */
        size_t left;

        if (pending[depth] == 0) {
            depth--;
            continue;
        }
        pending[depth]--;
        if (off >= len)
            return HERALD_EPROTOCOL;
        left = len - off;
        b = p[off];
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* fixint, negative fixint, nil, false, true */
        } else if ((b & 0xf0) == 0x80) {
            children = (uint64_t)(b & 0x0f) * 2;
        } else if ((b & 0xf0) == 0x90) {
            children = b & 0x0f;
        } else if ((b & 0xe0) == 0xa0) {
            skip = b & 0x1f;
        } else {
            unsigned n;
            switch (b) {
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: case 0xca: skip = 4; break;
            case 0xcf: case 0xd3: case 0xcb: skip = 8; break;
            case 0xc4: case 0xd9: /* bin8, str8 */
            case 0xc5: case 0xda: /* bin16, str16 */
            case 0xc6: case 0xdb: /* bin32, str32 */
                n = (b == 0xc4 || b == 0xd9) ? 1 : (b == 0xc5 || b == 0xda) ? 2 : 4;
                if (left < 1 + n)
                    return HERALD_EPROTOCOL;
                hdr = 1 + n;
                skip = be(p + off + 1, n);
                break;
            case 0xdc: case 0xdd: /* array16, array32 */
            case 0xde: case 0xdf: /* map16, map32 */
                n = (b == 0xdc || b == 0xde) ? 2 : 4;
                if (left < 1 + n)
                    return HERALD_EPROTOCOL;
                hdr = 1 + n;
                children = be(p + off + 1, n);
                if (b >= 0xde)
                    children *= 2;
                break;
            default:
                /* 0xc1 (never used) and every ext type. */
                return HERALD_EPROTOCOL;
            }
        }
        if (hdr > left || skip > left - hdr)
            return HERALD_EPROTOCOL;
        off += hdr + skip;
        if (children) {
            /* Each child takes at least one byte. */
            if (children > len - off)
                return HERALD_EPROTOCOL;
            if (depth + 1 > max_depth)
                return HERALD_EPROTOCOL;
            pending[++depth] = children;
        }
    }
    return off == len ? 0 : HERALD_EPROTOCOL;
}
