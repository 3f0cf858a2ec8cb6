/*
 * test_writer.c — group commit: callbacks on the loop thread in submission
 * order, several commands per transaction under load, destroy commits and
 * calls back everything still queued, and a shut-down writer refuses work.
 */
#include <ev.h>
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cmd.h"
#include "token.h"
#include "writer.h"

enum { N = 3000 };

typedef struct wfx {
    char dir[64];         /* data dir */
    store *st;            /* store */
    struct ev_loop *loop; /* loop */
    writer *w;            /* writer */
    uint64_t next_cookie; /* expected next callback */
    uint64_t done;        /* callbacks seen */
    uint64_t last_seq;    /* last SEND seq */
    int errors;           /* unexpected results */
} wfx;

static void on_done(void *arg, void *cookie, const uint8_t *cmdp, size_t len, apply_result *res)
{
    (void)cmdp;
    (void)len;
    wfx *f = arg;
    uint64_t id = (uint64_t)(uintptr_t)cookie;
    if (id != f->next_cookie)
        f->errors++;
    f->next_cookie++;
    f->done++;
    if (res->err)
        f->errors++;
    if (res->op == CMD_SEND) {
        if (res->seq != f->last_seq + 1)
            f->errors++;
        f->last_seq = res->seq;
    }
    if (f->done == N + 2)
        ev_break(f->loop, EVBREAK_ALL);
}

static void submit(wfx *f, cmd *k, uint64_t id)
{
    herald_buf b = {0};
    k->tenant = herald_str_z("t");
    k->ts = 1;
    assert_int_equal(cmd_encode(k, &b), 0);
    assert_int_equal(writer_submit(f->w, &b, (void *)(uintptr_t)id), 0);
    assert_null(b.data); /* taken */
}

static void on_timeout(struct ev_loop *loop, ev_timer *t, int revents)
{
    (void)t;
    (void)revents;
    ev_break(loop, EVBREAK_ALL);
}

static void setup_all(wfx *f)
{
    store_config cfg = {.dir = f->dir, .no_sync = false};
    char hex[TOKEN_SECRET_HEX + 1];
    uint8_t sec[TOKEN_SECRET_LEN];
    herald_str mem[2] = {herald_str_z("a"), herald_str_z("b")};
    cmd t = {.op = CMD_TENANT_CREATE};
    cmd c = {.op = CMD_CONV_CREATE, .user = herald_str_z("a"), .conv = herald_str_z("c"),
             .kind = herald_str_z("group"), .members = mem, .n_members = 2};

    snprintf(f->dir, sizeof f->dir, "/tmp/herald-writer-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    cfg.dir = f->dir;
    assert_int_equal(store_open(&cfg, &f->st), 0);
    f->loop = ev_loop_new(EVFLAG_AUTO);
    assert_int_equal(writer_create(f->st, f->loop, on_done, f, &f->w), 0);
    token_secret_generate(sec);
    token_secret_to_hex(sec, hex);
    t.secret = herald_str_z(hex);
    submit(f, &t, 0);
    submit(f, &c, 1);
    f->last_seq = 1; /* the create system message */
}

static void teardown_all(wfx *f)
{
    char rm[128];
    store_close(f->st);
    ev_loop_destroy(f->loop);
    snprintf(rm, sizeof rm, "rm -rf '%s'", f->dir);
    assert_int_equal(system(rm), 0);
}

static void test_order_and_batching(void **state)
{
    wfx f = {0};
    ev_timer t;
    (void)state;
    setup_all(&f);
    for (uint64_t i = 0; i < N; i++) {
        cmd s = {.op = CMD_SEND, .user = herald_str_z("a"), .conv = herald_str_z("c"),
                 .body = herald_str_z("x")};
        submit(&f, &s, i + 2);
    }
    ev_timer_init(&t, on_timeout, 60.0, 0);
    ev_timer_start(f.loop, &t);
    ev_run(f.loop, 0);
    ev_timer_stop(f.loop, &t);
    assert_int_equal(f.done, N + 2);
    assert_int_equal(f.errors, 0);
    assert_int_equal(f.last_seq, N + 1);
    /* Group commit: far fewer durable transactions than commands. */
    print_message("%d commands in %llu transactions\n", N + 2,
                  (unsigned long long)writer_batches(f.w));
    assert_true(writer_batches(f.w) * 4 < N);
    assert_int_equal(store_applied(f.st), N + 2);
    assert_int_equal(writer_pending(f.w), 0);
    writer_destroy(f.w);
    teardown_all(&f);
}

/* destroy() with work queued: everything is committed and called back
 * before it returns. */
static void test_destroy_drains(void **state)
{
    wfx f = {0};
    (void)state;
    setup_all(&f);
    for (uint64_t i = 0; i < N; i++) {
        cmd s = {.op = CMD_SEND, .user = herald_str_z("a"), .conv = herald_str_z("c"),
                 .body = herald_str_z("y")};
        submit(&f, &s, i + 2);
    }
    writer_destroy(f.w);
    assert_int_equal(f.done, N + 2);
    assert_int_equal(f.errors, 0);
    assert_int_equal(store_applied(f.st), N + 2);
    teardown_all(&f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order_and_batching),
        cmocka_unit_test(test_destroy_drains),
    };
    herald_token_init();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
