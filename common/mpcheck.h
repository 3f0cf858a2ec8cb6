/*
 * mpcheck.h — a bounded msgpack structure check that allocates nothing.
 *
 * msgpack-c's unpacker allocates count × sizeof(msgpack_object) from a
 * declared array/map count before the elements arrive (a 5-byte header can
 * ask for 64 GiB). Every decoder in Herald first runs mp_check over the
 * untrusted bytes: it walks the encoding once, rejects truncation, nesting
 * beyond max_depth, and any array/map whose declared element count exceeds
 * the bytes left (each element takes at least one byte), so a later
 * msgpack_unpack can allocate at most a small multiple of the input size.
 *
 * Thread safety: reentrant, no allocation.
 */
#ifndef HERALD_COMMON_MPCHECK_H
#define HERALD_COMMON_MPCHECK_H

#include <stddef.h>
#include <stdint.h>

/* Checks that p[0..len) holds exactly one msgpack object (no trailing bytes)
 * whose nesting depth is ≤ max_depth (a scalar has depth 0, [1] depth 1).
 * Ext types are rejected. Returns 0 or HERALD_EPROTOCOL. */
int mp_check(const uint8_t *p, size_t len, unsigned max_depth);

#endif
