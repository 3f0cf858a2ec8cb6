/* conv.c — conversations: CONV (create, add, remove, leave, info, …),
 * HISTORY and RECEIPTS. */
#include "svc_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "authz.h"
#include "log.h"

/* Conversations up to this many members have every member's kind read from
 * the directory at each SEND / READ / RECEIPTS; larger ones (announcements)
 * keep the join-time flags, so a message costs no O(members) lookups. */
#define KINDS_SCAN_MAX 2000u

/* Whether conv has an external member now. 0 and *ext (with *scanned true
 * when the directory decided), or a store error. NOT_FOUND / not a member
 * are left to the state machine: *scanned false. */
int conv_external_now(svc_req *rq, herald_str conv, bool *ext, bool *scanned)
{
    herald_str ten = herald_str_z(rq->sess->tenant);
    store *st = svc_conv_store(rq->s, ten, conv);
    store_conv sc;
    store_strs mem = {0};
    int rc;

    *ext = false;
    *scanned = false;
    rc = store_conv_get(st, ten, conv, &sc);
    if (rc == HERALD_ENOT_FOUND)
        return 0;
    if (rc)
        return rc;
    *ext = sc.n_external != 0;
    if (sc.count > KINDS_SCAN_MAX)
        return 0;
    rc = store_members(st, ten, conv, &mem);
    if (rc == HERALD_ENOT_FOUND)
        return 0;
    if (rc)
        return rc;
    *ext = false;
    for (uint32_t i = 0; i < mem.n && !*ext && rc == 0; i++) {
        store_dir_user d;
        int r = store_dir_user_get(svc_meta(rq->s), ten, herald_str_z(mem.v[i]), &d);
        if (r == 0)
            *ext = d.kind == DIR_EXTERNAL;
        else if (r != HERALD_ENOT_FOUND)
            rc = r;
    }
    store_strs_free(&mem);
    *scanned = rc == 0;
    return rc;
}

void conv_info_reply(svc_req *rq, uint64_t rid, herald_str conv, bool check)
{
    herald_str ten = herald_str_z(rq->sess->tenant);
    uint32_t grp = svc_conv_group(rq->s, ten, conv);
    store *st = rq->s->shards[grp].st;
    store_conv sc;
    store_strs mem = {0};
    herald_str *mv = NULL;
    herald_frame r = {.type = HERALD_FT_CONV_RESULT, .rid = rid, .conv = conv};
    int rc = store_conv_get(st, ten, conv, &sc);

    if (rc == 0 && check && !rq->admin)
        rc = store_member_check(st, ten, conv, herald_str_z(rq->sess->user));
    if (rc == 0)
        rc = store_members(st, ten, conv, &mem);
    if (rc == 0 && mem.n && !(mv = calloc(mem.n, sizeof *mv)))
        rc = HERALD_ENOMEM;
    if (rc) {
        req_error(rq, rc, NULL, rid);
        goto out;
    }
    for (uint32_t i = 0; i < mem.n; i++)
        mv[i] = herald_str_z(mem.v[i]);
    r.kind = herald_str_z(conv_kind_name(sc.kind));
    r.owner = herald_str_z(sc.owner);
    r.seq = sc.max_seq;
    r.ts = sc.created;
    r.cap = sc.cap;
    r.count = sc.count;
    r.group = grp;
    r.leader = rq->s->be.leader ? rq->s->be.leader(rq->s->be.ctx, grp) : 0;
    r.n_members = mem.n;
    r.members = mv;
    req_send(rq, &r);
out:
    free(mv);
    store_strs_free(&mem);
}

/* CONV create / add / remove applied: the conversation as it is now (the
 * requester may just have left it: no member check). */
static void conv_done(step *st, apply_result *res)
{
    if (res->err)
        step_error(st, res);
    else
        conv_info_reply(st->rq, st->rid, herald_str_z(st->conv), false);
}

void on_conv(svc_req *rq, herald_frame *in)
{
    herald_frame copy = *in; /* a generated id goes here, not into the caller's frame */
    herald_frame *f = &copy;
    static const struct {
        const char *name; /* CONV "op" */
        uint32_t op;      /* command, 0 = read-only */
    } ops[] = {{"create", CMD_CONV_CREATE}, {"add", CMD_CONV_ADD},
               {"remove", CMD_CONV_REMOVE}, {"info", 0}};
    char gen[33];
    cmd k;
    size_t i;

    if (herald_str_eq(f->op, "list")) {
        conv_list(rq, f);
        return;
    }
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (herald_str_eq(f->op, ops[i].name))
            break;
    if (i == sizeof ops / sizeof ops[0]) {
        req_error(rq, HERALD_EINVAL, "op must be create, add, remove, info or list", f->rid);
        return;
    }
    if (ops[i].op == CMD_CONV_CREATE && !f->kind.len) {
        req_error(rq, HERALD_EINVAL,
                        "kind required: single, group, customer_group or announce", f->rid);
        return;
    }
    if (ops[i].op != 0 && authz_reserved_conv(f->conv)) {
        req_error(rq, HERALD_EINVAL,
                        "conversation ids starting with ec- / ap- / an- are reserved "
                        "(contacts and apps)",
                        f->rid);
        return;
    }
    if (ops[i].op == CMD_CONV_CREATE && !f->conv.ptr) {
        /* The id is chosen here, once, so the command stays deterministic. */
        uint8_t rnd[8];
        randombytes_buf(rnd, sizeof rnd);
        sodium_bin2hex(gen, sizeof gen, rnd, sizeof rnd);
        f->conv = herald_str_z(gen);
    }
    if (!req_id_ok(rq, f, f->conv, "conversation"))
        return;
    for (uint32_t m = 0; m < f->n_members; m++)
        if (!req_id_ok(rq, f, f->members[m], "member"))
            return;
    if (ops[i].op == 0) {
        conv_info_reply(rq, f->rid, f->conv, true);
        return;
    }
    if (ops[i].op != CMD_CONV_CREATE && f->n_members == 0) {
        req_error(rq, HERALD_EINVAL, "members required", f->rid);
        return;
    }
    k = req_cmd(rq, ops[i].op);
    if (ops[i].op == CMD_CONV_CREATE) {
        /* Tenants live in the meta group; the shard gets the cap in the
         * command so apply stays deterministic and local. */
        store_tenant t;
        int rc = store_tenant_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), &t);
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
            return;
        }
        k.cap = t.group_cap;
    }
    k.conv = f->conv;
    k.kind = f->kind;
    k.n_members = f->n_members;
    k.members = f->members;
    if (ops[i].op != CMD_CONV_REMOVE) {
        /* Which members are customers, from the directory. */
        herald_str *ext = calloc(f->n_members + 1, sizeof *ext);
        if (!ext) {
            req_error(rq, HERALD_ENOMEM, NULL, f->rid);
            return;
        }
        for (uint32_t m = 0; m < f->n_members; m++) {
            store_dir_user d;
            if (store_dir_user_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), f->members[m], &d) ==
                    0 &&
                d.kind == DIR_EXTERNAL)
                ext[k.n_external++] = f->members[m];
        }
        k.external = ext;
        svc_step(rq, f->rid, &k, req_conv_group(rq, k.conv), conv_done);
        free(ext);
        return;
    }
    svc_step(rq, f->rid, &k, req_conv_group(rq, k.conv), conv_done);
}

/* Read-side checks shared by HISTORY and RECEIPTS: members and admins. */
bool conv_may_read(svc_req *rq, const herald_frame *f)
{
    store *st;
    int rc;
    if (!req_id_ok(rq, f, f->conv, "conversation"))
        return false;
    st = svc_conv_store(rq->s, herald_str_z(rq->sess->tenant), f->conv);
    rc = rq->admin ? 0
                  : store_member_check(st, herald_str_z(rq->sess->tenant), f->conv,
                                       herald_str_z(rq->sess->user));
    if (rc == 0 && rq->admin) {
        store_conv sc;
        rc = store_conv_get(st, herald_str_z(rq->sess->tenant), f->conv, &sc);
    }
    if (rc)
        req_error(rq, rc, NULL, f->rid);
    return rc == 0;
}

void on_history(svc_req *rq, herald_frame *f)
{
    store_msgs m = {0};
    herald_frame r = {.type = HERALD_FT_HISTORY_RESULT, .rid = f->rid};
    int rc;

    if (!conv_may_read(rq, f))
        return;
    rc = store_history(svc_conv_store(rq->s, herald_str_z(rq->sess->tenant), f->conv),
                       herald_str_z(rq->sess->tenant), f->conv, f->after,
                       f->limit, req_reply_budget(rq), &m);
    /* Urgent messages say whether this reader confirmed them. */
    if (rc == 0 && (rc = store_urgent_mark(svc_conv_store(rq->s, herald_str_z(rq->sess->tenant), f->conv),
                                           herald_str_z(rq->sess->tenant), herald_str_z(rq->sess->user), m.v,
                                           m.n)) != 0)
        store_msgs_free(&m);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    r.n_msgs = m.n;
    r.msgs = m.v;
    r.more = m.more;
    req_send(rq, &r);
    store_msgs_free(&m);
}

void on_receipts(svc_req *rq, herald_frame *f)
{
    store_receipts_out o;
    herald_frame r = {.type = HERALD_FT_RECEIPTS_RESULT, .rid = f->rid,
                      .conv = f->conv, .seq = f->seq};
    herald_str *sv = NULL;
    int rc;

    if (!conv_may_read(rq, f))
        return;
    {
        store_tenant t;
        if (store_tenant_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), &t) == 0 &&
            t.no_receipts) {
            req_error(rq, HERALD_EFORBIDDEN, "read receipts are switched off for this tenant",
                            f->rid);
            return;
        }
    }
    {
        bool ext, scanned;
        rc = conv_external_now(rq, f->conv, &ext, &scanned);
        if (rc == 0 && ext) {
            req_error(rq, HERALD_EFORBIDDEN,
                            "receipts are not shown in conversations with external members",
                            f->rid);
            return;
        }
    }
    if (f->after_id.len && !req_id_ok(rq, f, f->after_id, "--after member"))
        return;
    rc = store_receipts(svc_conv_store(rq->s, herald_str_z(rq->sess->tenant), f->conv),
                        herald_str_z(rq->sess->tenant), f->conv, f->seq, f->after_id, f->limit, &o);
    if (rc == HERALD_EINVAL) {
        /* The one condition left: no message seq (as READ says it). */
        store_conv sc;
        char m[128] = "";
        int crc = store_conv_get(svc_conv_store(rq->s, herald_str_z(rq->sess->tenant), f->conv),
                                 herald_str_z(rq->sess->tenant), f->conv, &sc);
        if (crc == 0)
            store_seq_beyond(m, sizeof m, f->seq, sc.max_seq);
        req_error(rq, crc ? crc : rc, crc ? NULL : m, f->rid);
        return;
    }
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    sv = calloc((size_t)o.read.n + o.unread.n + 1, sizeof *sv);
    if (!sv) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        goto out;
    }
    for (uint32_t i = 0; i < o.read.n; i++)
        sv[i] = herald_str_z(o.read.v[i]);
    for (uint32_t i = 0; i < o.unread.n; i++)
        sv[o.read.n + i] = herald_str_z(o.unread.v[i]);
    r.n_read = o.read.n;
    r.read = sv;
    r.n_unread = o.unread.n;
    r.unread = sv + o.read.n;
    r.n_read_total = o.n_read;
    r.n_unread_total = o.n_unread;
    r.more = o.more;
    r.after_id = herald_str_z(o.more ? o.next : NULL);
    req_send(rq, &r);
    free(sv);
out:
    store_receipts_free(&o);
}

