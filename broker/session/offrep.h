/*
 * offrep.h — the session tier's offline reports: for every message pushed
 * through tier_deliver here, which of its recipients had no session in
 * this process (tier_online), gathered per (group, tenant) and handed on
 * every batch_ms as one batch — to the request service in `heraldd dev`,
 * to the group's leader node (NW_OFFLINE) in `heraldd gateway`. Whoever
 * leads the group decides who was offline everywhere (service/offline.c);
 * this process only says who was not here, so it reports every message it
 * pushed, with no users when all of them were here.
 *
 * A push that comes more than OFFREP_STALE_MS after the message's commit
 * time (a replay after a gap in the nodes' stream) is not reported: it says
 * nothing about who was online when the message was sent, and the leader
 * may have decided that message and forgotten it already, so a report now
 * would decide it again from this tier's word alone.
 *
 * Bounds: OFFREP_MAX_BATCHES batches being gathered, OFFREP_MAX_REPORTS
 * messages and OFFREP_MAX_USERS users per batch (a full batch is handed on
 * at once); a message with more recipients, or one for a batch that cannot
 * be made, is dropped and counted (those recipients get no
 * message.offline), as is a batch that could not be handed on.
 *
 * Threads: the loop thread, for everything.
 */
#ifndef HERALD_SESSION_OFFREP_H
#define HERALD_SESSION_OFFREP_H

#include <herald/protocol.h>
#include <stdint.h>

#include "tier.h"

#define OFFREP_MAX_BATCHES 256u   /* (group, tenant) pairs gathered at once */
#define OFFREP_MAX_REPORTS 1024u  /* messages per batch */
#define OFFREP_MAX_USERS 100000u  /* users per batch */
#define OFFREP_STALE_MS 5000u     /* a push later than this after its commit is not reported */

struct ev_loop;
struct prom_w;
typedef struct offrep offrep;

/* One batch, borrowed for the call: per message (convs[i], seqs[i]) the
 * counts[i] users of `users` (report after report) not here. */
typedef struct offrep_batch {
    uint32_t group;
    const char *tenant;
    uint32_t n;
    const herald_str *convs;
    const uint64_t *seqs;
    const uint64_t *counts;
    uint32_t n_users;
    const herald_str *users;
} offrep_batch;

/* Hands a batch on; 0 when it went (a later failure is offrep_lost), else
 * an error (counted as dropped). */
typedef int (*offrep_send_fn)(void *arg, const offrep_batch *b);

/* Reports what t pushes (borrowed; it outlives the collector), every
 * batch_ms (≥ 10). 0 or HERALD_ENOMEM. */
int offrep_create(struct ev_loop *loop, tier *t, uint32_t batch_ms, offrep_send_fn send,
                  void *arg, offrep **out);
/* Sends nothing more; what is gathered is dropped. NULL-safe. */
void offrep_destroy(offrep *o);

/* After tier_deliver(t, tenant, users, …, n, f): a DELIVER of a stored
 * message (not a recall's tombstone) is reported, its users but the sender
 * that t has no session of as not here. Anything else is ignored. */
void offrep_note(offrep *o, const char *tenant, const char *const *users, uint32_t n,
                 const herald_frame *f);
/* n messages of a batch that went were not taken after all (counted). */
void offrep_lost(offrep *o, uint32_t n);

/* herald_offline_reports_total, _report_users_total, _reports_dropped_total,
 * _reports_stale_total, _report_batches_total. */
void offrep_metrics(const offrep *o, struct prom_w *w);

#endif
