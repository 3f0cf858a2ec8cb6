/*
 * synckey.h — the client's sync position: {group → pos}. The
 * {conversation → seq} part of keys saved by earlier versions is kept and
 * sent as it was (servers now ignore it). Serialised as an encoded SYNC
 * frame (protocol.h), so the already fuzzed frame decoder reads saved keys
 * back.
 */
#ifndef HERALD_CLIENT_SYNCKEY_H
#define HERALD_CLIENT_SYNCKEY_H

#include <herald/protocol.h>

typedef struct sk_conv {
    char *conv;    /* owned id */
    uint64_t seq;  /* highest seq seen */
} sk_conv;

/* Zero-initialise; free with sk_free. Small (one entry per shard group and
 * per read-diffused conversation), so lookups are linear. */
typedef struct synckey {
    herald_sync_group *groups; /* owned array: group → highest pos */
    uint32_t n_groups;         /* entries in groups */
    sk_conv *convs;            /* owned array: read-diffused conv → highest seq */
    uint32_t n_convs;          /* entries in convs */
} synckey;

void sk_free(synckey *k);
/* Position for group g / conv; created at 0 when absent. NULL on ENOMEM. */
uint64_t *sk_group(synckey *k, uint32_t g);
uint64_t *sk_conv_at(synckey *k, const char *conv, size_t len);
/* Replaces k by the key carried in a frame's sg/sc. 0, HERALD_EINVAL (an
 * empty conversation id or one with a NUL byte), HERALD_ENOMEM. */
int sk_from_frame(synckey *k, const herald_frame *f);
/* Points f's sg/sc at k (arrays allocated; free with sk_frame_release). */
int sk_to_frame(const synckey *k, herald_frame *f);
void sk_frame_release(herald_frame *f);
/* Copies src into dst. */
int sk_copy(synckey *dst, const synckey *src);
/* Bytes ⇄ key. The bytes are one encoded SYNC frame (4-byte length + map
 * with sg/sc), read back by the fuzzed frame decoder, which runs mp_check
 * (bounded counts, depth, no trailing bytes) before msgpack_unpack.
 * sk_save appends to out: 0 or HERALD_ENOMEM. sk_load replaces *k only on
 * success: 0, HERALD_EINVAL (not exactly one well-formed SYNC frame of at
 * most HERALD_FRAME_MAX_DEFAULT bytes, or a bad conversation id),
 * HERALD_ENOMEM. */
int sk_save(const synckey *k, herald_buf *out);
int sk_load(synckey *k, const uint8_t *p, size_t n);

#endif
