/*
 * nats_ev.h — a libev event-loop adapter for libnats (libnats ships adapters
 * only for libevent and libuv), shared by the NATS core and JetStream
 * drivers.
 *
 * A connection made with these options is read and written by the bench's
 * libev loop (no read thread per connection). libev is not thread-safe, so
 * every adapter call must come from the loop thread: the options make
 * publishes and SUBs flush on the caller's thread (SendAsap; the flusher
 * thread would otherwise ask for write events), turn PINGs off (the timer
 * thread would) and reconnects too. Messages reach their callbacks on
 * libnats's global delivery pool (one thread by default), not a thread per
 * subscription.
 *
 * Such a connection must never make a blocking request (JetStream API
 * calls, natsConnection_Request, Flush): the reply would have to be read by
 * the very loop thread that is waiting for it.
 */
#ifndef HERALD_BENCH_NATS_EV_H
#define HERALD_BENCH_NATS_EV_H

#include <ev.h>
#include <nats/nats.h>

/* Creates options for url whose connections run on loop, with err_cb as the
 * asynchronous error handler (closure: err_closure). Returns NATS_OK and
 * *out, or the failing status. */
natsStatus nats_ev_options(natsOptions **out, struct ev_loop *loop, const char *url,
                           natsErrHandler err_cb, void *err_closure);

#endif
