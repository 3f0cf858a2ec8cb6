/* mpcheck.c — bounded msgpack structure check; see mpcheck.h. */
#include "mpcheck.h"

#include <herald/error.h>
#include <stdbool.h>

/* Deepest nesting mp_check can track; larger max_depth values are clamped.
 * (msgpack-c's own unpacker stops at 32 levels anyway.) */
#define MP_DEPTH_LIMIT 64u

/* Reads a big-endian unsigned of n bytes at p (n ≤ 4). */
static uint32_t be(const uint8_t *p, unsigned n)
{
    uint32_t v = 0;
    for (unsigned i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Bytes of the length field after format byte b for str/bin/array/map with
 * an explicit length: 1, 2 or 4. */
static unsigned len_width(uint8_t b)
{
    switch (b) {
    case 0xc4: case 0xd9:             /* bin8, str8 */
        return 1;
    case 0xc5: case 0xda: case 0xdc: case 0xde: /* bin16, str16, array16, map16 */
        return 2;
    default:                          /* bin32, str32, array32, map32 */
        return 4;
    }
}

/* Iterative walk: `pending[d]` counts objects still expected inside the
 * container open at level d (level 0 is the top-level slot). Every declared
 * element count is checked against the bytes left before it is recorded, so
 * the walk is O(len) and a count bomb is rejected at its header. */
int mp_check(const uint8_t *p, size_t len, unsigned max_depth)
{
    uint64_t pending[MP_DEPTH_LIMIT + 1];
    unsigned depth = 0;
    size_t off = 0;

    if (!p && len)
        return HERALD_EPROTOCOL;
    if (max_depth > MP_DEPTH_LIMIT)
        max_depth = MP_DEPTH_LIMIT;
    pending[0] = 1;
    for (;;) {
        uint8_t b;
        size_t left;
        size_t hdr = 1;        /* header bytes (format byte + length field) */
        uint64_t skip = 0;     /* payload bytes after the header */
        uint64_t children = 0; /* objects inside a container */
        bool container = false;

        while (depth > 0 && pending[depth] == 0)
            depth--;
        if (pending[depth] == 0)
            break; /* depth 0: the one top-level object is complete */
        pending[depth]--;
        if (off >= len)
            return HERALD_EPROTOCOL;
        left = len - off;
        b = p[off];
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3) {
            /* positive fixint, negative fixint, nil, false, true */
        } else if ((b & 0xf0) == 0x80) {        /* fixmap */
            container = true;
            children = (uint64_t)(b & 0x0f) * 2;
        } else if ((b & 0xf0) == 0x90) {        /* fixarray */
            container = true;
            children = b & 0x0f;
        } else if ((b & 0xe0) == 0xa0) {        /* fixstr */
            skip = b & 0x1f;
        } else {
            unsigned n;
            switch (b) {
            case 0xcc: case 0xd0:               /* uint8, int8 */
                skip = 1;
                break;
            case 0xcd: case 0xd1:               /* uint16, int16 */
                skip = 2;
                break;
            case 0xce: case 0xd2: case 0xca:    /* uint32, int32, float32 */
                skip = 4;
                break;
            case 0xcf: case 0xd3: case 0xcb:    /* uint64, int64, float64 */
                skip = 8;
                break;
            case 0xc4: case 0xc5: case 0xc6:    /* bin8/16/32 */
            case 0xd9: case 0xda: case 0xdb:    /* str8/16/32 */
                n = len_width(b);
                if (left < 1 + (size_t)n)
                    return HERALD_EPROTOCOL;
                hdr = 1 + n;
                skip = be(p + off + 1, n);
                break;
            case 0xdc: case 0xdd:               /* array16/32 */
            case 0xde: case 0xdf:               /* map16/32 */
                n = len_width(b);
                if (left < 1 + (size_t)n)
                    return HERALD_EPROTOCOL;
                hdr = 1 + n;
                container = true;
                children = be(p + off + 1, n);
                if (b >= 0xde)
                    children *= 2; /* ≤ 2^33, no overflow in 64 bits */
                break;
            default:
                /* 0xc1 (never used) and every ext type (c7-c9, d4-d8). */
                return HERALD_EPROTOCOL;
            }
        }
        if (hdr > left || skip > left - hdr)
            return HERALD_EPROTOCOL;
        off += hdr + (size_t)skip;
        if (container) {
            /* An empty container still counts as one level of nesting. */
            if (depth + 1 > max_depth)
                return HERALD_EPROTOCOL;
            /* Each element takes at least one byte. */
            if (children > len - off)
                return HERALD_EPROTOCOL;
            if (children)
                pending[++depth] = children;
        }
    }
    return off == len ? 0 : HERALD_EPROTOCOL;
}
