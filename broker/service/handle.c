/* handle.c — one handler per request frame, behind one dispatch table. */
#include "gw_int.h"

#include <herald/error.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "authz.h"
#include "cmd.h"
#include "json.h"
#include "log.h"

typedef void (*handler_fn)(conn *c, herald_frame *f);

/* Builds the common part of a command for the authenticated actor. */
static cmd cmd_for(conn *c, uint32_t op)
{
    return (cmd){.op = op,
                 .tenant = herald_str_z(c->tenant),
                 .user = herald_str_z(c->user),
                 .admin = c->admin,
                 .ts = gw_now_ms()};
}

/* Encodes cmd and submits it; replies come from fanout_done. */
static void submit(conn *c, const herald_frame *f, const cmd *k)
{
    herald_buf b = {0};
    char conv[TOKEN_ID_MAX + 1] = "";
    int rc = cmd_encode(k, &b);

    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    if (k->conv.len <= TOKEN_ID_MAX && k->conv.ptr) {
        memcpy(conv, k->conv.ptr, k->conv.len);
        conv[k->conv.len] = '\0';
    }
    fanout_submit(c, f, k->op, &b, conv);
}

/* Checks a client-supplied id before it reaches the store. */
static bool id_ok(conn *c, const herald_frame *f, herald_str id, const char *what)
{
    char msg[96];
    if (id.ptr && token_id_valid(id.ptr, id.len))
        return true;
    snprintf(msg, sizeof msg, "invalid %s id", what);
    conn_send_error(c, HERALD_EINVAL, msg, f->rid);
    return false;
}

/* Message bytes a HISTORY/SYNC answer may carry so the frame stays under the
 * frame cap (the rest of the frame is small; 1/8 is left for it). */
static size_t reply_budget(const conn *c)
{
    return c->g->cfg.max_frame - c->g->cfg.max_frame / 8;
}

/* The largest SEND body whose deliveries fit the frame cap. */
static uint32_t body_max(const conn *c)
{
    uint32_t cap = c->g->cfg.max_frame;
    return cap > 2 * HERALD_ENVELOPE_RESERVE ? cap - HERALD_ENVELOPE_RESERVE : cap / 2;
}

/* A sync (or the current position) over every shard group. */
typedef struct multi_sync {
    store_sync_out *outs;  /* one per shard (owned) */
    herald_buf msgs;       /* herald_msg array, strings in outs[i] arenas */
    herald_buf sg;         /* herald_sync_group array */
    herald_buf sc;         /* herald_sync_conv array, strings in outs[i] arenas */
    bool more;             /* a limit cut the answer */
} multi_sync;

static void ms_free(multi_sync *ms, uint32_t n)
{
    for (uint32_t i = 0; ms->outs && i < n; i++)
        store_sync_free(&ms->outs[i]);
    free(ms->outs);
    herald_buf_free(&ms->msgs);
    herald_buf_free(&ms->sg);
    herald_buf_free(&ms->sc);
}

/* key NULL: the user's current position (WELCOME). Otherwise everything
 * after the key, at most `limit` messages and about the frame budget in
 * all; groups not reached keep the key's position and `more` is set. */
static int sync_all(conn *c, const herald_frame *key, uint32_t limit, multi_sync *ms)
{
    gw *g = c->g;
    herald_str ten = herald_str_z(c->tenant), user = herald_str_z(c->user);
    size_t budget = reply_budget(c), used = 0;
    int rc = 0;

    memset(ms, 0, sizeof *ms);
    if (limit == 0 || limit > 1000)
        limit = limit ? 1000 : 500;
    ms->outs = calloc(g->nshards, sizeof *ms->outs);
    if (!ms->outs)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < g->nshards && rc == 0; i++) {
        store_sync_out *o = &ms->outs[i];
        herald_sync_group pos = {.group = i};
        for (uint32_t k = 0; key && k < key->n_sync_groups; k++)
            if (key->sync_groups[k].group == i)
                pos.useq = key->sync_groups[k].useq;
        if (key && (limit == 0 || used >= budget)) {
            ms->more = true; /* not reached: the group keeps the client's position */
        } else {
            rc = key ? store_sync(g->shards[i].st, ten, user, pos.useq, key->sync_convs,
                                  key->n_sync_convs, limit, budget - used, o)
                     : store_position(g->shards[i].st, ten, user, o);
            if (rc)
                break;
            pos.useq = o->useq;
            for (uint32_t m = 0; m < o->msgs.n; m++) {
                const herald_msg *hm = &o->msgs.v[m];
                used += hm->body.len + hm->conv.len + hm->from.len + 64;
            }
            limit -= o->msgs.n <= limit ? o->msgs.n : limit;
            ms->more |= o->msgs.more;
            if (herald_buf_append(&ms->msgs, o->msgs.v, o->msgs.n * sizeof(herald_msg)) != 0 ||
                herald_buf_append(&ms->sc, o->convs, o->n_convs * sizeof(herald_sync_conv)) != 0)
                rc = HERALD_ENOMEM;
        }
        if (rc == 0 && herald_buf_append(&ms->sg, &pos, sizeof pos) != 0)
            rc = HERALD_ENOMEM;
    }
    if (rc)
        ms_free(ms, g->nshards);
    return rc;
}

/* Fills a reply's msgs / sg / sc / more from ms and sends it. */
static void send_multi(conn *c, herald_frame *reply, const multi_sync *ms)
{
    uint64_t now = gw_now_ms();
    reply->n_msgs = (uint32_t)(ms->msgs.len / sizeof(herald_msg));
    reply->msgs = (herald_msg *)ms->msgs.data;
    for (uint32_t i = 0; i < reply->n_msgs; i++)
        if (conn_silenced(c, reply->msgs[i].flags, now))
            reply->msgs[i].flags |= HERALD_MSGF_SILENT;
    reply->n_sync_groups = (uint32_t)(ms->sg.len / sizeof(herald_sync_group));
    reply->sync_groups = (herald_sync_group *)ms->sg.data;
    reply->n_sync_convs = (uint32_t)(ms->sc.len / sizeof(herald_sync_conv));
    reply->sync_convs = (herald_sync_conv *)ms->sc.data;
    reply->more = ms->more;
    conn_send(c, reply);
}

/* Conversations up to this many members have every member's kind read from
 * the directory at each SEND / READ / RECEIPTS; larger ones (announcements)
 * keep the join-time flags, so a message costs no O(members) lookups. */
#define KINDS_SCAN_MAX 2000u

/* Whether conv has an external member now. 0 and *ext (with *scanned true
 * when the directory decided), or a store error. NOT_FOUND / not a member
 * are left to the state machine: *scanned false. */
static int external_now(conn *c, herald_str conv, bool *ext, bool *scanned)
{
    herald_str ten = herald_str_z(c->tenant);
    store *st = gw_shard(c->g, ten, conv)->st;
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
        int r = store_dir_user_get(gw_meta(c->g), ten, herald_str_z(mem.v[i]), &d);
        if (r == 0)
            *ext = d.kind == DIR_EXTERNAL;
        else if (r != HERALD_ENOT_FOUND)
            rc = r;
    }
    store_strs_free(&mem);
    *scanned = rc == 0;
    return rc;
}

/* Sets CMD_KINDS_READ / CMD_EXTERNAL_NOW on a SEND or READ. */
static int mark_kinds(conn *c, cmd *k)
{
    bool ext, scanned;
    int rc = external_now(c, k->conv, &ext, &scanned);
    if (rc == 0 && scanned)
        k->flags |= CMD_KINDS_READ | (ext ? CMD_EXTERNAL_NOW : 0);
    return rc;
}

static void on_hello(conn *c, herald_frame *f)
{
    token_claims cl;
    store_tenant t;
    multi_sync pos;
    herald_frame w = {0};
    int rc;

    if (c->authed) {
        conn_send_error(c, HERALD_EPROTOCOL, "duplicate HELLO", f->rid);
        return;
    }
    if (f->version > HERALD_PROTOCOL_VERSION) {
        conn_fail(c, HERALD_EUNSUPPORTED, "protocol version not supported");
        return;
    }
    rc = token_peek(f->token.ptr, f->token.len, &cl);
    if (rc == 0)
        rc = store_tenant_get(gw_meta(c->g), herald_str_z(cl.tenant), &t);
    if (rc == HERALD_ENOT_FOUND)
        rc = HERALD_EUNAUTHORIZED;
    if (rc == 0)
        rc = token_verify(t.secret, f->token.ptr, f->token.len,
                          (uint64_t)time(NULL), &cl);
    if (rc) {
        log_info("gw.auth", "conn %llu %s: %s", (unsigned long long)c->id,
                 c->peer, herald_err_name(rc));
        conn_fail(c, rc, rc == HERALD_EEXPIRED ? "token expired" : "invalid token");
        return;
    }
    strcpy(c->tenant, cl.tenant);
    strcpy(c->user, cl.user);
    c->admin = cl.admin;
    /* Register before reading the position: anything committed after the
     * read is pushed, anything before is covered by the position. */
    if (gw_presence_add(c->g, c) != 0) {
        conn_fail(c, HERALD_ENOMEM, "out of memory");
        return;
    }
    conn_authed(c);
    rc = store_dnd_get(gw_meta(c->g), herald_str_z(c->tenant), herald_str_z(c->user),
                       &c->dnd_until);
    if (rc == 0)
        rc = sync_all(c, NULL, 0, &pos);
    if (rc) {
        conn_fail(c, rc, "cannot read sync position");
        return;
    }
    w.user = herald_str_z(c->user);
    w.tenant = herald_str_z(c->tenant);
    w.admin = c->admin;
    w.hb_ms = c->g->cfg.hb_ms;
    w.max_frame = c->g->cfg.max_frame;
    w.version = HERALD_PROTOCOL_VERSION;
    w.type = HERALD_FT_WELCOME;
    w.rid = f->rid;
    send_multi(c, &w, &pos);
    ms_free(&pos, c->g->nshards);
    log_debug("gw.hello", "conn %llu %s is %s/%s", (unsigned long long)c->id,
              c->peer, c->tenant, c->user);
}

static void on_send(conn *c, herald_frame *f)
{
    cmd k = cmd_for(c, CMD_SEND);

    if (!id_ok(c, f, f->conv, "conversation"))
        return;
    if (f->cmid.len > TOKEN_ID_MAX) {
        conn_send_error(c, HERALD_EINVAL, "cmid longer than 128 bytes", f->rid);
        return;
    }
    if (f->body.len > body_max(c)) {
        /* Its DELIVER, HISTORY_RESULT and SYNC_RESULT must fit the cap too. */
        char m[160];
        snprintf(m, sizeof m,
                 "a message body may be at most %u bytes (the frame cap %u less %u for the "
                 "envelope of its delivery), not %u",
                 body_max(c), c->g->cfg.max_frame, HERALD_ENVELOPE_RESERVE, f->body.len);
        conn_send_error(c, HERALD_ETOO_BIG, m, f->rid);
        return;
    }
    k.conv = f->conv;
    k.cmid = f->cmid;
    k.body = f->body;
    k.flags = f->flags & HERALD_MSGF_CLIENT_MASK;
    {
        /* Tenant settings (reminder schedule) and the certified identity
         * come from the broker's own records, never from the client. */
        store_tenant t;
        store_dir_user d;
        int rc = store_tenant_get(gw_meta(c->g), herald_str_z(c->tenant), &t);
        if (rc == 0) {
            rc = store_dir_user_get(gw_meta(c->g), herald_str_z(c->tenant),
                                    herald_str_z(c->user), &d);
            if (rc == HERALD_ENOT_FOUND) {
                d = (store_dir_user){.kind = DIR_INTERNAL};
                rc = 0;
            }
        }
        if (rc) {
            conn_send_error(c, rc, NULL, f->rid);
            return;
        }
        if (k.flags & HERALD_MSGF_URGENT) {
            k.ivl = t.urgent_interval;
            k.max = t.urgent_max;
        }
        if (d.kind == DIR_INTERNAL) {
            k.corp = herald_str_z(t.corp);
            k.title = herald_str_z(d.title);
        }
        /* Identity stamps follow the members' kinds now, not at join. */
        rc = mark_kinds(c, &k);
        if (rc) {
            conn_send_error(c, rc, NULL, f->rid);
            return;
        }
        submit(c, f, &k);
    }
}

static void on_read(conn *c, herald_frame *f)
{
    cmd k = cmd_for(c, CMD_READ);
    store_tenant t;
    int rc;

    if (!id_ok(c, f, f->conv, "conversation"))
        return;
    /* Cursors move either way; the tenant's switch decides about events. */
    if (store_tenant_get(gw_meta(c->g), herald_str_z(c->tenant), &t) == 0 && t.no_receipts)
        k.flags = CMD_TENANT_NO_RECEIPTS;
    k.conv = f->conv;
    k.seq = f->seq;
    /* Receipts follow the members' kinds now, not at join. */
    rc = mark_kinds(c, &k);
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    submit(c, f, &k);
}

static void on_recall(conn *c, herald_frame *f)
{
    cmd k = cmd_for(c, CMD_RECALL);
    store_tenant t;
    int rc;

    if (!id_ok(c, f, f->conv, "conversation"))
        return;
    /* The window is the tenant's setting, carried in the command. */
    rc = store_tenant_get(gw_meta(c->g), herald_str_z(c->tenant), &t);
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    k.conv = f->conv;
    k.seq = f->seq;
    k.win = t.recall_window;
    submit(c, f, &k);
}

static void on_dnd(conn *c, herald_frame *f)
{
    cmd k = cmd_for(c, CMD_DND);
    herald_buf b = {0};
    int rc;

    if (herald_str_eq(f->op, "status")) {
        herald_frame ok = {.type = HERALD_FT_OK, .rid = f->rid};
        if (c->dnd_until > gw_now_ms()) {
            ok.ts = c->dnd_until;
            ok.flags = 1;
        }
        conn_send(c, &ok);
        return;
    }
    if (herald_str_eq(f->op, "on")) {
        k.flags = 1;
        k.seq = f->ts;
    } else if (!herald_str_eq(f->op, "off")) {
        conn_send_error(c, HERALD_EINVAL, "op must be on, off or status", f->rid);
        return;
    }
    /* User state lives with the tenants (group 0). */
    rc = cmd_encode(&k, &b);
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    fanout_submit_to(c, f, k.op, &b, "", &c->g->shards[0]);
}

static bool may_read(conn *c, const herald_frame *f);

static void on_urgent(conn *c, herald_frame *f)
{
    if (!id_ok(c, f, f->conv, "conversation"))
        return;
    if (herald_str_eq(f->op, "confirm")) {
        cmd k = cmd_for(c, CMD_CONFIRM);
        k.conv = f->conv;
        k.seq = f->seq;
        submit(c, f, &k);
    } else if (herald_str_eq(f->op, "status")) {
        store_strs ok = {0}, pend = {0};
        herald_frame r = {.type = HERALD_FT_URGENT_RESULT, .rid = f->rid, .conv = f->conv,
                          .seq = f->seq};
        herald_str *sv;
        int rc;
        if (!may_read(c, f))
            return;
        rc = store_urgent_status(gw_shard(c->g, herald_str_z(c->tenant), f->conv)->st,
                                 herald_str_z(c->tenant), f->conv, f->seq, &ok, &pend);
        sv = rc ? NULL : calloc((size_t)ok.n + pend.n + 1, sizeof *sv);
        if (!rc && !sv)
            rc = HERALD_ENOMEM;
        if (rc) {
            conn_send_error(c, rc, NULL, f->rid);
        } else {
            for (uint32_t i = 0; i < ok.n; i++)
                sv[i] = herald_str_z(ok.v[i]);
            for (uint32_t i = 0; i < pend.n; i++)
                sv[ok.n + i] = herald_str_z(pend.v[i]);
            r.read = sv;
            r.n_read = ok.n;
            r.unread = sv + ok.n;
            r.n_unread = pend.n;
            conn_send(c, &r);
        }
        free(sv);
        store_strs_free(&ok);
        store_strs_free(&pend);
    } else {
        conn_send_error(c, HERALD_EINVAL, "op must be confirm or status", f->rid);
    }
}

/* Replies DIR_RESULT with the user's directory entry (or the default: an
 * internal user named by its id). */
static void send_dir_user(conn *c, uint64_t rid, herald_str user)
{
    store_dir_user d;
    store_tenant t;
    herald_frame r = {.type = HERALD_FT_DIR_RESULT, .rid = rid, .user = user};
    int rc = store_dir_user_get(gw_meta(c->g), herald_str_z(c->tenant), user, &d);
    if (rc == HERALD_ENOT_FOUND) {
        d = (store_dir_user){.kind = DIR_INTERNAL};
        snprintf(d.name, sizeof d.name, "%.*s", (int)user.len, user.ptr);
        rc = 0;
    }
    if (rc) {
        conn_send_error(c, rc, NULL, rid);
        return;
    }
    rc = store_tenant_get(gw_meta(c->g), herald_str_z(c->tenant), &t);
    if (rc) {
        conn_send_error(c, rc, NULL, rid);
        return;
    }
    r.kind = herald_str_z(d.kind == DIR_EXTERNAL ? "external" : "internal");
    r.name = herald_str_z(d.name);
    r.title = herald_str_z(d.title);
    /* An employee's card names the enterprise by its display name. */
    r.corp = herald_str_z(d.kind == DIR_EXTERNAL ? NULL : t.corp);
    /* A customer gets public cards only: no place in the department tree. */
    if (authz_role_of(gw_meta(c->g), herald_str_z(c->tenant), herald_str_z(c->user),
                      c->admin) != AUTHZ_EXTERNAL)
        r.dept = herald_str_z(d.dept);
    conn_send(c, &r);
}

static void send_dir_dept(conn *c, uint64_t rid, herald_str dept)
{
    store_dir_dept d;
    herald_frame r = {.type = HERALD_FT_DIR_RESULT, .rid = rid, .dept = dept};
    int rc = store_dir_dept_get(gw_meta(c->g), herald_str_z(c->tenant), dept, &d);
    if (rc) {
        conn_send_error(c, rc, rc == HERALD_ENOT_FOUND ? "no such department" : NULL, rid);
        return;
    }
    r.name = herald_str_z(d.name);
    r.parent = herald_str_z(d.parent);
    conn_send(c, &r);
}

void handle_dir_done(conn *c, uint64_t rid, uint32_t op, const char *id)
{
    if (op == CMD_DIR_USER)
        send_dir_user(c, rid, herald_str_z(id));
    else
        send_dir_dept(c, rid, herald_str_z(id));
}

static void on_dir(conn *c, herald_frame *f)
{
    bool user_op = herald_str_eq(f->op, "user.add") || herald_str_eq(f->op, "user.show");
    herald_str id = user_op ? f->user : f->dept;
    cmd k;
    herald_buf b = {0};
    char idz[TOKEN_ID_MAX + 1];
    int rc;

    if (!user_op && !herald_str_eq(f->op, "dept.add") && !herald_str_eq(f->op, "dept.show")) {
        conn_send_error(c, HERALD_EINVAL, "op must be user.add, user.show, dept.add or dept.show",
                        f->rid);
        return;
    }
    if (!id_ok(c, f, id, user_op ? "user" : "department"))
        return;
    if (herald_str_eq(f->op, "user.show")) {
        send_dir_user(c, f->rid, id);
        return;
    }
    if (herald_str_eq(f->op, "dept.show")) {
        send_dir_dept(c, f->rid, id);
        return;
    }
    k = cmd_for(c, user_op ? CMD_DIR_USER : CMD_DIR_DEPT);
    k.target = f->user;
    k.kind = f->kind;
    k.name = f->name;
    k.title = f->title;
    k.dept = f->dept;
    k.parent = f->parent;
    rc = cmd_encode(&k, &b);
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    snprintf(idz, sizeof idz, "%.*s", (int)id.len, id.ptr);
    /* The directory lives with the tenants (group 0). */
    fanout_submit_to(c, f, k.op, &b, idz, &c->g->shards[0]);
}

/* External contacts. add (admin): employee user, customer conv → their 1:1
 * conversation (created in its shard, then recorded with the tenants).
 * list: the customer's owners. */
static void on_contact(conn *c, herald_frame *f)
{
    herald_str ten = herald_str_z(c->tenant);
    store_dir_user d;
    int rc;

    if (!id_ok(c, f, f->conv, "customer"))
        return;
    if (herald_str_eq(f->op, "list")) {
        store_strs owners = {0}, convs = {0};
        herald_str *sv;
        herald_frame r = {.type = HERALD_FT_CONTACT_RESULT, .rid = f->rid};
        rc = store_contacts(gw_meta(c->g), ten, f->conv, &owners, &convs);
        sv = rc ? NULL : calloc(owners.n + 1, sizeof *sv);
        if (!rc && !sv)
            rc = HERALD_ENOMEM;
        if (rc) {
            conn_send_error(c, rc, NULL, f->rid);
        } else {
            for (uint32_t i = 0; i < owners.n; i++)
                sv[i] = herald_str_z(owners.v[i]);
            r.members = sv;
            r.n_members = owners.n;
            conn_send(c, &r);
        }
        free(sv);
        store_strs_free(&owners);
        store_strs_free(&convs);
        return;
    }
    if (!herald_str_eq(f->op, "add")) {
        conn_send_error(c, HERALD_EINVAL, "op must be add or list", f->rid);
        return;
    }
    if (!id_ok(c, f, f->user, "employee"))
        return;
    rc = store_dir_user_get(gw_meta(c->g), ten, f->conv, &d);
    if (rc || d.kind != DIR_EXTERNAL) {
        conn_send_error(c, rc && rc != HERALD_ENOT_FOUND ? rc : HERALD_EINVAL,
                        "the customer must be an external user in the directory", f->rid);
        return;
    }
    rc = store_dir_user_get(gw_meta(c->g), ten, f->user, &d);
    if (rc == 0 && d.kind == DIR_EXTERNAL) {
        conn_send_error(c, HERALD_EINVAL, "the owner must be an employee", f->rid);
        return;
    }
    {
        /* Recorded already (perhaps moved here by a customer transfer):
         * their conversation is that one. */
        store_strs owners = {0}, convs = {0};
        bool found = false;
        if (store_contacts(gw_meta(c->g), ten, f->conv, &owners, &convs) == 0)
            for (uint32_t i = 0; i < owners.n && i < convs.n && !found; i++)
                if (herald_str_eq(f->user, owners.v[i])) {
                    herald_frame r = {.type = HERALD_FT_CONTACT_RESULT, .rid = f->rid,
                                      .conv = herald_str_z(convs.v[i])};
                    conn_send(c, &r);
                    found = true;
                }
        store_strs_free(&owners);
        store_strs_free(&convs);
        if (found)
            return;
    }
    {
        /* The 1:1 conversation's id is derived from the pair: adding the
         * same contact again finds it. */
        uint8_t h[8];
        char id[20] = "ec-";
        herald_str mem[2] = {f->user, f->conv};
        herald_str ext = f->conv;
        crypto_generichash_state st;
        cmd k = cmd_for(c, CMD_CONV_CREATE);
        herald_buf b = {0};
        pending *p;
        crypto_generichash_init(&st, NULL, 0, sizeof h);
        crypto_generichash_update(&st, (const uint8_t *)f->user.ptr, f->user.len);
        crypto_generichash_update(&st, (const uint8_t *)"", 1);
        crypto_generichash_update(&st, (const uint8_t *)f->conv.ptr, f->conv.len);
        crypto_generichash_final(&st, h, sizeof h);
        sodium_bin2hex(id + 3, sizeof id - 3, h, sizeof h);
        k.conv = herald_str_z(id);
        k.kind = herald_str_z("single");
        k.members = mem;
        k.n_members = 2;
        k.external = &ext;
        k.n_external = 1;
        /* The id may exist already, but only as exactly this conversation. */
        k.flags = CMD_CONV_EXPECT;
        rc = cmd_encode(&k, &b);
        if (rc) {
            conn_send_error(c, rc, NULL, f->rid);
            return;
        }
        p = fanout_submit_to(c, f, CMD_CONV_CREATE, &b, id,
                             gw_shard(c->g, ten, herald_str_z(id)));
        if (p) {
            p->then = CMD_CONTACT_ADD;
            snprintf(p->a, sizeof p->a, "%.*s", (int)f->user.len, f->user.ptr);
            snprintf(p->b, sizeof p->b, "%.*s", (int)f->conv.len, f->conv.ptr);
        }
    }
}

static void on_conv(conn *c, herald_frame *f)
{
    static const struct {
        const char *name; /* CONV "op" */
        uint32_t op;      /* command, 0 = read-only */
    } ops[] = {{"create", CMD_CONV_CREATE}, {"add", CMD_CONV_ADD},
               {"remove", CMD_CONV_REMOVE}, {"info", 0}};
    char gen[33];
    cmd k;
    size_t i;

    for (i = 0; i < sizeof ops / sizeof ops[0]; i++)
        if (herald_str_eq(f->op, ops[i].name))
            break;
    if (i == sizeof ops / sizeof ops[0]) {
        conn_send_error(c, HERALD_EINVAL, "op must be create, add, remove or info",
                        f->rid);
        return;
    }
    if (ops[i].op == CMD_CONV_CREATE && !f->kind.len) {
        conn_send_error(c, HERALD_EINVAL,
                        "kind required: single, group, customer_group or announce", f->rid);
        return;
    }
    if (ops[i].op != 0 && authz_reserved_conv(f->conv)) {
        conn_send_error(c, HERALD_EINVAL,
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
    if (!id_ok(c, f, f->conv, "conversation"))
        return;
    for (uint32_t m = 0; m < f->n_members; m++)
        if (!id_ok(c, f, f->members[m], "member"))
            return;
    if (ops[i].op == 0) {
        fanout_conv_info(c, f->rid, f->conv, true);
        return;
    }
    if (ops[i].op != CMD_CONV_CREATE && f->n_members == 0) {
        conn_send_error(c, HERALD_EINVAL, "members required", f->rid);
        return;
    }
    k = cmd_for(c, ops[i].op);
    if (ops[i].op == CMD_CONV_CREATE) {
        /* Tenants live in the meta group; the shard gets the cap in the
         * command so apply stays deterministic and local. */
        store_tenant t;
        int rc = store_tenant_get(gw_meta(c->g), herald_str_z(c->tenant), &t);
        if (rc) {
            conn_send_error(c, rc, NULL, f->rid);
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
            conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
            return;
        }
        for (uint32_t m = 0; m < f->n_members; m++) {
            store_dir_user d;
            if (store_dir_user_get(gw_meta(c->g), herald_str_z(c->tenant), f->members[m], &d) ==
                    0 &&
                d.kind == DIR_EXTERNAL)
                ext[k.n_external++] = f->members[m];
        }
        k.external = ext;
        submit(c, f, &k);
        free(ext);
        return;
    }
    submit(c, f, &k);
}

/* Read-side checks shared by HISTORY and RECEIPTS: members and admins. */
static bool may_read(conn *c, const herald_frame *f)
{
    store *st;
    int rc;
    if (!id_ok(c, f, f->conv, "conversation"))
        return false;
    st = gw_shard(c->g, herald_str_z(c->tenant), f->conv)->st;
    rc = c->admin ? 0
                  : store_member_check(st, herald_str_z(c->tenant), f->conv,
                                       herald_str_z(c->user));
    if (rc == 0 && c->admin) {
        store_conv sc;
        rc = store_conv_get(st, herald_str_z(c->tenant), f->conv, &sc);
    }
    if (rc)
        conn_send_error(c, rc, NULL, f->rid);
    return rc == 0;
}

static void on_history(conn *c, herald_frame *f)
{
    store_msgs m = {0};
    herald_frame r = {.type = HERALD_FT_HISTORY_RESULT, .rid = f->rid};
    int rc;

    if (!may_read(c, f))
        return;
    rc = store_history(gw_shard(c->g, herald_str_z(c->tenant), f->conv)->st,
                       herald_str_z(c->tenant), f->conv, f->after,
                       f->limit, reply_budget(c), &m);
    /* Urgent messages say whether this reader confirmed them. */
    if (rc == 0 && (rc = store_urgent_mark(gw_shard(c->g, herald_str_z(c->tenant), f->conv)->st,
                                           herald_str_z(c->tenant), herald_str_z(c->user), m.v,
                                           m.n)) != 0)
        store_msgs_free(&m);
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    r.n_msgs = m.n;
    r.msgs = m.v;
    r.more = m.more;
    conn_send(c, &r);
    store_msgs_free(&m);
}

static void on_receipts(conn *c, herald_frame *f)
{
    store_receipts_out o;
    herald_frame r = {.type = HERALD_FT_RECEIPTS_RESULT, .rid = f->rid,
                      .conv = f->conv, .seq = f->seq};
    herald_str *sv = NULL;
    int rc;

    if (!may_read(c, f))
        return;
    {
        store_tenant t;
        if (store_tenant_get(gw_meta(c->g), herald_str_z(c->tenant), &t) == 0 &&
            t.no_receipts) {
            conn_send_error(c, HERALD_EFORBIDDEN, "read receipts are switched off for this tenant",
                            f->rid);
            return;
        }
    }
    {
        bool ext, scanned;
        rc = external_now(c, f->conv, &ext, &scanned);
        if (rc == 0 && ext) {
            conn_send_error(c, HERALD_EFORBIDDEN,
                            "receipts are not shown in conversations with external members",
                            f->rid);
            return;
        }
    }
    if (f->after_id.len && !id_ok(c, f, f->after_id, "--after member"))
        return;
    rc = store_receipts(gw_shard(c->g, herald_str_z(c->tenant), f->conv)->st,
                        herald_str_z(c->tenant), f->conv, f->seq, f->after_id, f->limit, &o);
    if (rc == HERALD_EINVAL) {
        /* The one condition left: no message seq (as READ says it). */
        store_conv sc;
        char m[128] = "";
        int crc = store_conv_get(gw_shard(c->g, herald_str_z(c->tenant), f->conv)->st,
                                 herald_str_z(c->tenant), f->conv, &sc);
        if (crc == 0)
            store_seq_beyond(m, sizeof m, f->seq, sc.max_seq);
        conn_send_error(c, crc ? crc : rc, crc ? NULL : m, f->rid);
        return;
    }
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    sv = calloc((size_t)o.read.n + o.unread.n + 1, sizeof *sv);
    if (!sv) {
        conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
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
    conn_send(c, &r);
    free(sv);
out:
    store_receipts_free(&o);
}

static void on_sync(conn *c, herald_frame *f)
{
    multi_sync ms;
    herald_frame r = {.type = HERALD_FT_SYNC_RESULT, .rid = f->rid};
    int rc = sync_all(c, f, f->limit, &ms);

    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    send_multi(c, &r, &ms);
    ms_free(&ms, c->g->nshards);
}

/* Replies TAG_RESULT: the customer's tags now. */
void handle_tags_of(conn *c, uint64_t rid, herald_str customer)
{
    store_strs tags = {0};
    herald_str *sv = NULL;
    herald_frame r = {.type = HERALD_FT_TAG_RESULT, .rid = rid, .user = customer};
    int rc = store_tags(gw_meta(c->g), herald_str_z(c->tenant), customer, &tags);
    if (rc == 0 && !(sv = calloc(tags.n + 1, sizeof *sv)))
        rc = HERALD_ENOMEM;
    if (rc) {
        conn_send_error(c, rc, NULL, rid);
    } else {
        for (uint32_t i = 0; i < tags.n; i++)
            sv[i] = herald_str_z(tags.v[i]);
        r.members = sv;
        r.n_members = tags.n;
        conn_send(c, &r);
    }
    free(sv);
    store_strs_free(&tags);
}

/* TAG: add / remove (admin, external users only) or list a customer's tags. */
static void on_tag(conn *c, herald_frame *f)
{
    bool add = herald_str_eq(f->op, "add");
    char idz[TOKEN_ID_MAX + 1];
    store_dir_user d;
    herald_buf b = {0};
    cmd k;
    int rc;

    if (!id_ok(c, f, f->user, "customer"))
        return;
    if (herald_str_eq(f->op, "list")) {
        handle_tags_of(c, f->rid, f->user);
        return;
    }
    if (!add && !herald_str_eq(f->op, "remove")) {
        conn_send_error(c, HERALD_EINVAL, "op must be add, remove or list", f->rid);
        return;
    }
    rc = store_dir_user_get(gw_meta(c->g), herald_str_z(c->tenant), f->user, &d);
    if (add && (rc || d.kind != DIR_EXTERNAL)) {
        conn_send_error(c, rc && rc != HERALD_ENOT_FOUND ? rc : HERALD_EINVAL,
                        "tags go on external users in the directory", f->rid);
        return;
    }
    k = cmd_for(c, CMD_TAG);
    k.target = f->user;
    k.kind = f->op;
    k.members = f->members;
    k.n_members = f->n_members;
    rc = cmd_encode(&k, &b);
    if (rc) {
        conn_send_error(c, rc, NULL, f->rid);
        return;
    }
    snprintf(idz, sizeof idz, "%.*s", (int)f->user.len, f->user.ptr);
    fanout_submit_to(c, f, CMD_TAG, &b, idz, &c->g->shards[0]);
}

static void on_mass(conn *c, herald_frame *f)
{
    if (herald_str_eq(f->op, "send"))
        mass_start(c, f);
    else if (herald_str_eq(f->op, "status"))
        mass_status(c, f);
    else
        conn_send_error(c, HERALD_EINVAL, "op must be send or status", f->rid);
}

static void on_app(conn *c, herald_frame *f) { app_start(c, f); }

static void on_transfer(conn *c, herald_frame *f) { transfer_start(c, f); }

/* STATUS (tenant admin): the broker's state as one JSON document. */
static void on_status(conn *c, herald_frame *f)
{
    gw *g = c->g;
    herald_buf b = {0};
    herald_frame r = {.type = HERALD_FT_STATUS_RESULT, .rid = f->rid};
    json_w w;

    json_init(&w, &b);
    if (g->be.status) {
        g->be.status(g->be.ctx, &w);
        goto done;
    }
    json_obj(&w);
    json_key(&w, "mode");
    json_strz(&w, "dev");
    json_key(&w, "version");
    json_strz(&w, HERALD_VERSION);
    json_key(&w, "uptime_s");
    json_u64(&w, (uint64_t)(ev_now(g->loop) - g->started));
    json_key(&w, "connections");
    json_u64(&w, g->nconns);
    json_key(&w, "users_online");
    json_u64(&w, hmap_count(g->presence));
    json_key(&w, "groups");
    json_arr(&w);
    for (uint32_t i = 0; i < g->nshards; i++) {
        json_obj(&w);
        json_key(&w, "group");
        json_u64(&w, i);
        json_key(&w, "applied");
        json_u64(&w, store_applied(g->shards[i].st));
        json_key(&w, "map_bytes");
        json_u64(&w, store_map_size(g->shards[i].st));
        json_key(&w, "pending");
        json_u64(&w, writer_pending(g->shards[i].wr));
        json_key(&w, "batches");
        json_u64(&w, writer_batches(g->shards[i].wr));
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
done:
    if (json_done(&w) != 0) {
        conn_send_error(c, HERALD_ENOMEM, NULL, f->rid);
    } else {
        r.body = (herald_str){.ptr = (const char *)b.data, .len = (uint32_t)b.len};
        conn_send(c, &r);
    }
    herald_buf_free(&b);
}

static void on_ping(conn *c, herald_frame *f)
{
    herald_frame r = {.type = HERALD_FT_PONG, .rid = f->rid};
    conn_send(c, &r);
}

/* Request frames a client may send, by type. */
static const handler_fn handlers[HERALD_FT_COUNT_] = {
    [HERALD_FT_HELLO] = on_hello,     [HERALD_FT_SEND] = on_send,
    [HERALD_FT_SYNC] = on_sync,       [HERALD_FT_HISTORY] = on_history,
    [HERALD_FT_READ] = on_read,       [HERALD_FT_RECEIPTS] = on_receipts,
    [HERALD_FT_CONV] = on_conv,       [HERALD_FT_PING] = on_ping,
    [HERALD_FT_RECALL] = on_recall,   [HERALD_FT_DND] = on_dnd,
    [HERALD_FT_URGENT] = on_urgent,   [HERALD_FT_DIR] = on_dir,
    [HERALD_FT_CONTACT] = on_contact, [HERALD_FT_STATUS] = on_status,
    [HERALD_FT_TAG] = on_tag,         [HERALD_FT_MASS] = on_mass,
    [HERALD_FT_APP] = on_app,         [HERALD_FT_TRANSFER] = on_transfer,
};

void handle_frame(conn *c, herald_frame *f)
{
    handler_fn h = f->type < HERALD_FT_COUNT_ ? handlers[f->type] : NULL;

    if (!c->authed && f->type != HERALD_FT_HELLO) {
        conn_fail(c, HERALD_EUNAUTHORIZED, "HELLO required first");
        return;
    }
    if (!h) {
        conn_send_error(c, HERALD_EUNSUPPORTED, "frame type not accepted from clients",
                        f->rid);
        return;
    }
    if (f->type != HERALD_FT_HELLO) {
        /* The one place that decides who may do what (authz.c). */
        char why[256];
        herald_str ten = herald_str_z(c->tenant), user = herald_str_z(c->user);
        authz_role role = authz_role_of(gw_meta(c->g), ten, user, c->admin);
        int rc = authz_check(gw_meta(c->g), ten, user, role, f, why, sizeof why);
        if (rc) {
            conn_send_error(c, rc, rc == HERALD_EFORBIDDEN ? why : NULL, f->rid);
            return;
        }
    }
    h(c, f);
}
