/*
 * deliver.h — one DELIVER encoded once for all its recipients.
 *
 * A message pushed to many sessions differs per session only in its flags
 * (SILENT for a session in do-not-disturb) and its pv (the recipient's
 * previous position). The wire codec writes those two keys last in the
 * message map, and "m" is the last key of a DELIVER frame; so the encoding
 * up to them is the same for every recipient. deliver_tpl_init encodes the
 * frame once and finds where they start; deliver_tpl_put appends one
 * recipient's frame: the length, the shared bytes, the two keys. When the
 * encoding does not end as expected (a frame with more keys), the template
 * encodes each frame whole instead: slower, never wrong.
 *
 * Thread safety: a template is used by one thread at a time.
 */
#ifndef HERALD_COMMON_DELIVER_H
#define HERALD_COMMON_DELIVER_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct deliver_tpl {
    herald_frame f;  /* the frame (borrowed; flags/prev replaced per put) */
    herald_buf enc;  /* its encoding with placeholder flags and pv */
    size_t shared;   /* bytes of enc after the 4-byte length shared by all */
    bool fast;       /* shared is valid */
} deliver_tpl;

/* f: a DELIVER; it and its strings must outlive the template.
 * 0 or HERALD_ENOMEM. */
int deliver_tpl_init(deliver_tpl *t, const herald_frame *f);
/* Appends the frame for one recipient to out. 0 or HERALD_ENOMEM (out as
 * it was). */
int deliver_tpl_put(deliver_tpl *t, uint32_t flags, uint64_t prev, herald_buf *out);
void deliver_tpl_free(deliver_tpl *t);

#endif
