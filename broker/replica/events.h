/*
 * events.h — the push events of an applied command, from its result alone.
 *
 * Where a command is applied (the dev-mode writer's callback, a raft
 * group's leader after the commit) its apply_result already holds what
 * clients must be told: the message the command stored (with its group
 * position), its recipients, the reader of a READ, the user of a DND, the
 * reminders of a REMIND. events_emit turns that into frames and hands them
 * to a sink; it decodes no command and reads no store.
 *
 * The events of one result, by op (nothing for an error or a skipped one):
 *   SEND (not dup), APP_DELIVER (not dup, seq set), RECALL / CONV_CREATE /
 *   CONV_ADD / CONV_REMOVE / CONV_HANDOVER (seq set):
 *       one DELIVER of res->msg to every target; prevs[i] is the position
 *       of the previous message the chain saw for that target in this
 *       group, or, when it saw none, the position before the first message
 *       it saw (see SYNC KEYS in protocol.h): a client advances on pv ≤
 *       its key and SYNCs otherwise;
 *   READ: one RECEIPT {conv, user = the reader, seq = the cursor} to every
 *       target (prevs NULL);
 *   REMIND: per reminder, a REMIND {conv, seq, count, op "remind", user} to
 *       the pending user, or an escalation (op "escalate", members = the
 *       pending users) to the sender, logged as urgent.escalate;
 *   DND: dnd(tenant, user, until = res->seq).
 */
#ifndef HERALD_REPLICA_EVENTS_H
#define HERALD_REPLICA_EVENTS_H

#include <herald/protocol.h>
#include <stdint.h>

#include "apply.h"

/* Where the events go (the gateway core: its sessions, or the gateways of
 * the cluster). Both hooks run on the thread that calls events_emit; a
 * NULL hook drops its events. */
typedef struct events_sink {
    void *ctx; /* passed to each hook */
    /* A frame for users[0..n) of tenant (prevs: DELIVER only, one per
     * user, else NULL).
     * group and index name the applied entry that produced it. Everything
     * passed is borrowed for the call. */
    void (*push)(void *ctx, uint32_t group, uint64_t index, const char *tenant,
                 const char *const *users, const uint64_t *prevs, uint32_t n,
                 const herald_frame *f);
    /* A user's do-not-disturb changed (until 0: off, UINT64_MAX: until
     * turned off). */
    void (*dnd)(void *ctx, const char *tenant, const char *user, uint64_t until);
} events_sink;

/* The chain of one shard group's pushes: per recipient, the position of
 * the last message pushed to it by this process, and the position before
 * the first message it saw (a recipient it does not hold had nothing
 * since). Kept by whoever emits the group's events (its leader), bounded:
 * at `cap` recipients it forgets them all (the current message's position
 * becomes that first), and a new leadership term (events_chain_term)
 * starts it over: a client whose key is older then SYNCs once. Loop thread
 * only. */
typedef struct events_chain events_chain;
/* cap 0 = 1,000,000 recipients. 0 or HERALD_ENOMEM. */
int events_chain_new(uint32_t cap, events_chain **out);
void events_chain_free(events_chain *c); /* NULL-safe */
/* Forgets the chain when term differs from the last one given. */
void events_chain_term(events_chain *c, uint64_t term);
/* Recipients remembered now. */
uint32_t events_chain_count(const events_chain *c);

/* The push events of one applied command (nothing for errors/skipped), as
 * listed above. res is only read and stays the caller's; it must be a
 * result filled in this process (apply_result.h: tenant, conv, user, msg).
 * chain: the group's (messages advance it even when they cannot be pushed,
 * so the next push shows the gap). Out of memory drops the events
 * concerned (clients catch up through SYNC). */
void events_emit(const apply_result *res, events_chain *chain, const events_sink *sink);

#endif
