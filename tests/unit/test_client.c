/*
 * test_client.c — libherald against a scripted fake server: a thread with a
 * listening socket on 127.0.0.1 (port 0) speaking frames through the codec.
 * Covers HELLO/WELCOME and whoami, SEND → ACK (generated cmids, flag mask),
 * ERROR mapping (request-level and connection-level), pushes queued during a
 * request, duplicate DELIVERs dropped, gaps repaired by SYNC (group and
 * read-diffused, multi-page) exactly once and in order, a saved key syncing
 * at connect (made by a previous session: queued events are not covered),
 * timeouts, a server close, an oversized frame, a wrong answer type, local
 * argument checks, and the sync-key bytes (round trip, garbage rejected).
 *
 * The fake server never calls cmocka asserts (they longjmp and must stay on
 * the test's thread): it counts failed expectations, checked at the join.
 */
#include <arpa/inet.h>
#include <herald/client.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "synckey.h"

#define FK_WAIT_MS 5000 /* the fake never waits longer than this for a frame */

/* A fake server: one connection, a script run by a thread. */
typedef struct fake {
    int lfd;                        /* listener on 127.0.0.1:port */
    int fd;                         /* the accepted connection */
    char addr[32];                  /* "127.0.0.1:port" */
    herald_buf rx;                  /* received bytes */
    size_t last;                    /* bytes of the frame returned last */
    void (*script)(struct fake *f); /* what the server does */
    pthread_t th;                   /* runs the script */
    int failures;                   /* expectations that did not hold */
    int line;                       /* source line of the first failure */
} fake;

#define FK_CHECK(f, cond)                                                               \
    do {                                                                                \
        if (!(cond) && (f)->failures++ == 0)                                            \
            (f)->line = __LINE__;                                                       \
    } while (0)

static void fk_send(fake *f, const herald_frame *fr)
{
    herald_buf b = {0};
    FK_CHECK(f, herald_frame_encode(fr, &b) == 0);
    FK_CHECK(f, write(f->fd, b.data, b.len) == (ssize_t)b.len);
    herald_buf_free(&b);
}

/* Receives one frame (valid until the next call); false on EOF / timeout. */
static bool fk_recv(fake *f, herald_frame *fr)
{
    memset(fr, 0, sizeof *fr);
    if (f->last) {
        herald_buf_consume(&f->rx, f->last);
        f->last = 0;
    }
    for (;;) {
        struct pollfd pf = {.fd = f->fd, .events = POLLIN};
        size_t flen = 0;
        ssize_t n;
        if (herald_frame_peek(f->rx.data, f->rx.len, 0, &flen) != 0)
            return false;
        if (flen) {
            f->last = flen;
            return herald_frame_decode(f->rx.data + 4, flen - 4, NULL, fr) == 0;
        }
        if (poll(&pf, 1, FK_WAIT_MS) != 1 || herald_buf_reserve(&f->rx, 4096) != 0)
            return false;
        n = read(f->fd, f->rx.data + f->rx.len, 4096);
        if (n <= 0)
            return false;
        f->rx.len += (size_t)n;
    }
}

/* Receives a frame that must be of `type`. The caller releases *fr. */
static bool fk_expect(fake *f, uint32_t type, herald_frame *fr)
{
    bool ok = fk_recv(f, fr) && fr->type == type;
    FK_CHECK(f, ok);
    return ok;
}

/* Waits until the client closes (or FK_WAIT_MS pass), skipping frames. */
static void fk_drain(fake *f)
{
    herald_frame x;
    while (fk_recv(f, &x))
        herald_frame_release(&x);
}

static void *fk_main(void *p)
{
    fake *f = p;
    f->fd = accept(f->lfd, NULL, NULL);
    if (f->fd >= 0) {
        f->script(f);
        close(f->fd);
    }
    return NULL;
}

static void fk_start(fake *f, void (*script)(fake *))
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    socklen_t al = sizeof a;
    memset(f, 0, sizeof *f);
    f->script = script;
    f->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(f->lfd >= 0);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(bind(f->lfd, (struct sockaddr *)&a, sizeof a), 0);
    assert_int_equal(listen(f->lfd, 1), 0);
    assert_int_equal(getsockname(f->lfd, (struct sockaddr *)&a, &al), 0);
    snprintf(f->addr, sizeof f->addr, "127.0.0.1:%u", ntohs(a.sin_port));
    assert_int_equal(pthread_create(&f->th, NULL, fk_main, f), 0);
}

static void fk_join(fake *f)
{
    pthread_join(f->th, NULL);
    close(f->lfd);
    herald_buf_free(&f->rx);
    if (f->failures)
        fail_msg("fake server: %d failed expectation(s), first at line %d", f->failures,
                 f->line);
}

/* HELLO → WELCOME at position {group 0: pos} (+ {conv "ann": ann_seq} when
 * non-zero). */
static void fk_welcome2(fake *f, uint64_t pos, uint64_t ann_seq)
{
    herald_frame h, w = {.type = HERALD_FT_WELCOME, .user = herald_str_z("bob"),
                         .tenant = herald_str_z("acme"), .admin = true, .version = 1,
                         .hb_ms = 60000, .max_frame = 1u << 20};
    herald_sync_group g = {.group = 0, .pos = pos};
    herald_sync_conv sc = {.conv = herald_str_z("ann"), .seq = ann_seq};
    if (!fk_expect(f, HERALD_FT_HELLO, &h))
        return;
    FK_CHECK(f, herald_str_eq(h.token, "tok") && h.version == HERALD_PROTOCOL_VERSION);
    w.rid = h.rid;
    herald_frame_release(&h);
    w.sync_groups = &g;
    w.n_sync_groups = 1;
    if (ann_seq) {
        w.sync_convs = &sc;
        w.n_sync_convs = 1;
    }
    fk_send(f, &w);
}

static void fk_welcome(fake *f, uint64_t pos) { fk_welcome2(f, pos, 0); }

/* A message of conv "c" in group 0 at pos; as pushed, its pv says the
 * user's previous message was at pos - 1. */
static herald_msg msg(uint64_t seq, uint64_t pos)
{
    return (herald_msg){.conv = herald_str_z("c"), .seq = seq, .from = herald_str_z("al"),
                        .body = herald_str_z("x"), .ts = 1000 + seq, .pos = pos,
                        .flags = HERALD_MSGF_SILENT, .prev = pos ? pos - 1 : 0};
}

/* A push whose chain says the user's previous message was at pv. */
static void fk_deliver_pv(fake *f, uint64_t seq, uint64_t pos, uint64_t pv)
{
    herald_frame d = {.type = HERALD_FT_DELIVER, .msg = msg(seq, pos)};
    d.msg.prev = pv;
    fk_send(f, &d);
}

static void fk_deliver(fake *f, uint64_t seq, uint64_t pos)
{
    fk_deliver_pv(f, seq, pos, pos - 1);
}

/* Answers one SYNC that must carry {group 0: from} with messages at
 * positions from+1..to (seq = pos + 10); more as given. */
static void fk_sync(fake *f, uint64_t from, uint64_t to, bool more)
{
    herald_frame s, r = {.type = HERALD_FT_SYNC_RESULT, .more = more};
    herald_msg v[32];
    uint32_t n = 0;
    herald_sync_group g = {.group = 0, .pos = to};

    if (!fk_expect(f, HERALD_FT_SYNC, &s))
        return;
    FK_CHECK(f, s.n_sync_groups == 1 && s.sync_groups[0].group == 0 &&
                    s.sync_groups[0].pos == from);
    r.rid = s.rid;
    herald_frame_release(&s);
    for (uint64_t u = from + 1; u <= to && n < 32; u++) {
        v[n] = msg(u + 10, u);
        v[n++].prev = 0; /* SYNC answers carry no chain */
    }
    r.msgs = v;
    r.n_msgs = n;
    r.sync_groups = &g;
    r.n_sync_groups = 1;
    fk_send(f, &r);
}

static herald_client *connect_fake(fake *f, const herald_buf *key)
{
    herald_client *c = NULL;
    herald_client_opts o = {.timeout_ms = 3000};
    if (key) {
        o.sync_key = key->data;
        o.sync_key_len = key->len;
    }
    assert_int_equal(herald_client_connect(f->addr, "tok", &o, &c), 0);
    assert_non_null(c);
    return c;
}

/* Takes the next event, which must be a message of conv at seq. */
static void expect_msg(herald_client *c, const char *conv, uint64_t seq)
{
    herald_event *ev = NULL;
    assert_int_equal(herald_client_next_event(c, 3000, &ev), 0);
    assert_int_equal(ev->type, HERALD_EV_MSG);
    assert_int_equal(ev->msg.conv.len, strlen(conv));
    assert_memory_equal(ev->msg.conv.ptr, conv, ev->msg.conv.len);
    assert_int_equal(ev->msg.seq, seq);
    herald_event_free(ev);
}

static void expect_no_event(herald_client *c)
{
    herald_event *ev = (herald_event *)1;
    assert_int_equal(herald_client_next_event(c, 150, &ev), HERALD_ETIMEOUT);
    assert_null(ev);
}

/* ---- HELLO / WELCOME ---------------------------------------------------------------- */

static void script_welcome(fake *f)
{
    fk_welcome2(f, 5, 7);
    fk_drain(f);
}

static void test_hello_welcome_whoami(void **state)
{
    fake f;
    herald_client *c;
    herald_buf key = {0};
    synckey k = {0};
    (void)state;
    fk_start(&f, script_welcome);
    c = connect_fake(&f, NULL);
    assert_string_equal(herald_client_user(c), "bob");
    assert_string_equal(herald_client_tenant(c), "acme");
    assert_true(herald_client_is_admin(c));
    assert_true(herald_client_fd(c) >= 0);
    assert_string_equal(herald_client_last_error(c), "");
    /* Without a saved key the client adopts the WELCOME position. */
    assert_int_equal(herald_client_sync_key(c, &key), 0);
    assert_int_equal(sk_load(&k, key.data, key.len), 0);
    assert_int_equal(k.n_groups, 1);
    assert_int_equal(k.groups[0].pos, 5);
    assert_int_equal(k.n_convs, 1);
    assert_string_equal(k.convs[0].conv, "ann");
    assert_int_equal(k.convs[0].seq, 7);
    expect_no_event(c);
    herald_client_close(c);
    fk_join(&f);
    sk_free(&k);
    herald_buf_free(&key);
}

static void script_refuse(fake *f)
{
    herald_frame h, e = {.type = HERALD_FT_ERROR, .code = HERALD_EEXPIRED,
                         .text = herald_str_z("token expired at 12")};
    if (fk_expect(f, HERALD_FT_HELLO, &h)) {
        e.ref = h.rid;
        herald_frame_release(&h);
        fk_send(f, &e);
    }
    fk_drain(f);
}

static void test_connect_errors(void **state)
{
    fake f;
    herald_client *c = (herald_client *)1;
    char err[64];
    herald_client_opts o = {.timeout_ms = 2000, .errbuf = err, .errbuf_len = sizeof err};
    (void)state;
    fk_start(&f, script_refuse);
    assert_int_equal(herald_client_connect(f.addr, "tok", &o, &c), HERALD_EEXPIRED);
    assert_null(c);
    assert_string_equal(err, "token expired at 12");
    fk_join(&f);
    /* No token, malformed addresses, a closed port. */
    assert_int_equal(herald_client_connect("127.0.0.1:1", NULL, &o, &c), HERALD_EUNAUTHORIZED);
    assert_int_equal(herald_client_connect("nocolon", "tok", &o, &c), HERALD_EINVAL);
    assert_int_equal(herald_client_connect("127.0.0.1:", "tok", &o, &c), HERALD_EINVAL);
    assert_int_equal(herald_client_connect("[::1:80", "tok", &o, &c), HERALD_EINVAL);
    assert_int_equal(herald_client_connect("127.0.0.1:1", "tok", &o, &c), HERALD_EIO);
    assert_null(c);
    herald_client_close(NULL);
}

/* ---- requests ---------------------------------------------------------------------- */

static void script_send(fake *f)
{
    herald_frame s, a = {.type = HERALD_FT_ACK, .conv = herald_str_z("c")};
    char first[40] = "";
    fk_welcome(f, 0);
    /* 1: generated cmid, flags masked to the client bits. */
    if (fk_expect(f, HERALD_FT_SEND, &s)) {
        FK_CHECK(f, herald_str_eq(s.conv, "c") && s.body.len == 5 &&
                        memcmp(s.body.ptr, "hello", 5) == 0 &&
                        s.flags == (HERALD_MSGF_SILENT | HERALD_MSGF_URGENT) && s.cmid.len == 32);
        snprintf(first, sizeof first, "%.*s", (int)s.cmid.len, s.cmid.ptr);
        a.rid = s.rid;
        a.seq = 7;
        a.ts = 99;
        herald_frame_release(&s);
        fk_send(f, &a);
    }
    /* 2: another generated cmid differs. */
    if (fk_expect(f, HERALD_FT_SEND, &s)) {
        FK_CHECK(f, s.cmid.len == 32 && !herald_str_eq(s.cmid, first));
        a.rid = s.rid;
        a.seq = 8;
        herald_frame_release(&s);
        fk_send(f, &a);
    }
    /* 3: the caller's cmid, seen before. */
    if (fk_expect(f, HERALD_FT_SEND, &s)) {
        FK_CHECK(f, herald_str_eq(s.cmid, "m-1") && s.body.len == 0);
        a.rid = s.rid;
        a.seq = 7;
        a.dup = true;
        herald_frame_release(&s);
        fk_send(f, &a);
    }
    fk_drain(f);
}

static void test_send_ack(void **state)
{
    fake f;
    herald_client *c;
    herald_ack ack;
    (void)state;
    fk_start(&f, script_send);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_send(c, "c", NULL, "hello", 5, 0xffu, &ack), 0);
    assert_int_equal(ack.seq, 7);
    assert_int_equal(ack.ts, 99);
    assert_false(ack.dup);
    assert_int_equal(herald_client_send(c, "c", NULL, "x", 1, 0, &ack), 0);
    assert_int_equal(ack.seq, 8);
    /* Local argument checks: nothing goes out, the connection stays usable. */
    assert_int_equal(herald_client_send(c, NULL, NULL, "x", 1, 0, &ack), HERALD_EINVAL);
    assert_int_equal(herald_client_send(c, "", NULL, "x", 1, 0, &ack), HERALD_EINVAL);
    assert_int_equal(herald_client_read(c, "c", 0, NULL), HERALD_EINVAL);
    assert_int_equal(herald_client_conv_info(c, NULL, NULL), HERALD_EINVAL);
    assert_int_equal(herald_client_send(c, "c", "m-1", NULL, 0, 0, &ack), 0);
    assert_int_equal(ack.seq, 7);
    assert_true(ack.dup);
    herald_client_close(c);
    fk_join(&f);
}

static void script_errors(fake *f)
{
    herald_frame s, e = {.type = HERALD_FT_ERROR, .code = HERALD_ENOT_MEMBER,
                         .text = herald_str_z("not a member of c")};
    herald_frame pong = {.type = HERALD_FT_PONG};
    fk_welcome(f, 0);
    if (fk_expect(f, HERALD_FT_SEND, &s)) {
        e.ref = s.rid;
        herald_frame_release(&s);
        fk_send(f, &e);
    }
    /* Still usable: PING → a stale ERROR for an older rid, then PONG. */
    if (fk_expect(f, HERALD_FT_PING, &s)) {
        e.ref = s.rid - 1;
        fk_send(f, &e);
        pong.rid = s.rid;
        herald_frame_release(&s);
        fk_send(f, &pong);
    }
    /* A connection-level ERROR (ref 0) while the client waits. */
    if (fk_expect(f, HERALD_FT_PING, &s)) {
        herald_frame down = {.type = HERALD_FT_ERROR, .code = HERALD_ESHUTDOWN,
                             .text = herald_str_z("draining")};
        herald_frame_release(&s);
        fk_send(f, &down);
    }
    fk_drain(f);
}

static void test_error_mapping(void **state)
{
    fake f;
    herald_client *c;
    uint64_t rtt = 1;
    (void)state;
    fk_start(&f, script_errors);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_send(c, "c", NULL, "x", 1, 0, NULL), HERALD_ENOT_MEMBER);
    assert_string_equal(herald_client_last_error(c), "not a member of c");
    assert_true(herald_client_fd(c) >= 0);
    assert_int_equal(herald_client_ping(c, &rtt), 0);
    assert_string_equal(herald_client_last_error(c), ""); /* a stale ERROR is not ours */
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ESHUTDOWN);
    assert_string_equal(herald_client_last_error(c), "draining");
    assert_true(herald_client_fd(c) < 0);
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ECLOSED);
    herald_client_close(c);
    fk_join(&f);
}

static void script_push_during_request(fake *f)
{
    herald_frame s, r = {.type = HERALD_FT_HISTORY_RESULT, .more = true};
    herald_frame rc = {.type = HERALD_FT_RECEIPT, .conv = herald_str_z("c"),
                       .user = herald_str_z("carol"), .seq = 3};
    herald_msg hv[2] = {msg(1, 9), msg(2, 10)};
    fk_welcome(f, 0);
    if (fk_expect(f, HERALD_FT_HISTORY, &s)) {
        FK_CHECK(f, herald_str_eq(s.conv, "c") && s.after == 0 && s.limit == 2);
        r.rid = s.rid;
        herald_frame_release(&s);
        fk_deliver(f, 11, 1); /* pushes before the answer */
        fk_send(f, &rc);
        fk_deliver(f, 12, 2);
        hv[1].body = herald_str_z("second");
        r.msgs = hv;
        r.n_msgs = 2;
        fk_send(f, &r);
    }
    fk_drain(f);
}

static void test_push_during_request(void **state)
{
    fake f;
    herald_client *c;
    herald_msglist l;
    herald_event *ev;
    (void)state;
    fk_start(&f, script_push_during_request);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_history(c, "c", 0, 2, &l), 0);
    assert_int_equal(l.n, 2);
    assert_true(l.more);
    assert_int_equal(l.v[0].seq, 1);
    assert_int_equal(l.v[1].seq, 2);
    assert_int_equal(l.v[1].body.len, 6);
    assert_string_equal(l.v[1].body.ptr, "second"); /* owned, NUL-terminated */
    assert_string_equal(l.v[0].from.ptr, "al");
    herald_msglist_free(&l);
    herald_msglist_free(NULL);
    /* The pushes come out in arrival order, already read off the socket. */
    assert_int_equal(herald_client_next_event(c, 0, &ev), 0);
    assert_int_equal(ev->type, HERALD_EV_MSG);
    assert_int_equal(ev->msg.pos, 1);
    assert_int_equal(ev->msg.ts, 1011);
    assert_true(ev->msg.flags & HERALD_MSGF_SILENT);
    herald_event_free(ev);
    assert_int_equal(herald_client_next_event(c, 0, &ev), 0);
    assert_int_equal(ev->type, HERALD_EV_RECEIPT);
    assert_string_equal(ev->conv, "c");
    assert_string_equal(ev->user, "carol");
    assert_int_equal(ev->seq, 3);
    herald_event_free(ev);
    assert_int_equal(herald_client_next_event(c, 0, &ev), 0);
    assert_int_equal(ev->msg.pos, 2);
    herald_event_free(ev);
    assert_int_equal(herald_client_next_event(c, 0, &ev), HERALD_ETIMEOUT);
    herald_client_close(c);
    fk_join(&f);
}

static void script_conv(fake *f)
{
    herald_frame s, r = {.type = HERALD_FT_CONV_RESULT, .conv = herald_str_z("g1"),
                         .kind = herald_str_z("group"), .owner = herald_str_z("bob"),
                         .seq = 4, .cap = 200, .count = 2, .ts = 1234};
    herald_frame rr = {.type = HERALD_FT_RECEIPTS_RESULT, .n_read_total = 1,
                       .n_unread_total = 1};
    herald_str mem[2] = {herald_str_z("al"), herald_str_z("bob")};
    herald_str rd[1] = {herald_str_z("al")}, un[1] = {herald_str_z("bob")};
    fk_welcome(f, 0);
    if (fk_expect(f, HERALD_FT_CONV, &s)) {
        FK_CHECK(f, herald_str_eq(s.op, "create") && herald_str_eq(s.kind, "group") &&
                        s.conv.len == 0 && s.n_members == 2 &&
                        herald_str_eq(s.members[1], "bob"));
        r.rid = s.rid;
        r.members = mem;
        r.n_members = 2;
        herald_frame_release(&s);
        fk_send(f, &r);
    }
    if (fk_expect(f, HERALD_FT_RECEIPTS, &s)) {
        FK_CHECK(f, herald_str_eq(s.conv, "g1") && s.seq == 4);
        rr.rid = s.rid;
        rr.read = rd;
        rr.n_read = 1;
        rr.unread = un;
        rr.n_unread = 1;
        herald_frame_release(&s);
        fk_send(f, &rr);
    }
    if (fk_expect(f, HERALD_FT_READ, &s)) {
        herald_frame ok = {.type = HERALD_FT_OK, .rid = s.rid, .seq = 9};
        herald_frame_release(&s);
        fk_send(f, &ok);
    }
    fk_drain(f);
}

static void test_conv_receipts_read(void **state)
{
    fake f;
    herald_client *c;
    herald_conv_info ci;
    herald_strlist rd, un;
    uint64_t cur = 0;
    const char *const members[] = {"al", "bob"};
    (void)state;
    fk_start(&f, script_conv);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_conv_create(c, "group", NULL, members, 2, &ci), 0);
    assert_string_equal(ci.id, "g1");
    assert_string_equal(ci.kind, "group");
    assert_string_equal(ci.owner, "bob");
    assert_int_equal(ci.members.n, 2);
    assert_string_equal(ci.members.v[0], "al");
    assert_int_equal(ci.max_seq, 4);
    assert_int_equal(ci.cap, 200);
    assert_int_equal(ci.count, 2);
    assert_int_equal(ci.created, 1234);
    herald_conv_info_free(&ci);
    assert_int_equal(herald_client_receipts(c, "g1", 4, &rd, &un), 0);
    assert_int_equal(rd.n, 1);
    assert_string_equal(rd.v[0], "al");
    assert_int_equal(un.n, 1);
    assert_string_equal(un.v[0], "bob");
    herald_strlist_free(&rd);
    herald_strlist_free(&un);
    assert_int_equal(herald_client_read(c, "g1", 3, &cur), 0);
    assert_int_equal(cur, 9); /* the stored cursor, which never moves back */
    herald_client_close(c);
    fk_join(&f);
}

/* ---- delivery: duplicates, gaps, saved keys ----------------------------------------- */

static void script_gap(fake *f)
{
    fk_welcome(f, 0);
    fk_deliver(f, 11, 1);
    fk_deliver(f, 11, 1);         /* duplicate */
    fk_deliver_pv(f, 13, 3, 1);   /* next: 2 was not this user's */
    fk_deliver_pv(f, 16, 6, 5);   /* gap: 4 and 5 missing */
    fk_deliver_pv(f, 17, 7, 6);   /* still behind: dropped too */
    /* Two pages: the first stops short, "more". */
    fk_sync(f, 3, 5, true);
    fk_sync(f, 5, 7, false);
    fk_deliver(f, 16, 6);         /* late duplicates */
    fk_deliver(f, 17, 7);
    fk_deliver_pv(f, 19, 9, 7);   /* next again */
    fk_deliver_pv(f, 19, 9, 7);   /* duplicate */
    fk_drain(f);
}

static void test_dup_and_gap(void **state)
{
    fake f;
    herald_client *c;
    herald_buf key = {0};
    synckey k = {0};
    herald_client_stats st;
    (void)state;
    fk_start(&f, script_gap);
    c = connect_fake(&f, NULL);
    expect_msg(c, "c", 11);
    expect_msg(c, "c", 13);
    expect_msg(c, "c", 14);
    expect_msg(c, "c", 15);
    expect_msg(c, "c", 16);
    expect_msg(c, "c", 17);
    expect_msg(c, "c", 19);
    expect_no_event(c);
    herald_client_stats_get(c, &st);
    assert_int_equal(st.gaps, 2);
    assert_int_equal(herald_client_sync_key(c, &key), 0);
    assert_int_equal(sk_load(&k, key.data, key.len), 0);
    assert_int_equal(k.groups[0].pos, 9);
    herald_client_close(c);
    fk_join(&f);
    sk_free(&k);
    herald_buf_free(&key);
}

/* Session 2: the HELLO position is newer; the client SYNCs from its key. */
static void script_session2(fake *f)
{
    fk_welcome(f, 9);
    fk_sync(f, 4, 6, false);
    fk_deliver(f, 16, 6); /* already synced */
    fk_deliver(f, 17, 7);
    fk_drain(f);
}

/* The app saves after taking 4 while 5 sits in the queue. */
static void script_session1b(fake *f)
{
    herald_frame p;
    fk_welcome(f, 3);
    fk_deliver(f, 14, 4);
    fk_deliver(f, 15, 5);
    /* The client pings after reading both: then both are queued. */
    if (fk_expect(f, HERALD_FT_PING, &p)) {
        herald_frame pong = {.type = HERALD_FT_PONG, .rid = p.rid};
        herald_frame_release(&p);
        fk_send(f, &pong);
    }
    fk_drain(f);
}

static void test_saved_key_exactly_once(void **state)
{
    fake f;
    herald_client *c;
    herald_buf key = {0};
    (void)state;
    fk_start(&f, script_session1b);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_ping(c, NULL), 0); /* 4 and 5 queued meanwhile */
    expect_msg(c, "c", 14);
    assert_int_equal(herald_client_sync_key(c, &key), 0);
    herald_client_close(c); /* 5 never reached the app */
    fk_join(&f);

    fk_start(&f, script_session2);
    c = connect_fake(&f, &key);
    expect_msg(c, "c", 15); /* from the SYNC at connect */
    expect_msg(c, "c", 16);
    expect_msg(c, "c", 17); /* live again; the pushed 16 was dropped */
    expect_no_event(c);
    herald_client_close(c);
    fk_join(&f);
    herald_buf_free(&key);
}

/* The reconnect SYNC of a saved key is answered from a replica one entry
 * behind what a push already proved (the push arrives while the SYNC is
 * under way): the gap stays open and a second SYNC fetches the rest. */
static void script_short_sync(fake *f)
{
    fk_welcome(f, 9);
    {
        herald_frame s;
        /* Peek at the SYNC before answering: push 6 first. */
        if (!fk_recv(f, &s) || s.type != HERALD_FT_SYNC) {
            FK_CHECK(f, false);
            return;
        }
        {
            herald_frame r = {.type = HERALD_FT_SYNC_RESULT, .rid = s.rid};
            herald_msg v[2] = {msg(14, 4), msg(15, 5)};
            herald_sync_group g = {.group = 0, .pos = 5};
            FK_CHECK(f, s.n_sync_groups == 1 && s.sync_groups[0].pos == 3);
            herald_frame_release(&s);
            fk_deliver(f, 16, 6);
            r.msgs = v;
            r.n_msgs = 2;
            r.sync_groups = &g;
            r.n_sync_groups = 1;
            fk_send(f, &r);
        }
    }
    fk_sync(f, 5, 6, false); /* the retry */
    fk_drain(f);
}

static void test_short_sync_retried(void **state)
{
    fake f;
    herald_client *c;
    herald_buf key = {0};
    synckey k = {0};
    herald_client_stats st;
    (void)state;
    *sk_group(&k, 0) = 3;
    assert_int_equal(sk_save(&k, &key), 0);
    fk_start(&f, script_short_sync);
    c = connect_fake(&f, &key);
    expect_msg(c, "c", 14);
    expect_msg(c, "c", 15);
    expect_msg(c, "c", 16); /* never a silent clear of the gap */
    expect_no_event(c);
    herald_client_stats_get(c, &st);
    assert_int_equal(st.gaps, 1);
    assert_true(st.sync_retries >= 1);
    assert_int_equal(st.gaps_unfilled, 0);
    herald_client_close(c);
    fk_join(&f);
    sk_free(&k);
    herald_buf_free(&key);
}

/* A gap the server cannot fill for longer than the request timeout: SYNCs
 * refused (UNAVAILABLE) or short are retried with backoff, HERALD_EV_GAP is
 * reported once, and the messages still come, in order, when it can. */
static void script_gap_unfilled(fake *f)
{
    uint64_t t0 = 0;
    struct timespec ts;
    fk_welcome(f, 0);
    fk_deliver(f, 13, 3); /* pos 1 and 2 missing */
    for (int i = 0; i < 200; i++) {
        herald_frame s;
        uint64_t now;
        if (!fk_recv(f, &s) || s.type != HERALD_FT_SYNC) {
            FK_CHECK(f, false);
            return;
        }
        clock_gettime(CLOCK_MONOTONIC, &ts);
        now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
        if (!t0)
            t0 = now;
        if (now - t0 >= 1500) { /* caught up at last */
            herald_frame r = {.type = HERALD_FT_SYNC_RESULT, .rid = s.rid};
            herald_msg v[3] = {msg(11, 1), msg(12, 2), msg(13, 3)};
            herald_sync_group g = {.group = 0, .pos = 3};
            r.msgs = v;
            r.n_msgs = 3;
            r.sync_groups = &g;
            r.n_sync_groups = 1;
            herald_frame_release(&s);
            fk_send(f, &r);
            break;
        }
        if (i % 2 == 0) {
            herald_frame e = {.type = HERALD_FT_ERROR, .code = HERALD_EUNAVAILABLE,
                              .text = herald_str_z("replica behind; retry"), .ref = s.rid};
            fk_send(f, &e);
        } else {
            herald_frame r = {.type = HERALD_FT_SYNC_RESULT, .rid = s.rid};
            herald_sync_group g = {.group = 0, .pos = 0};
            r.sync_groups = &g;
            r.n_sync_groups = 1;
            fk_send(f, &r);
        }
        herald_frame_release(&s);
    }
    fk_drain(f);
}

static void test_gap_unfilled_reported(void **state)
{
    fake f;
    herald_client *c = NULL;
    herald_client_opts o = {.timeout_ms = 600};
    herald_event *ev = NULL;
    herald_client_stats st;
    (void)state;
    fk_start(&f, script_gap_unfilled);
    assert_int_equal(herald_client_connect(f.addr, "tok", &o, &c), 0);
    assert_int_equal(herald_client_next_event(c, 3000, &ev), 0);
    assert_int_equal(ev->type, HERALD_EV_GAP);
    assert_int_equal(ev->group, 0);
    assert_int_equal(ev->seq, 3);
    herald_event_free(ev);
    expect_msg(c, "c", 11);
    expect_msg(c, "c", 12);
    expect_msg(c, "c", 13);
    expect_no_event(c);
    herald_client_stats_get(c, &st);
    assert_int_equal(st.gaps_unfilled, 1);
    assert_true(st.sync_retries >= 3);
    /* Backoff: 1.5 s of retries took far fewer than one SYNC per millisecond. */
    assert_true(st.syncs < 40);
    herald_client_close(c);
    fk_join(&f);
}

/* An escalation names the members who never confirmed as an array. */
static void script_escalate(fake *f)
{
    herald_str who[2] = {herald_str_z("bob"), herald_str_z("carol")};
    herald_frame e = {.type = HERALD_FT_REMIND, .op = herald_str_z("escalate"),
                      .conv = herald_str_z("war"), .seq = 7, .count = 3,
                      .user = herald_str_z("al"), .members = who, .n_members = 2};
    fk_welcome(f, 0);
    fk_send(f, &e);
    fk_drain(f);
}

static void test_escalate_pending(void **state)
{
    fake f;
    herald_client *c;
    herald_event *ev = NULL;
    (void)state;
    fk_start(&f, script_escalate);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_next_event(c, 3000, &ev), 0);
    assert_int_equal(ev->type, HERALD_EV_ESCALATE);
    assert_string_equal(ev->conv, "war");
    assert_int_equal(ev->seq, 7);
    assert_int_equal(ev->count, 3);
    assert_int_equal(ev->n_pending, 2);
    assert_string_equal(ev->pending[0], "bob");
    assert_string_equal(ev->pending[1], "carol");
    herald_event_free(ev);
    herald_client_close(c);
    fk_join(&f);
}

/* ---- broken connections ---------------------------------------------------------------- */

static void script_silent(fake *f)
{
    herald_frame x;
    fk_welcome(f, 0);
    if (fk_expect(f, HERALD_FT_PING, &x)) /* never answered */
        herald_frame_release(&x);
    fk_drain(f);
}

static void test_timeout(void **state)
{
    fake f;
    herald_client *c = NULL;
    herald_client_opts o = {.timeout_ms = 300};
    (void)state;
    fk_start(&f, script_silent);
    assert_int_equal(herald_client_connect(f.addr, "tok", &o, &c), 0);
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ETIMEOUT);
    assert_true(herald_client_fd(c) < 0); /* a late answer could not be matched */
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ECLOSED);
    herald_client_close(c);
    fk_join(&f);
}

static void script_close(fake *f) { fk_welcome(f, 0); }

static void test_server_close(void **state)
{
    fake f;
    herald_client *c;
    herald_event *ev;
    herald_buf key = {0};
    (void)state;
    fk_start(&f, script_close);
    c = connect_fake(&f, NULL);
    fk_join(&f);
    assert_int_equal(herald_client_next_event(c, 2000, &ev), HERALD_ECLOSED);
    assert_int_equal(herald_client_ping(c, NULL), HERALD_ECLOSED);
    assert_int_equal(herald_client_sync_key(c, &key), 0); /* still saveable */
    herald_client_close(c);
    herald_buf_free(&key);
}

static void script_oversized(fake *f)
{
    herald_frame d = {.type = HERALD_FT_DELIVER, .msg = msg(11, 1)};
    static char big[2000];
    fk_welcome(f, 0);
    memset(big, 'a', sizeof big);
    d.msg.body = (herald_str){.ptr = big, .len = sizeof big};
    fk_send(f, &d);
    fk_drain(f);
}

static void test_oversized_frame(void **state)
{
    fake f;
    herald_client *c = NULL;
    herald_event *ev;
    herald_client_opts o = {.timeout_ms = 2000, .max_frame = 1024};
    (void)state;
    fk_start(&f, script_oversized);
    assert_int_equal(herald_client_connect(f.addr, "tok", &o, &c), 0);
    assert_int_equal(herald_client_next_event(c, 2000, &ev), HERALD_ETOO_BIG);
    assert_int_equal(herald_client_next_event(c, 0, &ev), HERALD_ECLOSED);
    herald_client_close(c);
    fk_join(&f);
}

static void script_wrong_type(fake *f)
{
    herald_frame p;
    fk_welcome(f, 0);
    if (fk_expect(f, HERALD_FT_PING, &p)) {
        herald_frame ok = {.type = HERALD_FT_OK, .rid = p.rid};
        herald_frame_release(&p);
        fk_send(f, &ok);
    }
    fk_drain(f);
}

static void test_wrong_answer_type(void **state)
{
    fake f;
    herald_client *c;
    (void)state;
    fk_start(&f, script_wrong_type);
    c = connect_fake(&f, NULL);
    assert_int_equal(herald_client_ping(c, NULL), HERALD_EPROTOCOL);
    assert_string_equal(herald_client_last_error(c), "expected PONG, got OK");
    herald_client_close(c);
    fk_join(&f);
}

/* ---- sync key bytes ---------------------------------------------------------------------- */

static void test_key_bytes(void **state)
{
    synckey a = {0}, b = {0};
    herald_buf buf = {0}, bad = {0};
    herald_client *c = (herald_client *)1;
    herald_client_opts o = {0};
    (void)state;
    *sk_group(&a, 3) = 17;
    *sk_group(&a, 0) = UINT64_MAX;
    *sk_conv_at(&a, "ann", 3) = 42;
    *sk_conv_at(&a, "all-hands", 9) = 1;
    assert_int_equal(sk_save(&a, &buf), 0);
    assert_int_equal(sk_load(&b, buf.data, buf.len), 0);
    assert_int_equal(b.n_groups, 2);
    assert_int_equal(*sk_group(&b, 3), 17);
    assert_int_equal(*sk_group(&b, 0), UINT64_MAX);
    assert_int_equal(b.n_convs, 2);
    assert_int_equal(*sk_conv_at(&b, "ann", 3), 42);
    assert_int_equal(*sk_conv_at(&b, "all-hands", 9), 1);

    /* Garbage never loads, and a failed load leaves the key as it was. */
    assert_int_equal(sk_load(&b, NULL, 0), HERALD_EINVAL);
    assert_int_equal(sk_load(&b, (const uint8_t *)"garbage", 7), HERALD_EINVAL);
    assert_int_equal(sk_load(&b, buf.data, buf.len - 1), HERALD_EINVAL); /* truncated */
    assert_int_equal(herald_buf_append(&bad, buf.data, buf.len), 0);
    assert_int_equal(herald_buf_append(&bad, "x", 1), 0);
    assert_int_equal(sk_load(&b, bad.data, bad.len), HERALD_EINVAL); /* trailing byte */
    bad.len = 0;
    {
        /* A well-formed frame of another type. */
        herald_frame ping = {.type = HERALD_FT_PING};
        assert_int_equal(herald_frame_encode(&ping, &bad), 0);
        assert_int_equal(sk_load(&b, bad.data, bad.len), HERALD_EINVAL);
        bad.len = 0;
    }
    {
        /* A map announcing 2^32-1 entries in 8 bytes, and a huge length. */
        static const uint8_t huge_map[] = {0, 0, 0, 5, 0xdf, 0xff, 0xff, 0xff, 0xff};
        static const uint8_t huge_len[] = {0x7f, 0xff, 0xff, 0xff, 0x80};
        static const uint8_t sg_str[] = {0, 0, 0, 9, 0x82, 0xa1, 't', 0x07,
                                         0xa2, 's', 'g', 0xa1, 'x'};
        assert_int_equal(sk_load(&b, huge_map, sizeof huge_map), HERALD_EINVAL);
        assert_int_equal(sk_load(&b, huge_len, sizeof huge_len), HERALD_EINVAL);
        assert_int_equal(sk_load(&b, sg_str, sizeof sg_str), HERALD_EINVAL);
    }
    {
        /* A conversation id with a NUL byte is not a key entry. */
        herald_frame s = {.type = HERALD_FT_SYNC};
        herald_sync_conv sc = {.conv = {.ptr = "a\0b", .len = 3}, .seq = 1};
        s.sync_convs = &sc;
        s.n_sync_convs = 1;
        assert_int_equal(herald_frame_encode(&s, &bad), 0);
        assert_int_equal(sk_load(&b, bad.data, bad.len), HERALD_EINVAL);
    }
    assert_int_equal(b.n_groups, 2); /* untouched */
    assert_int_equal(b.n_convs, 2);

    /* connect refuses garbage before dialling. */
    o.sync_key = (const uint8_t *)"garbage";
    o.sync_key_len = 7;
    assert_int_equal(herald_client_connect("127.0.0.1:1", "tok", &o, &c), HERALD_EINVAL);
    assert_null(c);
    sk_free(&a);
    sk_free(&b);
    herald_buf_free(&buf);
    herald_buf_free(&bad);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hello_welcome_whoami),
        cmocka_unit_test(test_connect_errors),
        cmocka_unit_test(test_send_ack),
        cmocka_unit_test(test_error_mapping),
        cmocka_unit_test(test_push_during_request),
        cmocka_unit_test(test_conv_receipts_read),
        cmocka_unit_test(test_dup_and_gap),
        cmocka_unit_test(test_short_sync_retried),
        cmocka_unit_test(test_escalate_pending),
        cmocka_unit_test(test_gap_unfilled_reported),
        cmocka_unit_test(test_saved_key_exactly_once),
        cmocka_unit_test(test_timeout),
        cmocka_unit_test(test_server_close),
        cmocka_unit_test(test_oversized_frame),
        cmocka_unit_test(test_wrong_answer_type),
        cmocka_unit_test(test_key_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
