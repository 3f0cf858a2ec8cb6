/*
 * writer.h — group commit for dev mode: one writer thread, many commands per
 * LMDB transaction and fsync.
 *
 * The loop thread submits encoded commands; the writer thread takes
 * everything queued (up to a batch cap), runs apply_batch (one transaction,
 * one fsync), and hands the results back to the loop thread through
 * ev_async. Callbacks run on the loop thread in submission order, only after
 * the batch is durable: an acknowledgement sent from a callback is never for
 * something that was not committed.
 */
#ifndef HERALD_STORE_WRITER_H
#define HERALD_STORE_WRITER_H

#include "apply.h"

struct ev_loop;
typedef struct writer writer;

/* Called on the loop thread for each submitted command, in order, with the
 * encoded command and its result; both are owned by the writer and freed
 * after the callback returns. */
typedef void (*writer_done_fn)(void *arg, void *cookie, const uint8_t *cmd, size_t len,
                               apply_result *res);

/* Starts the writer thread. 0, HERALD_ENOMEM, HERALD_EINTERNAL. */
int writer_create(store *s, struct ev_loop *loop, writer_done_fn done,
                  void *arg, writer **out);

/* Loop thread. On success takes ownership of the encoded command `cmd` (its
 * data is freed by the writer; *cmd is zeroed). 0, HERALD_ESHUTDOWN,
 * HERALD_EBUSY (over the budget), HERALD_ENOMEM (then *cmd is untouched and
 * still the caller's). */
int writer_submit(writer *w, herald_buf *cmd, void *cookie);

/* Bounds the bytes of commands submitted and not yet called back (0: no
 * bound). Past it writer_submit answers HERALD_EBUSY: nothing queued, the
 * caller says "not applied, retry later". A lone command larger than the
 * bound is taken when nothing else is queued. Loop thread. */
void writer_set_budget(writer *w, size_t bytes);

/* Number of commands submitted and not yet called back. */
size_t writer_pending(const writer *w);

/* Write transactions (batches) committed so far; any thread. */
uint64_t writer_batches(writer *w);

/* Stops the thread after the queued commands are committed; their callbacks
 * run before this returns. Loop thread; NULL-safe. */
void writer_destroy(writer *w);

#endif
