/*
 * test_service.c — component tests of the request service (broker/service)
 * through its one entry point, svc_request, without sockets or processes.
 *
 * The backend is a stub: submit keeps each encoded command in a FIFO (or
 * refuses it with BUSY when told), and pump() applies the queue with
 * apply_batch on this test's own stores (meta group 0 + NG-1 shard groups)
 * and answers svc_applied, until handlers and jobs stop submitting. The
 * sink records every frame (encoded and decoded again, as a client would
 * see it, under the advertised frame cap), fail, started and done, so each
 * test checks the reply frames, their key fields and codes, and that done
 * comes exactly once per request, after every frame.
 *
 * Every handler has good and bad requests here: HELLO, SEND, SYNC, HISTORY,
 * READ, RECEIPTS, CONV, RECALL, DND, URGENT, DIR, CONTACT, TAG, MASS, APP,
 * TRANSFER, STATUS, PING and frame types no handler takes; then a refused
 * submit for every command verb, refused follow-up steps of the multi-step
 * jobs, and jobs whose requester went away (sink send says ECLOSED).
 * svc_offline: reports of two live gateways intersected, decided once both
 * reported; one gateway's report decided at the window's end; late and
 * repeated reports; NOT_LEADER; reports whose counts do not add up.
 */
#include <ev.h>
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "apply.h"
#include "cmd.h"
#include "json.h"
#include "outbox.h"
#include "route.h"
#include "session.h"
#include "store.h"
#include "svc.h"
#include "token.h"

#define TEN "acme"
#define NG 3u                 /* meta group 0 + shard groups 1, 2 */
#define MAX_FRAME 65536u      /* the service's frame cap (small: TOO_BIG is reachable) */
#define HB_MS 12345u
#define REC_FRAMES 64

/* ---- the stub backend ----------------------------------------------------- */

typedef struct qitem {
    uint32_t group;     /* where it was submitted */
    uint32_t op;        /* its cmd op (decoded at submit) */
    herald_buf cmd;     /* the encoded command (taken) */
    void *cookie;       /* for svc_applied */
    struct qitem *next;
} qitem;

#define LOG_MAX 256

typedef struct fx {
    char dir[64];             /* data dir (one subdir per group) */
    store *st[NG];            /* the stores */
    uint64_t next[NG];        /* next command index per group */
    struct ev_loop *loop;     /* the service's loop (never run) */
    svc *s;                   /* the service under test */
    uint8_t secret[TOKEN_SECRET_LEN]; /* tenant TEN's secret */
    qitem *head, **tail;      /* submitted, not yet applied */
    int accept_left;          /* submits still accepted; < 0: all */
    uint32_t refuse_op;       /* submits of this cmd op are refused (0: none) */
    uint32_t refused;         /* submits answered BUSY */
    uint32_t n_log;           /* submits accepted (log below) */
    uint32_t log_op[LOG_MAX], log_group[LOG_MAX];
    uint64_t rid;             /* last request id used */
    struct rec *recs;         /* every recorder (freed at teardown) */
    uint32_t live[4], n_live; /* the gateways be_gateways names */
    bool not_leader;          /* be_leads answers false */
} fx;

static int be_submit(void *ctx, uint32_t group, herald_buf *cmdb, void *cookie)
{
    fx *x = ctx;
    qitem *q;
    uint32_t op;
    cmd k;

    assert_true(group < NG);
    assert_int_equal(cmd_decode(cmdb->data, cmdb->len, &k), 0);
    op = k.op;
    cmd_release(&k);
    if (x->accept_left == 0 || op == x->refuse_op) {
        x->refused++;
        return HERALD_EBUSY; /* *cmdb untouched */
    }
    if (x->accept_left > 0)
        x->accept_left--;
    q = calloc(1, sizeof *q);
    assert_non_null(q);
    q->op = op;
    q->group = group;
    q->cmd = *cmdb;
    *cmdb = (herald_buf){0};
    q->cookie = cookie;
    *x->tail = q;
    x->tail = &q->next;
    if (x->n_log < LOG_MAX) {
        x->log_op[x->n_log] = q->op;
        x->log_group[x->n_log] = group;
    }
    x->n_log++;
    return 0;
}

static bool be_leads(void *ctx, uint32_t group)
{
    fx *x = ctx;
    (void)group;
    return !x->not_leader;
}

static uint32_t be_gateways(void *ctx, uint32_t *ids, uint32_t cap)
{
    fx *x = ctx;
    uint32_t n = x->n_live < cap ? x->n_live : cap;
    memcpy(ids, x->live, n * sizeof *ids);
    return n;
}

static uint32_t be_leader(void *ctx, uint32_t group)
{
    (void)ctx;
    (void)group;
    return 0;
}

static void be_status(void *ctx, json_w *w)
{
    (void)ctx;
    json_obj(w);
    json_key(w, "mode");
    json_strz(w, "test");
    json_key(w, "groups");
    json_u64(w, NG);
    json_obj_end(w);
}

static size_t queued(const fx *x)
{
    size_t n = 0;
    for (const qitem *q = x->head; q; q = q->next)
        n++;
    return n;
}

/* Applies the queue in submission order, each command at its group's next
 * index, and answers the service; again while it submits more. Returns the
 * number of commands applied. */
static uint32_t pump(fx *x)
{
    uint32_t n = 0;
    while (x->head) {
        qitem *q = x->head;
        apply_result res;
        const uint8_t *p = q->cmd.data;
        size_t len = q->cmd.len;
        x->head = q->next;
        if (!x->head)
            x->tail = &x->head;
        assert_int_equal(apply_batch(x->st[q->group], &p, &len, 1, x->next[q->group]++, &res), 0);
        assert_int_equal(res.op, q->op);
        svc_applied(x->s, q->cookie, &res);
        apply_result_free(&res);
        herald_buf_free(&q->cmd);
        free(q);
        n++;
    }
    return n;
}

/* A command straight to a group's store (setup only: tenants). */
static int apply_direct(fx *x, uint32_t group, cmd *k)
{
    herald_buf b = {0};
    apply_result res;
    const uint8_t *p;
    size_t len;
    int rc;
    if (!k->ts)
        k->ts = session_now_ms();
    assert_int_equal(cmd_encode(k, &b), 0);
    p = b.data;
    len = b.len;
    assert_int_equal(apply_batch(x->st[group], &p, &len, 1, x->next[group]++, &res), 0);
    rc = res.err;
    apply_result_free(&res);
    herald_buf_free(&b);
    return rc;
}

static void tenant_create(fx *x, const char *name, uint8_t secret[TOKEN_SECRET_LEN],
                          uint32_t flags, const char *corp)
{
    char hex[TOKEN_SECRET_HEX + 1];
    cmd k = {.op = CMD_TENANT_CREATE, .tenant = herald_str_z(name), .flags = flags,
             .corp = herald_str_z(corp)};
    token_secret_generate(secret);
    token_secret_to_hex(secret, hex);
    k.secret = herald_str_z(hex);
    assert_int_equal(apply_direct(x, 0, &k), 0);
}

/* ---- the recording sink ---------------------------------------------------- */

typedef struct rframe {
    herald_buf raw;  /* as encoded by the sink (header + map) */
    herald_frame f;  /* decoded from raw (strings point into it) */
} rframe;

typedef struct rec {
    rframe *fr[REC_FRAMES]; /* frames sent, in order */
    int n;
    bool closed_sink;       /* send answers HERALD_ECLOSED (requester gone) */
    int refused_sends;      /* sends answered ECLOSED */
    int fails;              /* fail calls */
    uint32_t fail_code;
    char fail_text[256];
    int started;            /* started calls */
    int started_rc;         /* what started answers */
    int frames_at_started;
    bool authed_at_started;
    session *sess;          /* the request's session */
    uint64_t rid;           /* the request's id (replies echo it) */
    int done;               /* done calls */
    int frames_at_done;
    int late;               /* send / fail after done, or send after fail */
    struct rec *next;
} rec;

static int sink_send(void *ctx, const herald_frame *f)
{
    rec *r = ctx;
    rframe *rf;
    herald_limits lim = {.max_frame = MAX_FRAME};
    if (r->done || r->fails)
        r->late++;
    if (r->closed_sink) {
        r->refused_sends++;
        return HERALD_ECLOSED;
    }
    assert_true(r->n < REC_FRAMES);
    rf = calloc(1, sizeof *rf);
    assert_non_null(rf);
    assert_int_equal(herald_frame_encode(f, &rf->raw), 0);
    /* As a client decodes it: within the advertised cap, required keys set. */
    assert_int_equal(herald_frame_decode(rf->raw.data + HERALD_FRAME_HEADER,
                                         rf->raw.len - HERALD_FRAME_HEADER, &lim, &rf->f),
                     0);
    r->fr[r->n++] = rf;
    return 0;
}

static void sink_fail(void *ctx, int code, const char *text)
{
    rec *r = ctx;
    if (r->done)
        r->late++;
    r->fails++;
    r->fail_code = (uint32_t)code;
    snprintf(r->fail_text, sizeof r->fail_text, "%s", text ? text : "");
}

static int sink_started(void *ctx)
{
    rec *r = ctx;
    r->started++;
    r->frames_at_started = r->n;
    r->authed_at_started = r->sess && r->sess->authed;
    return r->started_rc;
}

static void sink_done(void *ctx)
{
    rec *r = ctx;
    r->done++;
    r->frames_at_done = r->n;
}

static rec *rec_new(fx *x, session *sess)
{
    rec *r = calloc(1, sizeof *r);
    assert_non_null(r);
    r->sess = sess;
    r->next = x->recs;
    x->recs = r;
    return r;
}

static void rec_free(rec *r)
{
    for (int i = 0; i < r->n; i++) {
        herald_frame_release(&r->fr[i]->f);
        herald_buf_free(&r->fr[i]->raw);
        free(r->fr[i]);
    }
    free(r);
}

static svc_sink sink_of(rec *r)
{
    return (svc_sink){.ctx = r, .send = sink_send, .fail = sink_fail, .started = sink_started,
                      .done = sink_done, .origin = "test"};
}

/* ---- requests ---------------------------------------------------------------- */

/* Hands f to the service as a transport would: encoded by a client, decoded
 * (strings not NUL-terminated, pointing into the wire bytes). rid: the next
 * one unless f has one. Nothing is pumped. */
static rec *call_with(fx *x, session *sess, herald_frame *f, rec *r)
{
    herald_buf b = {0};
    herald_frame d;
    svc_sink sink = sink_of(r);
    if (!f->rid)
        f->rid = ++x->rid;
    r->rid = f->rid;
    assert_int_equal(herald_frame_encode(f, &b), 0);
    assert_int_equal(herald_frame_decode(b.data + HERALD_FRAME_HEADER, b.len - HERALD_FRAME_HEADER,
                                         NULL, &d),
                     0);
    svc_request(x->s, sess, &d, &sink);
    herald_frame_release(&d);
    herald_buf_free(&b);
    return r;
}

static rec *call(fx *x, session *sess, herald_frame *f)
{
    return call_with(x, sess, f, rec_new(x, sess));
}

/* The request is over: done exactly once, after every frame, nothing late. */
static void finished(const rec *r)
{
    assert_int_equal(r->done, 1);
    assert_int_equal(r->frames_at_done, r->n);
    assert_int_equal(r->late, 0);
}

/* call, pump until quiet, and check it finished. */
static rec *run(fx *x, session *sess, herald_frame *f)
{
    rec *r = call(x, sess, f);
    pump(x);
    finished(r);
    return r;
}

static const char *frame_desc(const herald_frame *f)
{
    static char buf[320];
    if (f->type == HERALD_FT_ERROR)
        snprintf(buf, sizeof buf, "ERROR %s: %.*s", herald_err_name((int)f->code),
                 (int)f->text.len, f->text.ptr ? f->text.ptr : "");
    else
        snprintf(buf, sizeof buf, "%s", herald_frame_type_name(f->type));
    return buf;
}

/* Frame i of r, of the given type, echoing the request's rid. */
static herald_frame *frame_at(const rec *r, int i, uint32_t type)
{
    uint64_t rid = r->rid;
    herald_frame *f;
    assert_true(i < r->n);
    f = &r->fr[i]->f;
    if (f->type != type)
        fail_msg("frame %d is %s, expected %s", i, frame_desc(f), herald_frame_type_name(type));
    if (type == HERALD_FT_ERROR)
        assert_int_equal(f->ref, rid);
    else
        assert_int_equal(f->rid, rid);
    return f;
}

/* The one frame of r, of the given type, echoing the request's rid. */
static herald_frame *only(const rec *r, uint32_t type)
{
    if (r->n != 1)
        fail_msg("%d frames (first %s), expected one %s", r->n,
                 r->n ? frame_desc(&r->fr[0]->f) : "-", herald_frame_type_name(type));
    assert_int_equal(r->fails, 0);
    return frame_at(r, 0, type);
}

/* The one frame of r is ERROR code for the request; returns its text. */
static const char *only_error(const rec *r, int code)
{
    static char text[256];
    herald_frame *f = only(r, HERALD_FT_ERROR);
    if (f->code != (uint32_t)code)
        fail_msg("got %s, expected %s", frame_desc(f), herald_err_name(code));
    snprintf(text, sizeof text, "%.*s", (int)f->text.len, f->text.ptr ? f->text.ptr : "");
    return text;
}

/* r failed the connection with code (and sent no frame itself). */
static void failed_with(const rec *r, int code)
{
    assert_int_equal(r->n, 0);
    assert_int_equal(r->fails, 1);
    if (r->fail_code != (uint32_t)code)
        fail_msg("failed with %s (%s), expected %s", herald_err_name((int)r->fail_code),
                 r->fail_text, herald_err_name(code));
}

/* s equals z (NULL: absent). */
static void str_is(herald_str s, const char *z)
{
    char buf[300];
    if (!z) {
        assert_int_equal(s.len, 0);
        return;
    }
    snprintf(buf, sizeof buf, "%.*s", (int)s.len, s.ptr ? s.ptr : "");
    assert_string_equal(buf, z);
}

/* The strings v[0..n) are exactly the NULL-terminated list want, in order. */
static void strs_are(const herald_str *v, uint32_t n, const char *const *want)
{
    uint32_t i = 0;
    for (; want[i]; i++) {
        if (i >= n)
            fail_msg("only %u entries, expected %s next", n, want[i]);
        str_is(v[i], want[i]);
    }
    assert_int_equal(n, i);
}

static bool strs_has(const herald_str *v, uint32_t n, const char *z)
{
    for (uint32_t i = 0; i < n; i++)
        if (herald_str_eq(v[i], z))
            return true;
    return false;
}

#define LIST(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NONE ((const char *const[]){NULL})

static herald_str hs(const char *z) { return herald_str_z(z); }

/* ---- fixture ------------------------------------------------------------------ */

static int setup(void **state)
{
    fx *x = calloc(1, sizeof *x);
    svc_config cfg = {.max_frame = MAX_FRAME, .hb_ms = HB_MS, .cb = {.offline_wait_ms = 50}};
    svc_backend be = {.submit = be_submit, .leads = be_leads, .leader = be_leader,
                      .status = be_status, .gateways = be_gateways};
    assert_non_null(x);
    snprintf(x->dir, sizeof x->dir, "/tmp/herald-svc-XXXXXX");
    assert_non_null(mkdtemp(x->dir));
    for (uint32_t g = 0; g < NG; g++) {
        char sub[96];
        store_config sc = {.dir = sub, .map_size = 64u << 20, .no_sync = true, .group = g};
        snprintf(sub, sizeof sub, "%s/g%u", x->dir, g);
        assert_int_equal(store_open(&sc, &x->st[g]), 0);
        assert_int_equal(store_group(x->st[g]), g);
        x->next[g] = store_applied(x->st[g]) + 1;
    }
    x->tail = &x->head;
    x->accept_left = -1;
    x->loop = ev_loop_new(EVFLAG_AUTO);
    assert_non_null(x->loop);
    be.ctx = x;
    assert_int_equal(svc_create(&cfg, x->loop, x->st, NG, &be, &x->s), 0);
    tenant_create(x, TEN, x->secret, 0, "Acme Corp");
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    fx *x = *state;
    char rm[128];
    /* Every submitted command was answered before the service goes. */
    assert_int_equal(queued(x), 0);
    svc_destroy(x->s);
    ev_loop_destroy(x->loop);
    while (x->recs) {
        rec *r = x->recs;
        x->recs = r->next;
        rec_free(r);
    }
    for (uint32_t g = 0; g < NG; g++)
        store_close(x->st[g]);
    snprintf(rm, sizeof rm, "rm -rf '%s'", x->dir);
    assert_int_equal(system(rm), 0);
    free(x);
    return 0;
}

static void mint(const uint8_t *secret, const char *tenant, const char *user, bool admin,
                 long ttl, char *out, size_t outlen)
{
    token_claims c = {.admin = admin, .expires = (uint64_t)((long)time(NULL) + ttl)};
    snprintf(c.tenant, sizeof c.tenant, "%s", tenant);
    snprintf(c.user, sizeof c.user, "%s", user);
    assert_int_equal(token_mint(secret, &c, out, outlen), 0);
}

/* HELLO for user of TEN; returns the recorder (WELCOME checked). */
static rec *login(fx *x, session *s, const char *user, bool admin)
{
    char tok[TOKEN_TEXT_MAX];
    herald_frame f = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};
    rec *r;
    mint(x->secret, TEN, user, admin, 3600, tok, sizeof tok);
    f.token = hs(tok);
    memset(s, 0, sizeof *s);
    r = run(x, s, &f);
    only(r, HERALD_FT_WELCOME);
    assert_true(s->authed);
    return r;
}

/* ---- request builders ---------------------------------------------------------- */

static rec *conv_op(fx *x, session *s, const char *op, const char *conv, const char *kind,
                    const char *const *mem)
{
    herald_str mv[16];
    uint32_t n = 0;
    herald_frame f = {.type = HERALD_FT_CONV, .op = hs(op), .conv = hs(conv), .kind = hs(kind)};
    for (; mem && mem[n]; n++)
        mv[n] = hs(mem[n]);
    f.members = n ? mv : NULL;
    f.n_members = n;
    return run(x, s, &f);
}

/* CONV create that must work: CONV_RESULT. */
static void conv_create(fx *x, session *s, const char *conv, const char *kind,
                        const char *const *mem)
{
    rec *r = conv_op(x, s, "create", conv, kind, mem);
    herald_frame *f = only(r, HERALD_FT_CONV_RESULT);
    str_is(f->conv, conv);
}

static rec *send_msg(fx *x, session *s, const char *conv, const char *cmid, const char *body,
                     uint32_t flags)
{
    herald_frame f = {.type = HERALD_FT_SEND, .conv = hs(conv), .cmid = hs(cmid),
                      .body = hs(body), .flags = flags};
    return run(x, s, &f);
}

/* SEND that must work: its seq. */
static uint64_t sent(fx *x, session *s, const char *conv, const char *cmid, const char *body)
{
    rec *r = send_msg(x, s, conv, cmid, body, 0);
    return only(r, HERALD_FT_ACK)->seq;
}

static rec *dir_user_add(fx *x, session *admin, const char *user, const char *kind,
                         const char *name, const char *title, const char *dept)
{
    herald_frame f = {.type = HERALD_FT_DIR, .op = hs("user.add"), .user = hs(user),
                      .kind = hs(kind), .name = hs(name), .title = hs(title), .dept = hs(dept)};
    return run(x, admin, &f);
}

static void dir_user(fx *x, session *admin, const char *user, const char *kind)
{
    only(dir_user_add(x, admin, user, kind, NULL, NULL, NULL), HERALD_FT_DIR_RESULT);
}

static rec *contact_add(fx *x, session *admin, const char *employee, const char *customer)
{
    herald_frame f = {.type = HERALD_FT_CONTACT, .op = hs("add"), .user = hs(employee),
                      .conv = hs(customer)};
    return run(x, admin, &f);
}

static rec *tag_op(fx *x, session *s, const char *op, const char *user, const char *const *tags)
{
    herald_str mv[16];
    uint32_t n = 0;
    herald_frame f = {.type = HERALD_FT_TAG, .op = hs(op), .user = hs(user)};
    for (; tags && tags[n]; n++)
        mv[n] = hs(tags[n]);
    f.members = n ? mv : NULL;
    f.n_members = n;
    return run(x, s, &f);
}

/* The sessions most tests use: admin "boss", employees "a", "b", "e1", "e2",
 * customer "c1" (external in the directory), all logged in. */
typedef struct people {
    session boss, a, b, e1, e2, c1, c2; /* c2: mass_cast only */
} people;

static void cast(fx *x, people *p)
{
    login(x, &p->boss, "boss", true);
    dir_user(x, &p->boss, "e1", "internal");
    dir_user(x, &p->boss, "e2", "internal");
    dir_user(x, &p->boss, "c1", "external");
    login(x, &p->a, "a", false);
    login(x, &p->b, "b", false);
    login(x, &p->e1, "e1", false);
    login(x, &p->e2, "e2", false);
    login(x, &p->c1, "c1", false);
}

/* ==== offline reports ============================================================= */

/* The data of the last message.offline event of group g ("" none). */
typedef struct last_off {
    char data[256];
    uint32_t n;
} last_off;

static int last_off_fn(const store_event *e, void *arg)
{
    last_off *l = arg;
    if (strcmp(e->type, "message.offline") == 0) {
        snprintf(l->data, sizeof l->data, "%.*s", (int)e->data_len, e->data);
        l->n++;
    }
    return 0;
}

static last_off offline_events(fx *x, uint32_t g)
{
    last_off l = {.n = 0};
    assert_int_equal(store_outbox_scan(x->st[g], 0, 1000, last_off_fn, &l), 0);
    return l;
}

/* One gateway's report of one message. */
static int report(fx *x, uint32_t gw, uint32_t g, const char *conv, uint64_t seq,
                  const char *const *away)
{
    herald_str c = hs(conv), u[8];
    uint64_t n = 0;
    svc_offline_report r = {.gateway = gw, .group = g, .tenant = hs(TEN), .n = 1, .convs = &c,
                            .seqs = &seq, .counts = &n, .users = u};
    for (; away && away[n]; n++)
        u[n] = hs(away[n]);
    r.n_users = (uint32_t)n;
    return svc_offline(x->s, &r);
}

static void test_offline(void **state)
{
    fx *x = *state;
    session a;
    const char *mem[] = {"a", "b", "c", "d", NULL};
    const char *gw1[] = {"b", "d", NULL}, *gw2[] = {"c", "d", NULL};
    uint32_t g = route_conv_group(hs(TEN), hs("off"), NG, NULL);
    uint64_t s1, s2;
    svc_offline_stats st;
    last_off l;

    login(x, &a, "a", false);
    conv_create(x, &a, "off", "group", mem);
    s1 = sent(x, &a, "off", "m1", "one");
    s2 = sent(x, &a, "off", "m2", "two");

    /* Two live gateways: b is on gateway 2, c on gateway 1, d on neither. */
    x->live[0] = 1;
    x->live[1] = 2;
    x->n_live = 2;
    assert_int_equal(report(x, 1, g, "off", s1, gw1), 0);
    assert_int_equal(queued(x), 0); /* gateway 2 has not said yet */
    assert_int_equal(report(x, 2, g, "off", s1, gw2), 0);
    assert_int_equal(queued(x), 1); /* decided: one OFFLINE */
    pump(x);
    l = offline_events(x, g);
    assert_int_equal(l.n, 1);
    assert_non_null(strstr(l.data, "\"users\":[\"d\"]"));
    /* Late and repeated reports change nothing. */
    assert_int_equal(report(x, 1, g, "off", s1, gw1), 0);
    assert_int_equal(report(x, 2, g, "off", s1, mem), 0);
    assert_int_equal(queued(x), 0);

    /* Only gateway 1 reports s2: decided at the window's end (50 ms). */
    assert_int_equal(report(x, 1, g, "off", s2, gw1), 0);
    assert_int_equal(queued(x), 0);
    usleep(120 * 1000);
    ev_now_update(x->loop);
    ev_run(x->loop, EVRUN_NOWAIT);
    assert_int_equal(queued(x), 1);
    pump(x);
    l = offline_events(x, g);
    assert_int_equal(l.n, 2);
    assert_non_null(strstr(l.data, "\"users\":[\"b\",\"d\"]"));

    /* All here on the one live gateway: decided, nothing proposed. */
    x->n_live = 1;
    assert_int_equal(report(x, 1, g, "off", s2 + 1, NULL), 0);
    assert_int_equal(queued(x), 0);

    svc_offline_stats_get(x->s, &st);
    assert_int_equal(st.reports, 6);
    assert_int_equal(st.late, 2);
    assert_int_equal(st.timed_out, 1);
    assert_int_equal(st.proposed, 2);
    assert_int_equal(st.events, 2);

    /* Not the group's leader; counts that do not add up. */
    x->not_leader = true;
    assert_int_equal(report(x, 1, g, "off", s1, gw1), HERALD_ENOT_LEADER);
    x->not_leader = false;
    {
        herald_str c = hs("off"), u = hs("b");
        uint64_t seq = s1, n = 2;
        svc_offline_report r = {.gateway = 1, .group = g, .tenant = hs(TEN), .n = 1,
                                .convs = &c, .seqs = &seq, .counts = &n, .n_users = 1,
                                .users = &u};
        assert_int_equal(svc_offline(x->s, &r), HERALD_EINVAL);
        r.group = NG;
        n = 1;
        assert_int_equal(svc_offline(x->s, &r), HERALD_EINVAL);
    }
}

/* ==== HELLO ====================================================================== */

static void test_hello(void **state)
{
    fx *x = *state;
    session s = {0};
    char tok[TOKEN_TEXT_MAX];
    herald_frame f = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};
    herald_frame *w;
    rec *r;

    mint(x->secret, TEN, "alice", true, 3600, tok, sizeof tok);
    f.token = hs(tok);
    r = run(x, &s, &f);
    w = only(r, HERALD_FT_WELCOME);
    str_is(w->user, "alice");
    str_is(w->tenant, TEN);
    assert_true(w->admin);
    assert_int_equal(w->hb_ms, HB_MS);
    assert_int_equal(w->max_frame, MAX_FRAME);
    assert_int_equal(w->version, HERALD_PROTOCOL_VERSION);
    /* The current position: one entry per group, nothing seen yet. */
    assert_int_equal(w->n_sync_groups, NG);
    for (uint32_t g = 0; g < NG; g++) {
        assert_int_equal(w->sync_groups[g].group, g);
        assert_int_equal(w->sync_groups[g].pos, 0);
    }
    assert_int_equal(w->n_msgs, 0);
    /* The session is filled and started before the WELCOME goes out. */
    assert_true(s.authed);
    assert_true(s.admin);
    assert_string_equal(s.tenant, TEN);
    assert_string_equal(s.user, "alice");
    assert_int_equal(s.dnd_until, 0);
    assert_int_equal(r->started, 1);
    assert_int_equal(r->frames_at_started, 0);
    assert_true(r->authed_at_started);
    assert_int_equal(queued(x), 0); /* a read: nothing submitted */
    assert_int_equal(x->n_log, 0);

    /* A second HELLO on the session: ERROR PROTOCOL, the session stays. */
    f.rid = 0;
    r = run(x, &s, &f);
    only_error(r, HERALD_EPROTOCOL);
    assert_int_equal(r->started, 0);
    assert_true(s.authed);
    assert_string_equal(s.user, "alice");
}

static void test_hello_refused(void **state)
{
    fx *x = *state;
    uint8_t other[TOKEN_SECRET_LEN];
    char tok[TOKEN_TEXT_MAX];
    session s;
    herald_frame f = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};
    rec *r;

    /* Garbage. */
    memset(&s, 0, sizeof s);
    f.token = hs("not-a-token");
    r = run(x, &s, &f);
    failed_with(r, HERALD_EUNAUTHORIZED);
    assert_string_equal(r->fail_text, "invalid token");
    assert_int_equal(r->started, 0);
    assert_false(s.authed);

    /* Signed with another secret. */
    token_secret_generate(other);
    mint(other, TEN, "mallory", true, 3600, tok, sizeof tok);
    memset(&s, 0, sizeof s);
    f.rid = 0;
    f.token = hs(tok);
    r = run(x, &s, &f);
    failed_with(r, HERALD_EUNAUTHORIZED);
    assert_false(s.authed);
    assert_false(s.admin);

    /* A tenant that does not exist. */
    mint(x->secret, "nosuch", "u", false, 3600, tok, sizeof tok);
    memset(&s, 0, sizeof s);
    f.rid = 0;
    f.token = hs(tok);
    r = run(x, &s, &f);
    failed_with(r, HERALD_EUNAUTHORIZED);
    assert_false(s.authed);

    /* Expired. */
    mint(x->secret, TEN, "u", false, -10, tok, sizeof tok);
    memset(&s, 0, sizeof s);
    f.rid = 0;
    f.token = hs(tok);
    r = run(x, &s, &f);
    failed_with(r, HERALD_EEXPIRED);
    assert_string_equal(r->fail_text, "token expired");
    assert_false(s.authed);

    /* A protocol version from the future. */
    mint(x->secret, TEN, "u", false, 3600, tok, sizeof tok);
    memset(&s, 0, sizeof s);
    f.rid = 0;
    f.token = hs(tok);
    f.version = HERALD_PROTOCOL_VERSION + 1;
    r = run(x, &s, &f);
    failed_with(r, HERALD_EUNSUPPORTED);
    assert_false(s.authed);

    /* The transport cannot start the session: failed with its code. */
    memset(&s, 0, sizeof s);
    f.rid = 0;
    f.version = HERALD_PROTOCOL_VERSION;
    r = rec_new(x, &s);
    r->started_rc = HERALD_EBUSY;
    call_with(x, &s, &f, r);
    pump(x);
    finished(r);
    failed_with(r, HERALD_EBUSY);
    assert_int_equal(r->started, 1);
    assert_false(s.authed);
}

/* Anything but HELLO (and PING) before HELLO fails the connection. */
static void test_unauthenticated(void **state)
{
    fx *x = *state;
    static const uint32_t types[] = {
        HERALD_FT_SEND, HERALD_FT_SYNC, HERALD_FT_HISTORY, HERALD_FT_READ, HERALD_FT_RECEIPTS,
        HERALD_FT_CONV, HERALD_FT_RECALL, HERALD_FT_DND, HERALD_FT_URGENT, HERALD_FT_DIR,
        HERALD_FT_CONTACT, HERALD_FT_TAG, HERALD_FT_MASS, HERALD_FT_APP, HERALD_FT_TRANSFER,
        HERALD_FT_STATUS, HERALD_FT_ACK /* not a request at all */};
    session s = {0};
    herald_frame *pong;
    rec *r;

    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
        /* Every required key set, so the frame survives the wire. */
        herald_frame f = {.type = types[i], .conv = hs("c"), .seq = 1, .op = hs("send"),
                          .user = hs("u"), .app = hs("x"), .code = 1, .body = hs("b")};
        r = run(x, &s, &f);
        failed_with(r, HERALD_EUNAUTHORIZED);
        assert_string_equal(r->fail_text, "HELLO required first");
        assert_false(s.authed);
    }
    assert_int_equal(x->n_log, 0); /* nothing reached the backend */

    /* PING is answered without a session. */
    {
        herald_frame f = {.type = HERALD_FT_PING, .rid = 4242};
        r = run(x, &s, &f);
        pong = only(r, HERALD_FT_PONG);
        (void)pong;
    }
}

/* ==== SEND ======================================================================= */

static void test_send(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *ack;
    uint64_t t0 = session_now_ms();
    uint32_t grp = route_conv_group(hs(TEN), hs("room"), NG, NULL);
    rec *r;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b"));
    x->n_log = 0;

    r = send_msg(x, &p.a, "room", "m1", "hello", 0);
    ack = only(r, HERALD_FT_ACK);
    str_is(ack->conv, "room");
    assert_int_equal(ack->seq, 2); /* seq 1 is the create's system message */
    assert_true(ack->ts >= t0);
    assert_false(ack->dup);
    assert_int_equal(x->n_log, 1);
    assert_int_equal(x->log_op[0], CMD_SEND);
    assert_int_equal(x->log_group[0], grp); /* to the conversation's group */
    assert_true(grp >= 1 && grp < NG);

    ack = only(send_msg(x, &p.b, "room", "m2", "hi there", 0), HERALD_FT_ACK);
    assert_int_equal(ack->seq, 3);
    str_is(ack->conv, "room");

    /* The same cmid again from the same sender: the original, dup. */
    ack = only(send_msg(x, &p.a, "room", "m1", "hello again", 0), HERALD_FT_ACK);
    assert_int_equal(ack->seq, 2);
    assert_true(ack->dup);

    /* Nothing answered before the command applied. */
    {
        herald_frame f = {.type = HERALD_FT_SEND, .conv = hs("room"), .cmid = hs("m3"),
                          .body = hs("three")};
        r = call(x, &p.a, &f);
        assert_int_equal(r->n, 0);
        assert_int_equal(r->done, 0);
        assert_int_equal(queued(x), 1);
        assert_int_equal(pump(x), 1);
        finished(r);
        assert_int_equal(only(r, HERALD_FT_ACK)->seq, 4);
    }
}

static void test_send_bad(void **state)
{
    fx *x = *state;
    people p;
    char big[MAX_FRAME];
    const char *text;
    rec *r;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b"));
    x->n_log = 0;

    text = only_error(send_msg(x, &p.a, "bad id!", "m", "x", 0), HERALD_EINVAL);
    assert_string_equal(text, "invalid conversation id");
    only_error(send_msg(x, &p.a, "nosuch", "m", "x", 0), HERALD_ENOT_FOUND);
    only_error(send_msg(x, &p.e1, "room", "m", "x", 0), HERALD_ENOT_MEMBER);
    {
        char cmid[TOKEN_ID_MAX + 2];
        memset(cmid, 'c', sizeof cmid - 1);
        cmid[sizeof cmid - 1] = '\0';
        text = only_error(send_msg(x, &p.a, "room", cmid, "x", 0), HERALD_EINVAL);
        assert_string_equal(text, "cmid longer than 128 bytes");
    }
    /* The largest body whose delivery fits the cap goes; one more byte does not. */
    memset(big, 'b', sizeof big);
    big[MAX_FRAME - HERALD_ENVELOPE_RESERVE + 1] = '\0';
    only_error(send_msg(x, &p.a, "room", "big", big, 0), HERALD_ETOO_BIG);
    big[MAX_FRAME - HERALD_ENVELOPE_RESERVE] = '\0';
    only(send_msg(x, &p.a, "room", "big", big, 0), HERALD_FT_ACK);
    /* Only the NOT_FOUND, NOT_MEMBER and last requests reached the backend. */
    assert_int_equal(x->n_log, 3);

    /* The backend refuses: one ERROR BUSY, done once, nothing stored. */
    x->accept_left = 0;
    r = send_msg(x, &p.a, "room", "m9", "refused", 0);
    text = only_error(r, HERALD_EBUSY);
    assert_non_null(strstr(text, "not applied"));
    assert_int_equal(x->refused, 1);
    x->accept_left = -1;
    {
        herald_frame h = {.type = HERALD_FT_HISTORY, .conv = hs("room"), .after = 1};
        herald_frame *hr = only(run(x, &p.a, &h), HERALD_FT_HISTORY_RESULT);
        assert_int_equal(hr->n_msgs, 1); /* the big one only */
        assert_int_equal(hr->msgs[0].seq, 2);
        assert_int_equal(hr->msgs[0].body.len, MAX_FRAME - HERALD_ENVELOPE_RESERVE);
    }
}

/* ==== HISTORY ===================================================================== */

static void test_history(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *h;
    static const char *const bodies[] = {"one", "two", "three"};

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b"));
    for (int i = 0; i < 3; i++) {
        char cmid[8];
        snprintf(cmid, sizeof cmid, "m%d", i);
        assert_int_equal(sent(x, i == 1 ? &p.b : &p.a, "room", cmid, bodies[i]), (uint64_t)i + 2);
    }
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room")};
        h = only(run(x, &p.b, &f), HERALD_FT_HISTORY_RESULT);
        assert_int_equal(h->n_msgs, 4);
        assert_int_equal(h->msgs[0].seq, 1);
        assert_int_equal(h->msgs[0].kind, HERALD_MK_SYSTEM);
        for (int i = 0; i < 3; i++) {
            assert_int_equal(h->msgs[i + 1].seq, (uint64_t)i + 2);
            assert_int_equal(h->msgs[i + 1].kind, HERALD_MK_TEXT);
            str_is(h->msgs[i + 1].body, bodies[i]);
            str_is(h->msgs[i + 1].from, i == 1 ? "b" : "a");
            str_is(h->msgs[i + 1].conv, "room");
        }
        assert_false(h->more);
    }
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room"), .after = 2, .limit = 1};
        h = only(run(x, &p.a, &f), HERALD_FT_HISTORY_RESULT);
        assert_int_equal(h->n_msgs, 1);
        assert_int_equal(h->msgs[0].seq, 3);
        str_is(h->msgs[0].body, "two");
        assert_true(h->more);
    }
    /* An admin reads any conversation. */
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room"), .after = 3};
        h = only(run(x, &p.boss, &f), HERALD_FT_HISTORY_RESULT);
        assert_int_equal(h->n_msgs, 1);
        str_is(h->msgs[0].body, "three");
    }
    /* Bad: not a member, no such conversation (admin), a bad id. */
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room")};
        only_error(run(x, &p.e1, &f), HERALD_ENOT_MEMBER);
    }
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("nosuch")};
        only_error(run(x, &p.boss, &f), HERALD_ENOT_FOUND);
    }
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("no/slash")};
        assert_string_equal(only_error(run(x, &p.a, &f), HERALD_EINVAL),
                            "invalid conversation id");
    }
    assert_int_equal(queued(x), 0);
}

/* ==== SYNC ========================================================================= */

static void test_sync(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *sr, *w;
    herald_sync_group key[NG];
    uint32_t grp = route_conv_group(hs(TEN), hs("room"), NG, NULL);
    session b2;
    rec *r;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b"));
    sent(x, &p.a, "room", "m1", "one");
    sent(x, &p.a, "room", "m2", "two");

    /* From nothing: everything b has, a key per group. */
    {
        herald_frame f = {.type = HERALD_FT_SYNC};
        sr = only(run(x, &p.b, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 3); /* create + 2 */
        assert_int_equal(sr->msgs[0].seq, 1);
        str_is(sr->msgs[1].body, "one");
        str_is(sr->msgs[2].body, "two");
        assert_int_equal(sr->msgs[2].group, grp);
        assert_int_equal(sr->msgs[2].pos, 3);
        assert_int_equal(sr->n_sync_groups, NG);
        for (uint32_t g = 0; g < NG; g++) {
            assert_int_equal(sr->sync_groups[g].group, g);
            assert_int_equal(sr->sync_groups[g].pos, g == grp ? 3 : 0);
        }
        assert_false(sr->more);
    }
    /* A new session's WELCOME holds the current position; SYNC from it is
     * empty, then has exactly what came after. */
    r = login(x, &b2, "b", false);
    w = only(r, HERALD_FT_WELCOME);
    assert_int_equal(w->n_sync_groups, NG);
    memcpy(key, w->sync_groups, sizeof key);
    assert_int_equal(key[grp].pos, 3);
    {
        herald_frame f = {.type = HERALD_FT_SYNC, .sync_groups = key, .n_sync_groups = NG};
        sr = only(run(x, &b2, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 0);
    }
    sent(x, &p.a, "room", "m3", "three");
    sent(x, &p.a, "room", "m4", "four");
    {
        /* limit 1: one message and more; its key gets the next. */
        herald_frame f = {.type = HERALD_FT_SYNC, .sync_groups = key, .n_sync_groups = NG,
                          .limit = 1};
        sr = only(run(x, &b2, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 1);
        str_is(sr->msgs[0].body, "three");
        assert_true(sr->more);
        assert_int_equal(sr->n_sync_groups, NG);
        memcpy(key, sr->sync_groups, sizeof key);
        f.rid = 0;
        sr = only(run(x, &b2, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 1);
        str_is(sr->msgs[0].body, "four");
        assert_false(sr->flags);
    }
    /* Bad: SYNC before HELLO. */
    {
        session none = {0};
        herald_frame f = {.type = HERALD_FT_SYNC};
        failed_with(run(x, &none, &f), HERALD_EUNAUTHORIZED);
    }
    assert_int_equal(queued(x), 0);
}

/* ==== READ, RECEIPTS ============================================================== */

static void test_read_receipts(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *ok, *rr;
    const char *text;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b", "e1"));
    assert_int_equal(sent(x, &p.a, "room", "m1", "one"), 2);
    assert_int_equal(sent(x, &p.a, "room", "m2", "two"), 3);

    {
        herald_frame f = {.type = HERALD_FT_READ, .conv = hs("room"), .seq = 2};
        ok = only(run(x, &p.b, &f), HERALD_FT_OK);
        assert_int_equal(ok->seq, 2);
        /* The cursor only moves forward: reading 1 afterwards keeps 2. */
        f.rid = 0;
        f.seq = 1;
        ok = only(run(x, &p.b, &f), HERALD_FT_OK);
        assert_int_equal(ok->seq, 2);
    }
    {
        herald_frame f = {.type = HERALD_FT_RECEIPTS, .conv = hs("room"), .seq = 2};
        rr = only(run(x, &p.a, &f), HERALD_FT_RECEIPTS_RESULT);
        str_is(rr->conv, "room");
        assert_int_equal(rr->seq, 2);
        assert_true(strs_has(rr->read, rr->n_read, "b"));
        assert_false(strs_has(rr->read, rr->n_read, "e1"));
        assert_true(strs_has(rr->unread, rr->n_unread, "e1"));
        assert_false(strs_has(rr->unread, rr->n_unread, "b"));
        assert_int_equal(rr->n_read_total, rr->n_read);
        assert_int_equal(rr->n_unread_total, rr->n_unread);
        assert_false(rr->more);
        /* Message 3: b has not read it. */
        f.rid = 0;
        f.seq = 3;
        rr = only(run(x, &p.boss, &f), HERALD_FT_RECEIPTS_RESULT);
        assert_true(strs_has(rr->unread, rr->n_unread, "b"));
        assert_false(strs_has(rr->read, rr->n_read, "b"));
    }
    /* READ bad: beyond the last message, not a member, bad id. */
    {
        herald_frame f = {.type = HERALD_FT_READ, .conv = hs("room"), .seq = 99};
        only_error(run(x, &p.b, &f), HERALD_EINVAL);
        f = (herald_frame){.type = HERALD_FT_READ, .conv = hs("room"), .seq = 1};
        only_error(run(x, &p.e2, &f), HERALD_ENOT_MEMBER);
        f = (herald_frame){.type = HERALD_FT_READ, .conv = hs("sp ace"), .seq = 1};
        only_error(run(x, &p.b, &f), HERALD_EINVAL);
    }
    /* RECEIPTS bad: beyond the last message, not a member, a customer asks,
     * a conversation with a customer in it. */
    {
        herald_frame f = {.type = HERALD_FT_RECEIPTS, .conv = hs("room"), .seq = 99};
        text = only_error(run(x, &p.a, &f), HERALD_EINVAL);
        assert_true(text[0] != '\0');
        f.rid = 0;
        f.seq = 2;
        only_error(run(x, &p.e2, &f), HERALD_ENOT_MEMBER);
        f.rid = 0;
        text = only_error(run(x, &p.c1, &f), HERALD_EFORBIDDEN);
        assert_non_null(strstr(text, "receipts are internal data"));
    }
    conv_create(x, &p.a, "mixed", "customer_group", LIST("c1"));
    assert_int_equal(sent(x, &p.a, "mixed", "m1", "hello customer"), 2);
    {
        herald_frame f = {.type = HERALD_FT_RECEIPTS, .conv = hs("mixed"), .seq = 2};
        text = only_error(run(x, &p.a, &f), HERALD_EFORBIDDEN);
        assert_non_null(strstr(text, "external members"));
    }
}

/* A tenant with receipts switched off: RECEIPTS is FORBIDDEN, READ still works. */
static void test_receipts_off(void **state)
{
    fx *x = *state;
    uint8_t sec[TOKEN_SECRET_LEN];
    char tok[TOKEN_TEXT_MAX];
    session q = {0}, r2 = {0};
    herald_frame f;
    const char *text;

    tenant_create(x, "quiet", sec, CMD_TENANT_NO_RECEIPTS, NULL);
    mint(sec, "quiet", "q", false, 3600, tok, sizeof tok);
    f = (herald_frame){.type = HERALD_FT_HELLO, .token = hs(tok)};
    only(run(x, &q, &f), HERALD_FT_WELCOME);
    mint(sec, "quiet", "r", false, 3600, tok, sizeof tok);
    f = (herald_frame){.type = HERALD_FT_HELLO, .token = hs(tok)};
    only(run(x, &r2, &f), HERALD_FT_WELCOME);
    conv_create(x, &q, "room", "group", LIST("r"));
    assert_int_equal(sent(x, &q, "room", "m1", "x"), 2);
    f = (herald_frame){.type = HERALD_FT_READ, .conv = hs("room"), .seq = 2};
    assert_int_equal(only(run(x, &r2, &f), HERALD_FT_OK)->seq, 2);
    f = (herald_frame){.type = HERALD_FT_RECEIPTS, .conv = hs("room"), .seq = 2};
    text = only_error(run(x, &q, &f), HERALD_EFORBIDDEN);
    assert_non_null(strstr(text, "switched off"));
    /* The same conversation id in tenant acme is another (absent) one. */
    {
        session a;
        login(x, &a, "q", false);
        f = (herald_frame){.type = HERALD_FT_HISTORY, .conv = hs("room")};
        only_error(run(x, &a, &f), HERALD_ENOT_FOUND);
    }
}

/* ==== CONV ========================================================================= */

static void test_conv(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *cr;
    uint32_t grp = route_conv_group(hs(TEN), hs("team"), NG, NULL);
    rec *r;

    cast(x, &p);
    x->n_log = 0;
    r = conv_op(x, &p.a, "create", "team", "group", LIST("b", "e1"));
    cr = only(r, HERALD_FT_CONV_RESULT);
    str_is(cr->conv, "team");
    str_is(cr->kind, "group");
    str_is(cr->owner, "a");
    assert_int_equal(cr->count, 3);
    assert_int_equal(cr->n_members, 3);
    assert_true(strs_has(cr->members, cr->n_members, "a"));
    assert_true(strs_has(cr->members, cr->n_members, "b"));
    assert_true(strs_has(cr->members, cr->n_members, "e1"));
    assert_int_equal(cr->seq, 1);
    assert_int_equal(cr->cap, CONV_CAP_GROUP_DEFAULT);
    assert_int_equal(cr->group, grp);
    assert_int_equal(cr->leader, 0);
    assert_true(cr->ts > 0);
    assert_int_equal(x->n_log, 1);
    assert_int_equal(x->log_op[0], CMD_CONV_CREATE);
    assert_int_equal(x->log_group[0], grp);

    /* add */
    cr = only(conv_op(x, &p.a, "add", "team", NULL, LIST("e2")), HERALD_FT_CONV_RESULT);
    assert_int_equal(cr->count, 4);
    assert_true(strs_has(cr->members, cr->n_members, "e2"));
    assert_int_equal(cr->seq, 2);
    /* remove */
    cr = only(conv_op(x, &p.a, "remove", "team", NULL, LIST("b")), HERALD_FT_CONV_RESULT);
    assert_int_equal(cr->count, 3);
    assert_false(strs_has(cr->members, cr->n_members, "b"));
    /* info: a member, and an admin who is none */
    cr = only(conv_op(x, &p.e1, "info", "team", NULL, NULL), HERALD_FT_CONV_RESULT);
    assert_int_equal(cr->count, 3);
    str_is(cr->owner, "a");
    assert_int_equal(cr->seq, 3);
    only(conv_op(x, &p.boss, "info", "team", NULL, NULL), HERALD_FT_CONV_RESULT);
    /* A member who leaves still gets the result (no member check after it). */
    cr = only(conv_op(x, &p.e1, "remove", "team", NULL, LIST("e1")), HERALD_FT_CONV_RESULT);
    assert_false(strs_has(cr->members, cr->n_members, "e1"));

    /* create without an id: the service picks one. */
    cr = only(conv_op(x, &p.a, "create", NULL, "group", LIST("b")), HERALD_FT_CONV_RESULT);
    assert_int_equal(cr->conv.len, 16);
    /* single */
    cr = only(conv_op(x, &p.a, "create", "ab", "single", LIST("a", "b")), HERALD_FT_CONV_RESULT);
    str_is(cr->kind, "single");
    assert_int_equal(cr->count, 2);
}

static void test_conv_bad(void **state)
{
    fx *x = *state;
    people p;
    const char *text;

    cast(x, &p);
    conv_create(x, &p.a, "team", "group", LIST("b"));
    x->n_log = 0;
    /* Checked before anything is submitted. */
    text = only_error(conv_op(x, &p.a, "frob", "team", NULL, NULL), HERALD_EINVAL);
    assert_string_equal(text, "op must be create, add, remove, info or list");
    text = only_error(conv_op(x, &p.a, "create", "t2", NULL, LIST("b")), HERALD_EINVAL);
    assert_non_null(strstr(text, "kind required"));
    text = only_error(conv_op(x, &p.a, "create", "ec-mine", "group", LIST("b")), HERALD_EINVAL);
    assert_non_null(strstr(text, "reserved"));
    only_error(conv_op(x, &p.a, "add", "ap-x", NULL, LIST("b")), HERALD_EINVAL);
    text = only_error(conv_op(x, &p.a, "add", "team", NULL, NULL), HERALD_EINVAL);
    assert_string_equal(text, "members required");
    text = only_error(conv_op(x, &p.a, "create", "t3", "group", LIST("b", "bad member")),
                      HERALD_EINVAL);
    assert_string_equal(text, "invalid member id");
    only_error(conv_op(x, &p.a, "info", "bad id", NULL, NULL), HERALD_EINVAL);
    /* Refused by authorization: a customer adding, an app creating. */
    text = only_error(conv_op(x, &p.c1, "add", "team", NULL, LIST("e1")), HERALD_EFORBIDDEN);
    assert_non_null(strstr(text, "role external"));
    {
        session app;
        login(x, &app, "app:bot", false);
        only_error(conv_op(x, &app, "create", "t4", "group", LIST("b")), HERALD_EFORBIDDEN);
    }
    /* A customer may create a conversation with customers only. */
    only_error(conv_op(x, &p.c1, "create", "t5", "group", LIST("e1")), HERALD_EFORBIDDEN);
    assert_int_equal(x->n_log, 0);
    /* Info: not a member, no such conversation. */
    only_error(conv_op(x, &p.e1, "info", "team", NULL, NULL), HERALD_ENOT_MEMBER);
    only_error(conv_op(x, &p.a, "info", "nosuch", NULL, NULL), HERALD_ENOT_FOUND);
    assert_int_equal(x->n_log, 0);
    /* Refused by the state machine: EXISTS, not the owner, bad kind, a
     * single with three members, no such conversation. */
    only_error(conv_op(x, &p.a, "create", "team", "group", LIST("b")), HERALD_EEXISTS);
    only_error(conv_op(x, &p.b, "add", "team", NULL, LIST("e1")), HERALD_EFORBIDDEN);
    only_error(conv_op(x, &p.a, "create", "t6", "party", LIST("b")), HERALD_EINVAL);
    only_error(conv_op(x, &p.a, "create", "t7", "single", LIST("b", "e1")), HERALD_EINVAL);
    only_error(conv_op(x, &p.a, "add", "nosuch", NULL, LIST("e1")), HERALD_ENOT_FOUND);
    assert_int_equal(x->n_log, 5);
}

/* ==== RECALL ======================================================================== */

static void test_recall(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *ok, *h;
    const char *text;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b", "e1"));
    assert_int_equal(sent(x, &p.b, "room", "m1", "oops"), 2);
    assert_int_equal(sent(x, &p.b, "room", "m2", "keep"), 3);
    {
        herald_frame f = {.type = HERALD_FT_RECALL, .conv = hs("room"), .seq = 2};
        /* Not the sender, not the owner: FORBIDDEN. */
        text = only_error(run(x, &p.e1, &f), HERALD_EFORBIDDEN);
        assert_non_null(strstr(text, "recall"));
        /* The sender: OK with the system message's seq. */
        f.rid = 0;
        ok = only(run(x, &p.b, &f), HERALD_FT_OK);
        assert_int_equal(ok->seq, 4);
        /* Again: a tombstone already, nothing to announce. */
        f.rid = 0;
        ok = only(run(x, &p.b, &f), HERALD_FT_OK);
        assert_int_equal(ok->seq, 0);
        /* The owner recalls someone else's. */
        f.rid = 0;
        f.seq = 3;
        ok = only(run(x, &p.a, &f), HERALD_FT_OK);
        assert_int_equal(ok->seq, 5);
    }
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room"), .after = 1};
        h = only(run(x, &p.e1, &f), HERALD_FT_HISTORY_RESULT);
        assert_int_equal(h->n_msgs, 4);
        assert_true(h->msgs[0].flags & HERALD_MSGF_RECALLED);
        assert_int_equal(h->msgs[0].body.len, 0);
        assert_int_equal(h->msgs[2].kind, HERALD_MK_SYSTEM);
        assert_non_null(memmem(h->msgs[2].body.ptr, h->msgs[2].body.len, "recall", 6));
    }
    /* Bad: no such message, a system message, not a member, bad id. */
    {
        herald_frame f = {.type = HERALD_FT_RECALL, .conv = hs("room"), .seq = 99};
        only_error(run(x, &p.a, &f), HERALD_ENOT_FOUND);
        f = (herald_frame){.type = HERALD_FT_RECALL, .conv = hs("room"), .seq = 1};
        only_error(run(x, &p.a, &f), HERALD_EINVAL);
        f = (herald_frame){.type = HERALD_FT_RECALL, .conv = hs("room"), .seq = 2};
        only_error(run(x, &p.e2, &f), HERALD_ENOT_MEMBER);
        f = (herald_frame){.type = HERALD_FT_RECALL, .conv = hs("ro om"), .seq = 2};
        only_error(run(x, &p.a, &f), HERALD_EINVAL);
        f = (herald_frame){.type = HERALD_FT_RECALL, .conv = hs("nosuch"), .seq = 2};
        only_error(run(x, &p.a, &f), HERALD_ENOT_FOUND);
    }
}

/* ==== DND =========================================================================== */

static void test_dnd(void **state)
{
    fx *x = *state;
    session a, a2;
    herald_frame *ok, *w;
    uint64_t until = session_now_ms() + 3600 * 1000;
    const char *text;
    rec *r;

    login(x, &a, "a", false);
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("status")};
        ok = only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(ok->flags, 0);
        assert_int_equal(ok->ts, 0);
    }
    x->n_log = 0;
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("on"), .ts = until};
        ok = only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(ok->flags, 1);
        assert_int_equal(ok->ts, until);
        assert_int_equal(a.dnd_until, until);
        assert_int_equal(x->n_log, 1);
        assert_int_equal(x->log_op[0], CMD_DND);
        assert_int_equal(x->log_group[0], 0); /* user state: the meta group */
    }
    {
        uint64_t stored = 0;
        assert_int_equal(store_dnd_get(x->st[0], hs(TEN), hs("a"), &stored), 0);
        assert_int_equal(stored, until);
    }
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("status")};
        ok = only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(ok->flags, 1);
        assert_int_equal(ok->ts, until);
    }
    /* A new session of the user starts in DND; its SYNC marks messages silent
     * (urgent ones excepted). */
    r = login(x, &a2, "a", false);
    assert_int_equal(a2.dnd_until, until);
    w = only(r, HERALD_FT_WELCOME);
    (void)w;
    {
        session b;
        login(x, &b, "b", false);
        conv_create(x, &b, "room", "group", LIST("a"));
        sent(x, &b, "room", "m1", "quiet");
        only(send_msg(x, &b, "room", "m2", "loud", HERALD_MSGF_URGENT), HERALD_FT_ACK);
        herald_frame f = {.type = HERALD_FT_SYNC};
        herald_frame *sr = only(run(x, &a2, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 3);
        assert_true(sr->msgs[1].flags & HERALD_MSGF_SILENT);
        assert_false(sr->msgs[2].flags & HERALD_MSGF_SILENT);
        assert_true(sr->msgs[2].flags & HERALD_MSGF_URGENT);
    }
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("off")};
        ok = only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(ok->flags, 0);
        assert_int_equal(ok->ts, 0);
        assert_int_equal(a.dnd_until, 0);
        f = (herald_frame){.type = HERALD_FT_DND, .op = hs("status")};
        ok = only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(ok->flags, 0);
    }
    /* on without an end: until turned off (the OK says UINT64_MAX). */
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("on")};
        ok = only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(ok->flags, 1);
        assert_int_equal(ok->ts, UINT64_MAX);
        assert_int_equal(a.dnd_until, UINT64_MAX);
        f = (herald_frame){.type = HERALD_FT_DND, .op = hs("off")};
        only(run(x, &a, &f), HERALD_FT_OK);
        assert_int_equal(a.dnd_until, 0);
    }
    /* Bad: an unknown op, an end in the past, a refused submit. */
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("maybe")};
        text = only_error(run(x, &a, &f), HERALD_EINVAL);
        assert_string_equal(text, "op must be on, off or status");
        f = (herald_frame){.type = HERALD_FT_DND, .op = hs("on"), .ts = 1000};
        text = only_error(run(x, &a, &f), HERALD_EINVAL);
        assert_non_null(strstr(text, "past"));
        assert_int_equal(a.dnd_until, 0);
        x->accept_left = 0;
        f = (herald_frame){.type = HERALD_FT_DND, .op = hs("on"), .ts = until};
        only_error(run(x, &a, &f), HERALD_EBUSY);
        assert_int_equal(a.dnd_until, 0);
        x->accept_left = -1;
    }
}

/* ==== URGENT ========================================================================= */

static void test_urgent(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *u, *ok;
    uint64_t seq;
    const char *text;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b", "e1"));
    seq = only(send_msg(x, &p.a, "room", "ding", "come now", HERALD_MSGF_URGENT), HERALD_FT_ACK)->seq;
    assert_int_equal(sent(x, &p.a, "room", "plain", "not urgent"), seq + 1);
    {
        herald_frame f = {.type = HERALD_FT_URGENT, .op = hs("status"), .conv = hs("room"),
                          .seq = seq};
        u = only(run(x, &p.a, &f), HERALD_FT_URGENT_RESULT);
        str_is(u->conv, "room");
        assert_int_equal(u->seq, seq);
        assert_int_equal(u->n_read, 0);
        assert_true(strs_has(u->unread, u->n_unread, "b"));
        assert_true(strs_has(u->unread, u->n_unread, "e1"));
        assert_false(strs_has(u->unread, u->n_unread, "a"));
    }
    {
        herald_frame f = {.type = HERALD_FT_URGENT, .op = hs("confirm"), .conv = hs("room"),
                          .seq = seq};
        ok = only(run(x, &p.b, &f), HERALD_FT_OK);
        assert_int_equal(ok->seq, seq);
        f.rid = 0;
        ok = only(run(x, &p.b, &f), HERALD_FT_OK); /* again: fine */
        assert_int_equal(ok->seq, seq);
    }
    {
        herald_frame f = {.type = HERALD_FT_URGENT, .op = hs("status"), .conv = hs("room"),
                          .seq = seq};
        u = only(run(x, &p.e1, &f), HERALD_FT_URGENT_RESULT);
        strs_are(u->read, u->n_read, LIST("b"));
        strs_are(u->unread, u->n_unread, LIST("e1"));
    }
    /* HISTORY tells the reader it confirmed. */
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room"), .after = seq - 1,
                          .limit = 1};
        herald_frame *h = only(run(x, &p.b, &f), HERALD_FT_HISTORY_RESULT);
        assert_true(h->msgs[0].flags & HERALD_MSGF_CONFIRMED);
        f.rid = 0;
        h = only(run(x, &p.e1, &f), HERALD_FT_HISTORY_RESULT);
        assert_false(h->msgs[0].flags & HERALD_MSGF_CONFIRMED);
    }
    /* Bad: not an urgent message (confirm, status), a customer asks for the
     * status, a non-member, an unknown op, a bad id. */
    {
        herald_frame f = {.type = HERALD_FT_URGENT, .op = hs("confirm"), .conv = hs("room"),
                          .seq = seq + 1};
        only_error(run(x, &p.b, &f), HERALD_ENOT_FOUND);
        f = (herald_frame){.type = HERALD_FT_URGENT, .op = hs("status"), .conv = hs("room"),
                           .seq = seq + 1};
        only_error(run(x, &p.a, &f), HERALD_ENOT_FOUND);
        f.rid = 0;
        text = only_error(run(x, &p.c1, &f), HERALD_EFORBIDDEN);
        assert_non_null(strstr(text, "internal data"));
        f = (herald_frame){.type = HERALD_FT_URGENT, .op = hs("status"), .conv = hs("room"),
                           .seq = seq};
        only_error(run(x, &p.e2, &f), HERALD_ENOT_MEMBER);
        f = (herald_frame){.type = HERALD_FT_URGENT, .op = hs("nag"), .conv = hs("room"),
                           .seq = seq};
        text = only_error(run(x, &p.a, &f), HERALD_EINVAL);
        assert_string_equal(text, "op must be confirm or status");
        f = (herald_frame){.type = HERALD_FT_URGENT, .op = hs("confirm"), .conv = hs("r!"),
                           .seq = seq};
        only_error(run(x, &p.b, &f), HERALD_EINVAL);
    }
}

/* ==== DIR ============================================================================ */

static void test_dir(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *d;
    const char *text;

    cast(x, &p);
    x->n_log = 0;
    {
        herald_frame f = {.type = HERALD_FT_DIR, .op = hs("dept.add"), .dept = hs("eng"),
                          .name = hs("Engineering")};
        d = only(run(x, &p.boss, &f), HERALD_FT_DIR_RESULT);
        str_is(d->dept, "eng");
        str_is(d->name, "Engineering");
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("dept.add"), .dept = hs("eng.be"),
                           .name = hs("Backend"), .parent = hs("eng")};
        d = only(run(x, &p.boss, &f), HERALD_FT_DIR_RESULT);
        str_is(d->parent, "eng");
        assert_int_equal(x->log_group[0], 0);
        assert_int_equal(x->log_op[0], CMD_DIR_DEPT);
    }
    d = only(dir_user_add(x, &p.boss, "e1", "internal", "Eve One", "Engineer", "eng.be"),
             HERALD_FT_DIR_RESULT);
    str_is(d->user, "e1");
    str_is(d->kind, "internal");
    str_is(d->name, "Eve One");
    str_is(d->title, "Engineer");
    str_is(d->dept, "eng.be");
    str_is(d->corp, "Acme Corp");
    {
        herald_frame f = {.type = HERALD_FT_DIR, .op = hs("user.show"), .user = hs("e1")};
        d = only(run(x, &p.a, &f), HERALD_FT_DIR_RESULT);
        str_is(d->name, "Eve One");
        str_is(d->dept, "eng.be");
        /* Someone not in the directory: internal, named by the id. */
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("user.show"), .user = hs("zed")};
        d = only(run(x, &p.a, &f), HERALD_FT_DIR_RESULT);
        str_is(d->kind, "internal");
        str_is(d->name, "zed");
        /* A customer sees its own card, without a department or corp. */
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("user.show"), .user = hs("c1")};
        d = only(run(x, &p.c1, &f), HERALD_FT_DIR_RESULT);
        str_is(d->kind, "external");
        str_is(d->corp, NULL);
        str_is(d->dept, NULL);
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("dept.show"), .dept = hs("eng.be")};
        d = only(run(x, &p.e2, &f), HERALD_FT_DIR_RESULT);
        str_is(d->name, "Backend");
        str_is(d->parent, "eng");
    }
    /* Bad. */
    text = only_error(dir_user_add(x, &p.a, "e3", "internal", NULL, NULL, NULL), HERALD_EFORBIDDEN);
    assert_non_null(strstr(text, "admin role"));
    only_error(dir_user_add(x, &p.boss, "e 3", "internal", NULL, NULL, NULL), HERALD_EINVAL);
    only_error(dir_user_add(x, &p.boss, "e3", "martian", NULL, NULL, NULL), HERALD_EINVAL);
    {
        herald_frame f = {.type = HERALD_FT_DIR, .op = hs("dept.show"), .dept = hs("nosuch")};
        text = only_error(run(x, &p.a, &f), HERALD_ENOT_FOUND);
        assert_string_equal(text, "no such department");
        f.rid = 0;
        only_error(run(x, &p.c1, &f), HERALD_EFORBIDDEN);
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("user.show"), .user = hs("e2")};
        only_error(run(x, &p.c1, &f), HERALD_EFORBIDDEN); /* not its owner */
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("dept.add"), .dept = hs("ops"),
                           .parent = hs("nosuch")};
        only_error(run(x, &p.boss, &f), HERALD_ENOT_FOUND);
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("user.del"), .user = hs("e1")};
        text = only_error(run(x, &p.boss, &f), HERALD_EINVAL);
        assert_non_null(strstr(text, "op must be"));
        f = (herald_frame){.type = HERALD_FT_DIR, .op = hs("user.show")};
        text = only_error(run(x, &p.a, &f), HERALD_EINVAL);
        assert_string_equal(text, "invalid user id");
    }
}

/* ==== CONTACT ======================================================================== */

static void test_contact(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *c;
    char conv[64];
    const char *text;

    cast(x, &p);
    x->n_log = 0;
    c = only(contact_add(x, &p.boss, "e1", "c1"), HERALD_FT_CONTACT_RESULT);
    assert_int_equal(c->conv.len, 19);
    assert_int_equal(memcmp(c->conv.ptr, "ec-", 3), 0);
    snprintf(conv, sizeof conv, "%.*s", (int)c->conv.len, c->conv.ptr);
    /* Two steps: the 1:1 conversation in its shard, then the contact with the tenants. */
    assert_int_equal(x->n_log, 2);
    assert_int_equal(x->log_op[0], CMD_CONV_CREATE);
    assert_int_equal(x->log_group[0], route_conv_group(hs(TEN), hs(conv), NG, NULL));
    assert_int_equal(x->log_op[1], CMD_CONTACT_ADD);
    assert_int_equal(x->log_group[1], 0);
    /* Again: the same conversation, nothing submitted. */
    c = only(contact_add(x, &p.boss, "e1", "c1"), HERALD_FT_CONTACT_RESULT);
    str_is(c->conv, conv);
    assert_int_equal(x->n_log, 2);
    /* The employee and the customer are in it. */
    assert_int_equal(sent(x, &p.e1, conv, "m1", "hello c1"), 2);
    assert_int_equal(sent(x, &p.c1, conv, "m2", "hello e1"), 3);
    /* list: by an employee, and by the customer itself. */
    only(contact_add(x, &p.boss, "e2", "c1"), HERALD_FT_CONTACT_RESULT);
    {
        herald_frame f = {.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("c1")};
        c = only(run(x, &p.a, &f), HERALD_FT_CONTACT_RESULT);
        strs_are(c->members, c->n_members, LIST("e1", "e2"));
        f.rid = 0;
        c = only(run(x, &p.c1, &f), HERALD_FT_CONTACT_RESULT);
        assert_int_equal(c->n_members, 2);
        f = (herald_frame){.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("nobody")};
        c = only(run(x, &p.a, &f), HERALD_FT_CONTACT_RESULT);
        assert_int_equal(c->n_members, 0);
    }
    /* Bad. */
    x->n_log = 0;
    text = only_error(contact_add(x, &p.boss, "e1", "e2"), HERALD_EINVAL);
    assert_non_null(strstr(text, "external user"));
    text = only_error(contact_add(x, &p.boss, "c1", "c1"), HERALD_EINVAL);
    assert_non_null(strstr(text, "employee"));
    only_error(contact_add(x, &p.boss, "e1", "c 1"), HERALD_EINVAL);
    only_error(contact_add(x, &p.boss, "e!", "c1"), HERALD_EINVAL);
    text = only_error(contact_add(x, &p.e1, "e1", "c1"), HERALD_EFORBIDDEN);
    assert_non_null(strstr(text, "admin"));
    {
        herald_frame f = {.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("c2")};
        only_error(run(x, &p.c1, &f), HERALD_EFORBIDDEN); /* someone else's */
        f = (herald_frame){.type = HERALD_FT_CONTACT, .op = hs("drop"), .conv = hs("c1")};
        text = only_error(run(x, &p.boss, &f), HERALD_EINVAL);
        assert_string_equal(text, "op must be add or list");
    }
    assert_int_equal(x->n_log, 0);
}

/* ==== TAG ============================================================================ */

static void test_tag(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *t;
    const char *text;

    cast(x, &p);
    t = only(tag_op(x, &p.boss, "add", "c1", LIST("vip", "gold")), HERALD_FT_TAG_RESULT);
    str_is(t->user, "c1");
    strs_are(t->members, t->n_members, LIST("gold", "vip"));
    t = only(tag_op(x, &p.a, "list", "c1", NULL), HERALD_FT_TAG_RESULT);
    strs_are(t->members, t->n_members, LIST("gold", "vip"));
    t = only(tag_op(x, &p.boss, "remove", "c1", LIST("vip")), HERALD_FT_TAG_RESULT);
    strs_are(t->members, t->n_members, LIST("gold"));
    t = only(tag_op(x, &p.boss, "list", "nobody", NULL), HERALD_FT_TAG_RESULT);
    assert_int_equal(t->n_members, 0);
    /* Bad. */
    text = only_error(tag_op(x, &p.boss, "add", "e1", LIST("vip")), HERALD_EINVAL);
    assert_non_null(strstr(text, "external users"));
    only_error(tag_op(x, &p.boss, "add", "zed", LIST("vip")), HERALD_EINVAL);
    only_error(tag_op(x, &p.boss, "add", "c 1", LIST("vip")), HERALD_EINVAL);
    only_error(tag_op(x, &p.boss, "add", "c1", LIST("bad tag")), HERALD_EINVAL);
    only_error(tag_op(x, &p.a, "add", "c1", LIST("vip")), HERALD_EFORBIDDEN);
    only_error(tag_op(x, &p.a, "remove", "c1", LIST("gold")), HERALD_EFORBIDDEN);
    text = only_error(tag_op(x, &p.c1, "list", "c1", NULL), HERALD_EFORBIDDEN);
    assert_non_null(strstr(text, "internal"));
    text = only_error(tag_op(x, &p.boss, "swap", "c1", NULL), HERALD_EINVAL);
    assert_string_equal(text, "op must be add, remove or list");
    t = only(tag_op(x, &p.a, "list", "c1", NULL), HERALD_FT_TAG_RESULT);
    strs_are(t->members, t->n_members, LIST("gold"));
}

/* ==== MASS =========================================================================== */

/* c1 owned by e1, c2 owned by e2 (both tagged vip), c3 tagged vip with no owner. */
static void mass_cast(fx *x, people *p)
{
    cast(x, p);
    dir_user(x, &p->boss, "c2", "external");
    dir_user(x, &p->boss, "c3", "external");
    login(x, &p->c2, "c2", false);
    only(contact_add(x, &p->boss, "e1", "c1"), HERALD_FT_CONTACT_RESULT);
    only(contact_add(x, &p->boss, "e2", "c2"), HERALD_FT_CONTACT_RESULT);
    only(tag_op(x, &p->boss, "add", "c1", LIST("vip")), HERALD_FT_TAG_RESULT);
    only(tag_op(x, &p->boss, "add", "c2", LIST("vip", "gold")), HERALD_FT_TAG_RESULT);
    only(tag_op(x, &p->boss, "add", "c3", LIST("vip")), HERALD_FT_TAG_RESULT);
}

static rec *mass_send(fx *x, session *s, const char *id, const char *const *tags,
                      const char *body)
{
    herald_str mv[8];
    uint32_t n = 0;
    herald_frame f = {.type = HERALD_FT_MASS, .op = hs("send"), .conv = hs(id), .body = hs(body)};
    for (; tags && tags[n]; n++)
        mv[n] = hs(tags[n]);
    f.members = n ? mv : NULL;
    f.n_members = n;
    return run(x, s, &f);
}

static void test_mass(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *m;
    const char *text;

    mass_cast(x, &p);
    x->n_log = 0;
    m = only(mass_send(x, &p.boss, "promo1", LIST("vip", "nobody"), "sale!"),
             HERALD_FT_MASS_RESULT);
    str_is(m->conv, "promo1");
    strs_are(m->read, m->n_read, LIST("c1", "c2"));    /* reached */
    assert_int_equal(m->n_unread, 0);                  /* limited */
    strs_are(m->members, m->n_members, LIST("c3"));    /* no owner */
    assert_int_equal(m->count, 2);
    strs_are(m->bad_tags, m->n_bad_tags, LIST("nobody"));
    /* MASS_MARK (meta), then one SEND per reached customer in its group. */
    assert_int_equal(x->log_op[0], CMD_MASS_MARK);
    assert_int_equal(x->log_group[0], 0);
    assert_int_equal(x->log_op[1], CMD_SEND);
    assert_int_equal(x->log_op[2], CMD_SEND);
    /* The customer got it from its owner. */
    {
        herald_frame f = {.type = HERALD_FT_SYNC};
        herald_frame *sr = only(run(x, &p.c1, &f), HERALD_FT_SYNC_RESULT);
        assert_true(sr->n_msgs >= 1);
        str_is(sr->msgs[sr->n_msgs - 1].body, "sale!");
        str_is(sr->msgs[sr->n_msgs - 1].from, "e1");
    }
    /* status */
    {
        herald_frame f = {.type = HERALD_FT_MASS, .op = hs("status"), .conv = hs("promo1")};
        m = only(run(x, &p.boss, &f), HERALD_FT_MASS_RESULT);
        str_is(m->conv, "promo1");
        strs_are(m->read, m->n_read, LIST("c1", "c2"));
        strs_are(m->members, m->n_members, LIST("c3"));
    }
    /* Another one the same day: limited. */
    m = only(mass_send(x, &p.boss, "promo2", LIST("gold"), "again"), HERALD_FT_MASS_RESULT);
    assert_int_equal(m->n_read, 0);
    strs_are(m->unread, m->n_unread, LIST("c2"));
    assert_int_equal(m->count, 0);
    /* Without an id: one is made. */
    m = only(mass_send(x, &p.boss, NULL, LIST("vip"), "x"), HERALD_FT_MASS_RESULT);
    assert_int_equal(memcmp(m->conv.ptr, "mass-", 5), 0);

    /* Bad. */
    x->n_log = 0;
    text = only_error(mass_send(x, &p.boss, "p3", NULL, "x"), HERALD_EINVAL);
    assert_string_equal(text, "1 to 100 tags and a text are required");
    only_error(mass_send(x, &p.boss, "p3", LIST("vip"), NULL), HERALD_EINVAL);
    text = only_error(mass_send(x, &p.boss, "p3", LIST("nobody", "bad tag"), "x"), HERALD_EINVAL);
    assert_string_equal(text, "no customer carries any of the tags: nobody,bad tag");
    text = only_error(mass_send(x, &p.boss, "p 3", LIST("vip"), "x"), HERALD_EINVAL);
    assert_string_equal(text, "invalid mass message id");
    only_error(mass_send(x, &p.e1, "p3", LIST("vip"), "x"), HERALD_EFORBIDDEN);
    {
        herald_frame f = {.type = HERALD_FT_MASS, .op = hs("status"), .conv = hs("nosuch")};
        text = only_error(run(x, &p.boss, &f), HERALD_ENOT_FOUND);
        assert_string_equal(text, "no such mass message");
        f = (herald_frame){.type = HERALD_FT_MASS, .op = hs("status")};
        only_error(run(x, &p.boss, &f), HERALD_EINVAL);
        f = (herald_frame){.type = HERALD_FT_MASS, .op = hs("status"), .conv = hs("promo1")};
        only_error(run(x, &p.e1, &f), HERALD_EFORBIDDEN);
        f = (herald_frame){.type = HERALD_FT_MASS, .op = hs("cancel"), .conv = hs("promo1")};
        text = only_error(run(x, &p.boss, &f), HERALD_EINVAL);
        assert_string_equal(text, "op must be send or status");
    }
    assert_int_equal(x->n_log, 0);
}

/* ==== APP ============================================================================ */

static rec *app_req(fx *x, session *s, const char *op, const char *app, const char *cmid,
                    const char *const *users, const char *body)
{
    herald_str mv[8];
    uint32_t n = 0;
    herald_frame f = {.type = HERALD_FT_APP, .op = hs(op), .app = hs(app), .cmid = hs(cmid),
                      .body = hs(body)};
    for (; users && users[n]; n++)
        mv[n] = hs(users[n]);
    f.members = n ? mv : NULL;
    f.n_members = n;
    return run(x, s, &f);
}

static void test_app(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *a;
    char conv[64];
    const char *text;

    cast(x, &p);
    x->n_log = 0;
    a = only(app_req(x, &p.boss, "send", "crm", "n1", LIST("e1", "e2", "ghost"), "report ready"),
             HERALD_FT_APP_RESULT);
    str_is(a->app, "crm");
    str_is(a->cmid, "n1");
    assert_false(a->dup);
    assert_int_equal(a->count, 2);
    strs_are(a->members, a->n_members, LIST("e1", "e2"));
    strs_are(a->bad_users, a->n_bad_users, LIST("ghost"));
    assert_int_equal(a->n_limited, 0);
    assert_int_equal(a->n_unreached, 0);
    str_is(a->conv, NULL);
    assert_int_equal(x->log_op[0], CMD_APP_MARK);
    assert_int_equal(x->log_group[0], 0);
    assert_int_equal(x->log_op[1], CMD_APP_DELIVER);
    assert_int_equal(x->log_op[2], CMD_APP_DELIVER);
    assert_int_equal(x->n_log, 3);
    {
        herald_frame f = {.type = HERALD_FT_SYNC};
        herald_frame *sr = only(run(x, &p.e2, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 1);
        str_is(sr->msgs[0].from, "app:crm");
        str_is(sr->msgs[0].body, "report ready");
    }
    /* The same id again: a duplicate, nothing delivered twice. */
    a = only(app_req(x, &p.boss, "send", "crm", "n1", LIST("e1", "e2"), "report ready"),
             HERALD_FT_APP_RESULT);
    assert_true(a->dup);
    {
        herald_frame f = {.type = HERALD_FT_SYNC};
        herald_frame *sr = only(run(x, &p.e2, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(sr->n_msgs, 1);
    }
    /* announce: one read-diffused conversation. */
    a = only(app_req(x, &p.boss, "announce", "hr", "a1", LIST("e1", "e2"), "holiday"),
             HERALD_FT_APP_RESULT);
    assert_int_equal(a->count, 1);
    strs_are(a->members, a->n_members, LIST("e1", "e2"));
    assert_true(a->conv.len > 3);
    assert_int_equal(memcmp(a->conv.ptr, "an-", 3), 0);
    snprintf(conv, sizeof conv, "%.*s", (int)a->conv.len, a->conv.ptr);
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs(conv)};
        herald_frame *h = only(run(x, &p.e1, &f), HERALD_FT_HISTORY_RESULT);
        str_is(h->msgs[h->n_msgs - 1].body, "holiday");
        /* A member cannot post in it. */
        only_error(send_msg(x, &p.e1, conv, "r", "reply", 0), HERALD_EFORBIDDEN);
    }
    /* Bad. */
    x->n_log = 0;
    text = only_error(app_req(x, &p.boss, "shout", "crm", NULL, LIST("e1"), "x"), HERALD_EINVAL);
    assert_string_equal(text, "op must be send, announce, create, list, login, user_token, "
                              "callback, events or redeliver");
    text = only_error(app_req(x, &p.boss, "send", "c rm", NULL, LIST("e1"), "x"), HERALD_EINVAL);
    assert_non_null(strstr(text, "invalid app id"));
    text = only_error(app_req(x, &p.boss, "send", "crm", NULL, LIST("e1"), NULL), HERALD_EINVAL);
    assert_string_equal(text, "a text is required");
    only_error(app_req(x, &p.boss, "send", "crm", "bad id", LIST("e1"), "x"), HERALD_EINVAL);
    {
        herald_str m = hs("e1");
        herald_frame f = {.type = HERALD_FT_APP, .op = hs("send"), .app = hs("crm"),
                          .body = hs("x"), .members = &m, .n_members = 1,
                          .window = APP_DEDUP_MAX + 1};
        text = only_error(run(x, &p.boss, &f), HERALD_EINVAL);
        assert_non_null(strstr(text, "window"));
    }
    only_error(app_req(x, &p.e1, "send", "crm", NULL, LIST("e2"), "x"), HERALD_EFORBIDDEN);
    only_error(app_req(x, &p.e1, "announce", "crm", NULL, LIST("e2"), "x"), HERALD_EFORBIDDEN);
    assert_int_equal(x->n_log, 0);
    /* Nobody valid: INVAL after the decision. */
    text = only_error(app_req(x, &p.boss, "send", "crm", "n9", LIST("ghost", "zed"), "x"),
                      HERALD_EINVAL);
    assert_non_null(strstr(text, "no valid recipient"));
    assert_int_equal(x->n_log, 1); /* APP_MARK only */
}

/* ==== TRANSFER ======================================================================= */

static rec *xfer(fx *x, session *s, const char *from, const char *to, const char *const *cust,
                 const char *const *groups, uint32_t flags)
{
    herald_str mv[8], gv[8];
    uint32_t n = 0, ng = 0;
    herald_frame f = {.type = HERALD_FT_TRANSFER, .op = hs("start"), .user = hs(from),
                      .owner = hs(to), .flags = flags};
    for (; cust && cust[n]; n++)
        mv[n] = hs(cust[n]);
    for (; groups && groups[ng]; ng++)
        gv[ng] = hs(groups[ng]);
    f.members = n ? mv : NULL;
    f.n_members = n;
    f.groups = ng ? gv : NULL;
    f.n_groups = ng;
    return run(x, s, &f);
}

static void test_transfer(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *t;
    uint64_t t0 = session_now_ms();
    const char *text;

    mass_cast(x, &p); /* c1 ← e1, c2 ← e2 */
    x->n_log = 0;
    /* In service: waiting, the customer may object. */
    t = only(xfer(x, &p.boss, "e1", "e2", LIST("c1"), NULL, 0), HERALD_FT_TRANSFER_RESULT);
    assert_int_equal(t->count, 1);
    strs_are(t->members, t->n_members, LIST("c1"));
    strs_are(t->statuses, t->n_statuses, LIST("waiting"));
    strs_are(t->reasons, t->n_reasons, LIST("customer_may_object"));
    assert_int_equal(t->n_texts, 1);
    assert_int_equal(t->n_times, 1);
    assert_true(t->times[0] > t0);
    assert_int_equal(x->n_log, 1);
    assert_int_equal(x->log_op[0], CMD_TRANSFER_MARK);
    assert_int_equal(x->log_group[0], 0);
    /* The customer objects. */
    {
        herald_frame f = {.type = HERALD_FT_TRANSFER, .op = hs("refuse")};
        t = only(run(x, &p.c1, &f), HERALD_FT_TRANSFER_RESULT);
        strs_are(t->members, t->n_members, LIST("c1"));
        strs_are(t->statuses, t->n_statuses, LIST("refused"));
        strs_are(t->reasons, t->n_reasons, LIST("customer_refused"));
    }
    /* Resigned: at once (TRANSFER_MARK, CONV_HANDOVER, TRANSFER_DONE). */
    x->n_log = 0;
    t = only(xfer(x, &p.boss, "e2", "e1", LIST("c2", "c3"), NULL, CMD_XFER_RESIGNED),
             HERALD_FT_TRANSFER_RESULT);
    assert_int_equal(t->count, 2);
    strs_are(t->members, t->n_members, LIST("c2", "c3"));
    strs_are(t->statuses, t->n_statuses, LIST("done", "no_record"));
    str_is(t->reasons[0], NULL);
    strs_are(t->reasons + 1, 1, LIST("not_owner"));
    assert_int_equal(t->times[0], 0);
    assert_int_equal(x->n_log, 3);
    assert_int_equal(x->log_op[1], CMD_CONV_HANDOVER);
    assert_int_equal(x->log_op[2], CMD_TRANSFER_DONE);
    assert_int_equal(x->log_group[2], 0);
    {
        herald_frame f = {.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("c2")};
        herald_frame *c = only(run(x, &p.boss, &f), HERALD_FT_CONTACT_RESULT);
        strs_are(c->members, c->n_members, LIST("e1"));
    }
    /* A customer group, handed over directly. */
    conv_create(x, &p.e1, "cg", "customer_group", LIST("c1", "c2"));
    t = only(xfer(x, &p.boss, "e1", "e2", NULL, LIST("cg"), CMD_XFER_RESIGNED),
             HERALD_FT_TRANSFER_RESULT);
    assert_int_equal(t->count, 0);
    strs_are(t->members, t->n_members, LIST("cg"));
    strs_are(t->statuses, t->n_statuses, LIST("done"));
    {
        herald_frame *c = only(conv_op(x, &p.e2, "info", "cg", NULL, NULL), HERALD_FT_CONV_RESULT);
        str_is(c->owner, "e2");
    }
    /* Bad. */
    x->n_log = 0;
    text = only_error(xfer(x, &p.boss, "e1", "e1", LIST("c1"), NULL, 0), HERALD_EINVAL);
    assert_string_equal(text, "from and to are the same employee");
    text = only_error(xfer(x, &p.boss, "e1", "nosuch", LIST("c1"), NULL, 0), HERALD_ENOT_FOUND);
    assert_non_null(strstr(text, "no user nosuch"));
    text = only_error(xfer(x, &p.boss, "e1", "c2", LIST("c1"), NULL, 0), HERALD_EINVAL);
    assert_non_null(strstr(text, "external user"));
    text = only_error(xfer(x, &p.boss, "e1", "e2", NULL, NULL, 0), HERALD_EINVAL);
    assert_non_null(strstr(text, "1 to 100"));
    only_error(xfer(x, &p.boss, "e1", "e2", LIST("c 1"), NULL, 0), HERALD_EINVAL);
    only_error(xfer(x, &p.boss, NULL, "e2", LIST("c1"), NULL, 0), HERALD_EINVAL);
    only_error(xfer(x, &p.e1, "e1", "e2", LIST("c1"), NULL, 0), HERALD_EFORBIDDEN);
    {
        herald_frame f = {.type = HERALD_FT_TRANSFER, .op = hs("refuse")};
        text = only_error(run(x, &p.e1, &f), HERALD_EFORBIDDEN);
        assert_non_null(strstr(text, "only the customer"));
        /* A customer with no waiting transfer. */
        f = (herald_frame){.type = HERALD_FT_TRANSFER, .op = hs("refuse")};
        text = only_error(run(x, &p.c2, &f), HERALD_ENOT_FOUND);
        assert_non_null(strstr(text, "no transfer"));
        f = (herald_frame){.type = HERALD_FT_TRANSFER, .op = hs("undo")};
        text = only_error(run(x, &p.boss, &f), HERALD_EINVAL);
        assert_string_equal(text, "op must be start or refuse");
    }
    assert_int_equal(x->n_log, 1); /* only the refuse the state machine answered */
    assert_int_equal(x->log_op[0], CMD_TRANSFER_MARK);
}

/* ==== STATUS, PING, unknown types ==================================================== */

static void test_status_ping_unknown(void **state)
{
    fx *x = *state;
    session boss, a;
    herald_frame *r;
    const char *text;

    login(x, &boss, "boss", true);
    login(x, &a, "a", false);
    {
        herald_frame f = {.type = HERALD_FT_STATUS};
        r = only(run(x, &boss, &f), HERALD_FT_STATUS_RESULT);
        str_is(r->body, "{\"mode\":\"test\",\"groups\":3}");
        f.rid = 0;
        text = only_error(run(x, &a, &f), HERALD_EFORBIDDEN);
        assert_non_null(strstr(text, "status needs the admin role"));
    }
    {
        herald_frame f = {.type = HERALD_FT_PING};
        only(run(x, &a, &f), HERALD_FT_PONG);
    }
    /* Server frames and unknown numbers: UNSUPPORTED, the connection stays. */
    {
        static const uint32_t types[] = {HERALD_FT_WELCOME, HERALD_FT_ACK, HERALD_FT_DELIVER,
                                         HERALD_FT_OK, HERALD_FT_PONG, HERALD_FT_REMIND,
                                         HERALD_FT_TRANSFER_RESULT};
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++) {
            herald_frame f = {.type = types[i], .code = 1, .op = hs("x"), .conv = hs("c"),
                              .seq = 1, .user = hs("u"), .msg = {.conv = hs("c")}};
            rec *rr = run(x, &a, &f);
            text = only_error(rr, HERALD_EUNSUPPORTED);
            assert_string_equal(text, "frame type not accepted from clients");
            assert_int_equal(rr->fails, 0);
        }
        /* A type number past the table (the codec would refuse it; a
         * transport handing one over must still get an answer). */
        {
            herald_frame f = {.type = HERALD_FT_COUNT_ + 7, .rid = 99};
            rec *rr = rec_new(x, &a);
            svc_sink sink = sink_of(rr);
            rr->rid = 99;
            svc_request(x->s, &a, &f, &sink);
            finished(rr);
            only_error(rr, HERALD_EUNSUPPORTED);
            f.type = 0;
            f.rid = 100;
            rr = rec_new(x, &a);
            sink = sink_of(rr);
            rr->rid = 100;
            svc_request(x->s, &a, &f, &sink);
            finished(rr);
            only_error(rr, HERALD_EUNSUPPORTED);
        }
    }
    assert_int_equal(x->n_log, 0);
}

/* ==== refused submits =================================================================== */

/* Every verb that submits, with the backend refusing: exactly one ERROR
 * BUSY "not applied", done once, nothing applied. */
static void test_busy_everywhere(void **state)
{
    fx *x = *state;
    people p;
    uint64_t seq;
    herald_str m1 = hs("e2"), tg = hs("vip"), ab = hs("b");
    herald_frame reqs[] = {
        {.type = HERALD_FT_SEND, .conv = hs("room"), .cmid = hs("z"), .body = hs("x")},
        {.type = HERALD_FT_READ, .conv = hs("room"), .seq = 1},
        {.type = HERALD_FT_RECALL, .conv = hs("room"), .seq = 2},
        {.type = HERALD_FT_DND, .op = hs("on")},
        {.type = HERALD_FT_DND, .op = hs("off")},
        {.type = HERALD_FT_URGENT, .op = hs("confirm"), .conv = hs("room"), .seq = 3},
        {.type = HERALD_FT_CONV, .op = hs("create"), .conv = hs("new"), .kind = hs("group"),
         .members = &ab, .n_members = 1},
        {.type = HERALD_FT_CONV, .op = hs("add"), .conv = hs("room"), .members = &m1,
         .n_members = 1},
        {.type = HERALD_FT_CONV, .op = hs("remove"), .conv = hs("room"), .members = &ab,
         .n_members = 1},
        {.type = HERALD_FT_DIR, .op = hs("user.add"), .user = hs("e9"), .kind = hs("internal")},
        {.type = HERALD_FT_DIR, .op = hs("dept.add"), .dept = hs("d9"), .name = hs("D")},
        {.type = HERALD_FT_CONTACT, .op = hs("add"), .user = hs("e2"), .conv = hs("c1")},
        {.type = HERALD_FT_TAG, .op = hs("add"), .user = hs("c1"), .members = &tg,
         .n_members = 1},
        {.type = HERALD_FT_TAG, .op = hs("remove"), .user = hs("c1"), .members = &tg,
         .n_members = 1},
        {.type = HERALD_FT_MASS, .op = hs("send"), .conv = hs("mm"), .members = &tg,
         .n_members = 1, .body = hs("x")},
        {.type = HERALD_FT_APP, .op = hs("send"), .app = hs("crm"), .members = &m1,
         .n_members = 1, .body = hs("x")},
        {.type = HERALD_FT_APP, .op = hs("announce"), .app = hs("crm"), .members = &m1,
         .n_members = 1, .body = hs("x")},
    };
    session *who[] = {&p.a, &p.b, &p.a, &p.a, &p.a, &p.b, &p.a, &p.a, &p.a, &p.boss,
                      &p.boss, &p.boss, &p.boss, &p.boss, &p.boss, &p.boss, &p.boss};
    _Static_assert(sizeof reqs / sizeof reqs[0] == sizeof who / sizeof who[0], "one actor each");

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b"));
    assert_int_equal(sent(x, &p.a, "room", "m1", "one"), 2);
    seq = only(send_msg(x, &p.a, "room", "m2", "urgent", HERALD_MSGF_URGENT), HERALD_FT_ACK)->seq;
    assert_int_equal(seq, 3);
    only(contact_add(x, &p.boss, "e1", "c1"), HERALD_FT_CONTACT_RESULT);
    only(tag_op(x, &p.boss, "add", "c1", LIST("vip")), HERALD_FT_TAG_RESULT);
    {
        uint64_t applied[NG];
        for (uint32_t g = 0; g < NG; g++)
            applied[g] = store_applied(x->st[g]);
        x->accept_left = 0;
        for (size_t i = 0; i < sizeof reqs / sizeof reqs[0]; i++) {
            uint32_t before = x->refused;
            rec *r = run(x, who[i], &reqs[i]);
            const char *text;
            if (r->n != 1 || r->fr[0]->f.type != HERALD_FT_ERROR)
                fail_msg("request %zu (%s %.*s): %d frames, first %s", i,
                         herald_frame_type_name(reqs[i].type), (int)reqs[i].op.len,
                         reqs[i].op.ptr ? reqs[i].op.ptr : "", r->n,
                         r->n ? frame_desc(&r->fr[0]->f) : "-");
            text = only_error(r, HERALD_EBUSY);
            assert_non_null(strstr(text, "not applied"));
            assert_int_equal(x->refused, before + 1);
        }
        x->accept_left = -1;
        for (uint32_t g = 0; g < NG; g++)
            assert_int_equal(store_applied(x->st[g]), applied[g]);
    }
    assert_int_equal(p.a.dnd_until, 0);
}

/* TRANSFER start whose one command (TRANSFER_MARK) is refused. KNOWN,
 * reported: besides the ERROR BUSY the requester also gets a
 * TRANSFER_RESULT for the same rid, saying the employee does not own the
 * customer (no_record / not_owner) although nothing was decided. The
 * invariants that hold are checked first; the last block pins the current
 * answer so a fix shows up here (then: only_error(r, HERALD_EBUSY)). */
static void test_busy_transfer_first_step(void **state)
{
    fx *x = *state;
    people p;
    rec *r;
    uint64_t applied;

    cast(x, &p);
    only(contact_add(x, &p.boss, "e1", "c1"), HERALD_FT_CONTACT_RESULT);
    applied = store_applied(x->st[0]);
    x->accept_left = 0;
    r = xfer(x, &p.boss, "e1", "e2", LIST("c1"), NULL, 0);
    x->accept_left = -1;
    assert_int_equal(x->refused, 1);
    assert_int_equal(store_applied(x->st[0]), applied);
    assert_true(r->n >= 1);
    {
        herald_frame *e = frame_at(r, 0, HERALD_FT_ERROR);
        assert_int_equal(e->code, HERALD_EBUSY);
        assert_non_null(memmem(e->text.ptr, e->text.len, "not applied", 11));
    }
    /* Current behaviour (see above). */
    assert_int_equal(r->n, 2);
    {
        herald_frame *t = frame_at(r, 1, HERALD_FT_TRANSFER_RESULT);
        strs_are(t->members, t->n_members, LIST("c1"));
        strs_are(t->statuses, t->n_statuses, LIST("no_record"));
        strs_are(t->reasons, t->n_reasons, LIST("not_owner"));
        strs_are(t->texts, t->n_texts, LIST("e1 does not own customer c1"));
    }
    /* It was not decided: the same request now says waiting. */
    {
        herald_frame *t = only(xfer(x, &p.boss, "e1", "e2", LIST("c1"), NULL, 0),
                               HERALD_FT_TRANSFER_RESULT);
        strs_are(t->statuses, t->n_statuses, LIST("waiting"));
    }
}

/* The first step of a two-step request applied, the second refused: one
 * ERROR BUSY, done once; a retry completes it. */
static void test_busy_contact_second_step(void **state)
{
    fx *x = *state;
    people p;
    rec *r;

    cast(x, &p);
    x->accept_left = 1;
    r = contact_add(x, &p.boss, "e1", "c1");
    only_error(r, HERALD_EBUSY);
    assert_int_equal(x->refused, 1);
    x->accept_left = -1;
    /* The conversation exists (EXPECT: the same one), the contact not yet. */
    {
        herald_frame f = {.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("c1")};
        herald_frame *c = only(run(x, &p.boss, &f), HERALD_FT_CONTACT_RESULT);
        assert_int_equal(c->n_members, 0);
    }
    only(contact_add(x, &p.boss, "e1", "c1"), HERALD_FT_CONTACT_RESULT);
}

/* How many frames of r are ERROR code / of type. */
static int count_errors(const rec *r, int code)
{
    int n = 0;
    for (int i = 0; i < r->n; i++)
        n += r->fr[i]->f.type == HERALD_FT_ERROR && r->fr[i]->f.code == (uint32_t)code;
    return n;
}

static herald_frame *the_one(const rec *r, uint32_t type)
{
    herald_frame *found = NULL;
    for (int i = 0; i < r->n; i++) {
        if (r->fr[i]->f.type == HERALD_FT_ERROR)
            continue;
        assert_null(found); /* one answer besides the errors */
        found = frame_at(r, i, type);
    }
    assert_non_null(found);
    return found;
}

/* The jobs' follow-up steps refused (their decision applied). Each request
 * still ends once, after all its frames, with one result saying who was
 * not reached. KNOWN, reported: every refused step also sends its own
 * ERROR BUSY for the same rid (MASS: one per customer, and one more AFTER
 * the MASS_RESULT when its "missed" bookkeeping is refused); the counts
 * below pin that. */
static void test_busy_job_steps(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *m;
    rec *r;

    mass_cast(x, &p);
    /* MASS: MASS_MARK applied; the two SENDs and the "missed" record refused. */
    x->accept_left = 1;
    r = mass_send(x, &p.boss, "pb", LIST("vip"), "x");
    x->accept_left = -1;
    m = the_one(r, HERALD_FT_MASS_RESULT);
    assert_int_equal(m->count, 0);
    assert_int_equal(m->n_read, 0);
    strs_are(m->members, m->n_members, LIST("c1", "c2", "c3"));
    assert_int_equal(x->refused, 3);
    assert_int_equal(count_errors(r, HERALD_EBUSY), 3);
    assert_int_equal(r->n, 4);
    assert_int_equal(r->fr[2]->f.type, HERALD_FT_MASS_RESULT);
    assert_int_equal(r->fr[3]->f.type, HERALD_FT_ERROR); /* after the answer */
    /* With the "missed" record refused too, the status keeps MASS_MARK's
     * plan: c1 and c2 "reached" though nothing was sent (reported). */
    {
        herald_frame f = {.type = HERALD_FT_MASS, .op = hs("status"), .conv = hs("pb")};
        m = only(run(x, &p.boss, &f), HERALD_FT_MASS_RESULT);
        strs_are(m->read, m->n_read, LIST("c1", "c2"));
        strs_are(m->members, m->n_members, LIST("c3"));
    }

    /* APP: APP_MARK applied, the delivery refused. */
    x->accept_left = 1;
    r = app_req(x, &p.boss, "send", "crm", "ab", LIST("e1"), "x");
    x->accept_left = -1;
    m = the_one(r, HERALD_FT_APP_RESULT);
    assert_int_equal(m->count, 0);
    assert_int_equal(m->n_members, 0);
    strs_are(m->unreached, m->n_unreached, LIST("e1: UNAVAILABLE: not delivered"));
    assert_int_equal(count_errors(r, HERALD_EBUSY), 1);
    assert_int_equal(r->n, 2);
    /* A retry with the same message id completes it. */
    m = only(app_req(x, &p.boss, "send", "crm", "ab", LIST("e1"), "x"), HERALD_FT_APP_RESULT);
    assert_true(m->dup);
    assert_int_equal(m->count, 1);
    strs_are(m->members, m->n_members, LIST("e1"));
    assert_int_equal(m->n_unreached, 0);

    /* TRANSFER (resigned): TRANSFER_MARK applied, the handover refused. */
    x->accept_left = 1;
    r = xfer(x, &p.boss, "e1", "e2", LIST("c1"), NULL, CMD_XFER_RESIGNED);
    x->accept_left = -1;
    m = the_one(r, HERALD_FT_TRANSFER_RESULT);
    strs_are(m->members, m->n_members, LIST("c1"));
    strs_are(m->statuses, m->n_statuses, LIST("waiting"));
    strs_are(m->reasons, m->n_reasons, LIST("taking_over"));
    assert_int_equal(count_errors(r, HERALD_EBUSY), 1);
    assert_int_equal(r->n, 2);
    assert_int_equal(queued(x), 0);
}

/* MASS with only its SENDs refused: one ERROR BUSY per refused send, one
 * MASS_RESULT listing the customer as not reached, and the status says
 * so. KNOWN, reported: the ERROR says "not applied ... retry later", but
 * the customer's once-a-day mass message is spent: a retry with the same
 * id sends nothing (still not reached) and a new mass message the same day
 * finds the customer limited. */
static void test_busy_mass_sends(void **state)
{
    fx *x = *state;
    people p;
    herald_frame *m;
    rec *r;

    mass_cast(x, &p);
    x->refuse_op = CMD_SEND;
    r = mass_send(x, &p.boss, "pa", LIST("gold"), "x"); /* c2 */
    x->refuse_op = 0;
    assert_int_equal(x->refused, 1);
    assert_int_equal(r->n, 2);
    assert_int_equal(frame_at(r, 0, HERALD_FT_ERROR)->code, HERALD_EBUSY);
    m = frame_at(r, 1, HERALD_FT_MASS_RESULT);
    assert_int_equal(m->count, 0);
    assert_int_equal(m->n_read, 0);
    strs_are(m->members, m->n_members, LIST("c2"));
    {
        herald_frame f = {.type = HERALD_FT_MASS, .op = hs("status"), .conv = hs("pa")};
        m = only(run(x, &p.boss, &f), HERALD_FT_MASS_RESULT);
        assert_int_equal(m->n_read, 0);
        strs_are(m->members, m->n_members, LIST("c2"));
    }
    /* Current behaviour after the refusal (see above). */
    m = only(mass_send(x, &p.boss, "pa", LIST("gold"), "x"), HERALD_FT_MASS_RESULT);
    assert_int_equal(m->count, 0);
    strs_are(m->members, m->n_members, LIST("c2"));
    m = only(mass_send(x, &p.boss, "pz", LIST("gold"), "x"), HERALD_FT_MASS_RESULT);
    assert_int_equal(m->count, 0);
    strs_are(m->unread, m->n_unread, LIST("c2"));
    {
        herald_frame f = {.type = HERALD_FT_SYNC};
        herald_frame *sr = only(run(x, &p.c2, &f), HERALD_FT_SYNC_RESULT);
        for (uint32_t i = 0; i < sr->n_msgs; i++)
            assert_false(herald_str_eq(sr->msgs[i].body, "x"));
    }
}

/* ==== the requester gone (sink send says ECLOSED) ======================================== */

static rec *run_closed(fx *x, session *s, herald_frame *f)
{
    rec *r = rec_new(x, s);
    r->closed_sink = true;
    call_with(x, s, f, r);
    pump(x);
    finished(r);
    assert_int_equal(r->n, 0);
    assert_int_equal(r->fails, 0);
    return r;
}

static void test_closed_jobs(void **state)
{
    fx *x = *state;
    people p;
    herald_str vip = hs("vip"), e1 = hs("e1"), c1 = hs("c1");
    herald_frame *m;
    rec *r;

    mass_cast(x, &p);
    /* MASS: runs to the end, the result is simply not delivered. */
    {
        herald_frame f = {.type = HERALD_FT_MASS, .op = hs("send"), .conv = hs("gone"),
                          .members = &vip, .n_members = 1, .body = hs("bye")};
        r = run_closed(x, &p.boss, &f);
        assert_int_equal(r->refused_sends, 1);
        f = (herald_frame){.type = HERALD_FT_MASS, .op = hs("status"), .conv = hs("gone")};
        m = only(run(x, &p.boss, &f), HERALD_FT_MASS_RESULT);
        strs_are(m->read, m->n_read, LIST("c1", "c2"));
    }
    /* APP */
    {
        herald_frame f = {.type = HERALD_FT_APP, .op = hs("send"), .app = hs("crm"),
                          .cmid = hs("g1"), .members = &e1, .n_members = 1, .body = hs("bye")};
        r = run_closed(x, &p.boss, &f);
        assert_int_equal(r->refused_sends, 1);
        f.rid = 0;
        m = only(run(x, &p.boss, &f), HERALD_FT_APP_RESULT);
        assert_true(m->dup); /* the first one was decided */
        herald_frame s = {.type = HERALD_FT_SYNC};
        herald_frame *sr = only(run(x, &p.e1, &s), HERALD_FT_SYNC_RESULT);
        str_is(sr->msgs[sr->n_msgs - 1].body, "bye");
    }
    /* TRANSFER (resigned: three steps) */
    {
        herald_frame f = {.type = HERALD_FT_TRANSFER, .op = hs("start"), .user = hs("e1"),
                          .owner = hs("e2"), .members = &c1, .n_members = 1,
                          .flags = CMD_XFER_RESIGNED};
        r = run_closed(x, &p.boss, &f);
        assert_int_equal(r->refused_sends, 1);
        f = (herald_frame){.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("c1")};
        m = only(run(x, &p.boss, &f), HERALD_FT_CONTACT_RESULT);
        strs_are(m->members, m->n_members, LIST("e2"));
    }
    /* CONTACT (two steps) and a plain SEND. */
    {
        herald_frame f = {.type = HERALD_FT_CONTACT, .op = hs("add"), .user = hs("e1"),
                          .conv = hs("c3")};
        run_closed(x, &p.boss, &f);
        f = (herald_frame){.type = HERALD_FT_CONTACT, .op = hs("list"), .conv = hs("c3")};
        m = only(run(x, &p.boss, &f), HERALD_FT_CONTACT_RESULT);
        strs_are(m->members, m->n_members, LIST("e1"));
    }
}

/* The requester goes away while its command is in flight (the transport's
 * send starts answering ECLOSED): the command still applies, the answer is
 * dropped, done comes once. */
static void test_closed_while_pending(void **state)
{
    fx *x = *state;
    people p;
    uint64_t until = session_now_ms() + 60000;
    rec *r;

    cast(x, &p);
    conv_create(x, &p.a, "room", "group", LIST("b"));
    {
        herald_frame f = {.type = HERALD_FT_SEND, .conv = hs("room"), .cmid = hs("m1"),
                          .body = hs("in flight")};
        r = call(x, &p.a, &f);
        assert_int_equal(r->done, 0);
        r->closed_sink = true;
        assert_int_equal(pump(x), 1);
        finished(r);
        assert_int_equal(r->n, 0);
        assert_int_equal(r->refused_sends, 1);
    }
    {
        herald_frame f = {.type = HERALD_FT_DND, .op = hs("on"), .ts = until};
        r = call(x, &p.a, &f);
        r->closed_sink = true;
        pump(x);
        finished(r);
        assert_int_equal(r->refused_sends, 1);
        assert_int_equal(p.a.dnd_until, until); /* the session still switched */
    }
    {
        herald_frame f = {.type = HERALD_FT_APP, .op = hs("send"), .app = hs("crm"),
                          .cmid = hs("w1"), .members = (herald_str[]){hs("e1")}, .n_members = 1,
                          .body = hs("late")};
        r = call(x, &p.boss, &f);
        r->closed_sink = true;
        pump(x);
        finished(r);
        assert_int_equal(r->refused_sends, 1);
    }
    {
        herald_frame f = {.type = HERALD_FT_HISTORY, .conv = hs("room"), .after = 1};
        herald_frame *h = only(run(x, &p.b, &f), HERALD_FT_HISTORY_RESULT);
        assert_int_equal(h->n_msgs, 1);
        str_is(h->msgs[0].body, "in flight");
        f = (herald_frame){.type = HERALD_FT_SYNC};
        h = only(run(x, &p.e1, &f), HERALD_FT_SYNC_RESULT);
        assert_int_equal(h->n_msgs, 1);
        str_is(h->msgs[0].body, "late");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hello, setup, teardown),
        cmocka_unit_test_setup_teardown(test_offline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hello_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_unauthenticated, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send, setup, teardown),
        cmocka_unit_test_setup_teardown(test_send_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_history, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sync, setup, teardown),
        cmocka_unit_test_setup_teardown(test_read_receipts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_receipts_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv, setup, teardown),
        cmocka_unit_test_setup_teardown(test_conv_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_recall, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dnd, setup, teardown),
        cmocka_unit_test_setup_teardown(test_urgent, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dir, setup, teardown),
        cmocka_unit_test_setup_teardown(test_contact, setup, teardown),
        cmocka_unit_test_setup_teardown(test_tag, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mass, setup, teardown),
        cmocka_unit_test_setup_teardown(test_app, setup, teardown),
        cmocka_unit_test_setup_teardown(test_transfer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_status_ping_unknown, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_everywhere, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_transfer_first_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_contact_second_step, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_job_steps, setup, teardown),
        cmocka_unit_test_setup_teardown(test_busy_mass_sends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_jobs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_closed_while_pending, setup, teardown),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
