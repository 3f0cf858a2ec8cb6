/*
 * aw.h — the state machine's write toolkit ("apply write"): the context of
 * one command's application and what every command family does with it —
 * store writes inside the command's nested transaction, rejections,
 * conversations and members, appending a message and fanning it out, the
 * urgent-message schedule, the customer counter, and filling the result.
 *
 * apply.c runs each command through its op_* function (apply_ops.h); the
 * op files (apply_conv.c, apply_app.c, apply_tenant.c, apply_transfer.c,
 * apply_urgent.c) use only this toolkit and the store, never each other.
 *
 * Errors: a function returning int gives 0, a rejection code (herald_err,
 * the reason in the result's errmsg: the command fails, deterministically,
 * and leaves no trace), HERALD_ENOMEM, or HERALD_ESTORAGE after aw_fatal
 * (x->mdb_fail set: the whole batch fails and is retried or lost; see
 * apply.h). Callers return any non-zero code unchanged.
 *
 * Strings put into the result are copied into its arena; herald_str
 * arguments are borrowed for the call. Thread: the applying thread.
 */
#ifndef HERALD_STATE_AW_H
#define HERALD_STATE_AW_H

#include "apply_result.h"
#include "cmd.h"
#include "store_int.h"

/* State of one command's application. */
typedef struct actx {
    store *s;          /* store */
    MDB_txn *txn;      /* the command's nested transaction */
    const cmd *c;      /* the command */
    apply_result *r;   /* its result */
    arena *a;          /* the result's arena */
    herald_buf tg;     /* apply_target array being built */
    herald_buf rem;    /* apply_remind array being built (REMIND) */
    herald_buf mass;   /* apply_mass array being built (MASS_MARK …) */
    herald_buf xfer;   /* apply_xfer array being built (TRANSFER_*) */
    int mdb_fail;      /* raw LMDB error that must fail the whole batch */
} actx;

/* ---- outcomes ----------------------------------------------------------- */

/* Rejects the command: msg into the result's errmsg; returns code. */
int aw_reject(actx *x, int code, const char *msg);
/* CAP_EXCEEDED naming the cap of a conversation of kind with cap members. */
int aw_reject_cap(actx *x, int kind, uint32_t cap);
/* An LMDB failure (mdb_rc): fails the batch (MAP_FULL: grow and retry).
 * Returns HERALD_ESTORAGE. */
int aw_fatal(actx *x, int mdb_rc);

/* ---- records ------------------------------------------------------------ */

/* Writes k → p (n bytes) in dbi. An over-long key is a rejection (INVAL). */
int aw_put(actx *x, MDB_dbi dbi, kbuf *k, const void *p, size_t n);
/* Writes k → the record r, and frees r (ENOMEM when building it failed). */
int aw_put_rec(actx *x, MDB_dbi dbi, kbuf *k, rbuf *r);
/* Writes k → v (8 bytes, big-endian). */
int aw_put_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t v);
/* Deletes k from dbi; a missing key is no error. */
int aw_del(actx *x, MDB_dbi dbi, kbuf *k);
/* Reads the u64 at k: *v (0 when absent) and *found. A value that is not
 * 8 bytes is a corrupt store (aw_fatal). */
int aw_get_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t *v, bool *found);

/* ---- ids ---------------------------------------------------------------- */

/* True when s is a valid tenant/user/conversation id (token_id_valid). */
bool aw_id_ok(herald_str s);
/* True when the command marks user as external (directory, via the gateway). */
bool aw_is_external(const cmd *c, herald_str user);

/* ---- conversations ------------------------------------------------------ */

/* The member cap of a kind (group: the tenant's cap, bounded). */
uint32_t aw_kind_cap(int kind, uint32_t group_cap);
/* Loads the command's conversation into *sc and the actor's role (admins
 * count as owners; UINT32_MAX: not a member). NOT_FOUND / INVAL rejections. */
int aw_load_conv(actx *x, store_conv *sc, uint32_t *role);
/* Writes the conversation record of conv (in the command's tenant). */
int aw_write_conv(actx *x, herald_str conv, const store_conv *sc);
/* Member record + memberof entry (external from the command's ext list). */
int aw_write_member(actx *x, herald_str conv, herald_str user, uint32_t role, uint64_t joined,
                    const store_conv *sc);
/* user leaves conv (joined at `joined`): its member record and cursor go;
 * its memberof entry keeps the messages up to sc->max_seq for its sync. */
int aw_leave(actx *x, herald_str conv, herald_str user, uint64_t joined, const store_conv *sc);
/* Whether the conversation counts as having external members for the
 * command: the members' kinds the gateway read at request time, else the
 * join-time count. */
bool aw_conv_external(const cmd *c, const store_conv *sc);

/* ---- messages ----------------------------------------------------------- */

/* System message body {"event":E,"by":actor,"members":[…]} in the arena. */
int aw_system_body(actx *x, const char *event, const herald_str *v, uint32_t n, herald_str *out);
/* Appends a message to conv (seq = max + 1; from, ts and cmid from the
 * command) and fans it out to the current members: a pointer in each
 * member's log unless the conversation is read-diffused, and a target each
 * in the result. Updates sc (max_seq), writes the conversation record, and
 * sets the result's seq, ts and msg. */
int aw_append_msg(actx *x, herald_str conv, store_conv *sc, uint32_t mk, uint32_t flags,
                  herald_str body);
/* Sets the result's msg to the stored message seq of conv, as it is now
 * (left NULL when there is no such record or it does not decode). */
int aw_load_msg(actx *x, herald_str conv, uint64_t seq);
/* READ: every member of conv but reader becomes a target: they
 * get a RECEIPT event. */
int aw_receipt_targets(actx *x, herald_str conv, herald_str reader);

/* ---- urgent (DING) messages --------------------------------------------- */

/* Key of a reminder in the schedule: due time first, so a cursor from the
 * start finds what is due. */
void aw_key_remind(kbuf *k, uint64_t due, herald_str ten, herald_str conv, uint64_t seq);
/* Schedules a reminder of message seq: reminders sent so far, interval (s),
 * reminders before escalation. */
int aw_put_remind(actx *x, uint64_t due, herald_str ten, herald_str conv, uint64_t seq,
                  uint8_t count, uint32_t ivl, uint8_t max);
/* An urgent message just appended (seq, its targets in x->tg): every
 * recipient but the sender must confirm; the first reminder is scheduled
 * one interval from now. */
int aw_urgent_track(actx *x, uint64_t seq);

/* ---- customers ---------------------------------------------------------- */

/* Customers an employee owns (plus accepted incoming transfers). */
int aw_customers_get(actx *x, herald_str employee, uint64_t *n);
/* Counts one customer more (delta > 0) or less (never below 0). */
int aw_customers_add(actx *x, herald_str employee, int delta);

/* ---- multi-subject outcomes --------------------------------------------- */

/* Appends an outcome (subject, status; owner and conv left NULL when
 * their ptr is NULL) to the result's apply_mass list. */
int aw_add_outcome(actx *x, herald_str subject, herald_str owner, herald_str conv,
                   uint32_t status);

/* ---- event callbacks ------------------------------------------------------ */

/* Records the callback events of the command just applied (x->r filled,
 * x->tg / x->rem / x->mass / x->xfer still the op's) in this store's
 * outbox, in the command's transaction (apply_outbox.c, outbox.h). apply.c
 * calls it for every command that applied without error. */
int aw_outbox(actx *x);
/* Appends one event of type (data: a JSON object; conv "" for a
 * tenant-level event) to this store's outbox, at the command's time (the
 * ops whose events are the command's whole point: OFFLINE). */
int aw_event(actx *x, herald_str tenant, const char *type, herald_str conv,
             const herald_buf *data);

#endif
