/*
 * sockclose.h — closing an nng socket within a deadline.
 *
 * nng 1.5.2's TCP transport can lose the completion of a connection's
 * receive when the connection is closed while a message is arriving on it
 * (fixed upstream in 1.6.0): nng_close then waits for it forever, and so
 * does every later close. Seen here as a raft hub whose teardown never
 * returned while its peers were sending (rio_net.c also lets what is in
 * flight land before it closes its listener). Every socket
 * of the broker is closed through sock_close: it runs nng_close on a
 * short-lived thread and waits at most a deadline; past it the close is
 * left to finish (or not) on that thread, logged as `nng.close`, and
 * counted.
 *
 * Threads: any thread. The count is process-wide, as nng's state is.
 */
#ifndef HERALD_SOCKCLOSE_H
#define HERALD_SOCKCLOSE_H

#include <nng/nng.h>
#include <stdint.h>

/* The default deadline of sock_close, milliseconds. */
#define SOCK_CLOSE_MS 3000u

/* Closes s, waiting at most ms (0: SOCK_CLOSE_MS). what names it in the
 * log line of an abandoned close. 0, or HERALD_ETIMEOUT when the close
 * was abandoned (HERALD_ENOMEM / HERALD_EIO: the thread could not be
 * started, and nng_close was called here, unbounded). */
int sock_close(nng_socket s, const char *what, unsigned ms);

/* Closes abandoned so far. nng_fini must not be called when this is not 0:
 * it would wait for them. */
uint64_t sock_close_abandoned(void);

#endif
