/*
 * apply_int.h — internals of the state machine, shared by apply.c (batch,
 * conversations, messages), apply_urgent.c and apply_tenant.c.
 */
#ifndef HERALD_STORE_APPLY_INT_H
#define HERALD_STORE_APPLY_INT_H

#include "apply.h"
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

/* Helpers shared by the apply_*.c files (apply.c). */
int reject(actx *x, int code, const char *msg);
/* CAP_EXCEEDED naming the cap of a conversation of kind with cap members. */
int reject_cap(actx *x, int kind, uint32_t cap);
int fatal(actx *x, int mdb_rc);
int put(actx *x, MDB_dbi dbi, kbuf *k, const void *p, size_t n);
int put_rec(actx *x, MDB_dbi dbi, kbuf *k, rbuf *r);
int put_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t v);
int del(actx *x, MDB_dbi dbi, kbuf *k);
int get_u64(actx *x, MDB_dbi dbi, kbuf *k, uint64_t *v, bool *found);
bool id_ok(herald_str s);
int str_cmp(const void *a, const void *b);
int append_msg(actx *x, herald_str conv, store_conv *sc, uint32_t mk, uint32_t flags,
               herald_str body);
int load_conv(actx *x, store_conv *sc, uint32_t *role);
int write_conv(actx *x, herald_str conv, const store_conv *sc);
/* Member record + memberof entry (external from the command's ext list). */
int write_member(actx *x, herald_str conv, herald_str user, uint32_t role, uint64_t joined,
                 const store_conv *sc);
/* The member cap of a kind (group: the tenant's cap, bounded). */
uint32_t kind_cap(int kind, uint32_t group_cap);
/* System message body {"event":E,"by":actor,"members":[…]} in the arena. */
int system_body(actx *x, const char *event, const herald_str *v, uint32_t n, herald_str *out);
/* Appends an outcome (subject, extra ids, status, time) to the result. */
int add_outcome(actx *x, herald_str subject, herald_str owner, herald_str conv,
                uint32_t status);

/* apply_urgent.c: urgent (DING) messages. */
int urgent_track(actx *x, uint64_t seq);
int op_confirm(actx *x);
int op_remind(actx *x);

/* apply_tenant.c: tenant-level state (kept in group 0). */
int op_dnd(actx *x);
int op_dir_user(actx *x);
int op_dir_dept(actx *x);
int op_contact_add(actx *x);
int op_tag(actx *x);
int op_mass_mark(actx *x);
int op_slotmap(actx *x);

/* apply_app.c: app messages and announcements. */
int op_app_mark(actx *x);
int op_app_deliver(actx *x);

/* apply_transfer.c: customer transfer. */
int op_transfer_mark(actx *x);
int op_transfer_due(actx *x);
int op_conv_handover(actx *x);
int op_transfer_done(actx *x);
/* A new contact counts towards the employee's customers (the taker limit). */
int transfer_count_contact(actx *x, herald_str employee);

#endif
