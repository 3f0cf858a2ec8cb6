/*
 * pubsub.h — committed events from nodes to gateways over nng PUB/SUB,
 * driven by a libev loop with no extra threads (NNG_OPT_RECVFD watcher on
 * the subscriber; non-blocking sends on the publisher).
 *
 * nng drops silently when a subscriber's queue is full (measured on loopback:
 * one subscriber of an unthrottled publisher got 43% of the messages): the send
 * queue is set to its maximum and every event carries a per-publisher
 * sequence so a receiver can tell it missed something; clients repair such
 * gaps with SYNC. One topic ("", everything): gateways route to users with
 * their own hash tables, never with nng topic filters.
 *
 * Threads: the loop thread given at creation. Errors: Herald codes.
 */
#ifndef HERALD_NODE_PUBSUB_H
#define HERALD_NODE_PUBSUB_H

#include <stddef.h>
#include <stdint.h>

#include "clink.h"

struct ev_loop;
typedef struct ps_pub ps_pub;
typedef struct ps_sub ps_sub;

/* Listens on url (with tls: subscribers need a certificate of the cluster
 * CA, clink.h); sendbuf = nng's per-subscriber queue in messages (1..8192,
 * 0 → 8192). 0, HERALD_EIO, HERALD_ENOMEM. */
int ps_pub_create(const char *url, uint32_t sendbuf, const clink *tls, ps_pub **out);
/* Queues one message to every subscriber (non-blocking). 0, HERALD_ENOMEM,
 * HERALD_EIO (nng refused it; the event is lost to all subscribers). */
int ps_publish(ps_pub *p, const void *data, size_t n);
/* Messages published and messages nng refused. */
void ps_pub_stats(const ps_pub *p, uint64_t *sent, uint64_t *failed);
void ps_pub_destroy(ps_pub *p);

/* One received message, p[0..n) valid during the call. */
typedef void (*ps_recv_fn)(void *arg, const uint8_t *p, size_t n);

/* Dials every url in the background and subscribes to everything (with
 * tls, the publisher at urls[i] must hold the certificate of peers[i]);
 * recvbuf = nng's receive queue in messages (1..8192, 0 → 8192). 0,
 * HERALD_EINVAL (bad url), HERALD_EIO, HERALD_ENOMEM. */
int ps_sub_create(struct ev_loop *loop, const char *const *urls, const char *const *peers,
                  unsigned n, size_t max_msg, uint32_t recvbuf, const clink *tls, ps_recv_fn fn,
                  void *arg, ps_sub **out);
void ps_sub_destroy(ps_sub *s);

#endif
