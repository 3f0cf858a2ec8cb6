/* test_mqtt_sess.c — MQTT persistent sessions: resume, takeover, clean
 * session discarding, the bound (oldest offline first, refused when all are
 * online), publish numbers for DUP resends and reused packet ids, and
 * subscriptions (replace, remove, cap). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include <herald/error.h>

#include "mqtt_sess.h"

static int owner_a, owner_b, owner_c;

static mqtt_psess *open_s(mqtt_table *t, const char *user, const char *cid, bool persistent,
                          void *owner, bool *existed, void **taken)
{
    mqtt_psess *s = NULL;
    assert_int_equal(mqtt_sess_open(t, "demo", user, cid, strlen(cid), persistent, owner, &s,
                                    existed, taken),
                     0);
    return s;
}

static void test_resume_and_takeover(void **state)
{
    mqtt_table *t;
    mqtt_psess *s, *s2;
    bool existed;
    void *taken;
    (void)state;

    assert_int_equal(mqtt_table_create(4, &t), 0);
    s = open_s(t, "alice", "dev1", true, &owner_a, &existed, &taken);
    assert_false(existed);
    assert_null(taken);
    s->key_pos[3] = 42;
    s->has_key = true;
    mqtt_sess_close(t, s, &owner_a);
    /* Back: the same session, its key kept. */
    s2 = open_s(t, "alice", "dev1", true, &owner_b, &existed, &taken);
    assert_true(existed);
    assert_ptr_equal(s2, s);
    assert_int_equal(s2->key_pos[3], 42);
    /* The same id while online: the newer connection takes it over. */
    s = open_s(t, "alice", "dev1", true, &owner_c, &existed, &taken);
    assert_true(existed);
    assert_ptr_equal(taken, &owner_b);
    mqtt_sess_close(t, s, &owner_b); /* the old owner's close changes nothing */
    assert_ptr_equal(s->owner, &owner_c);
    /* Ids are per user: bob's dev1 is another session. */
    s2 = open_s(t, "bob", "dev1", true, &owner_a, &existed, &taken);
    assert_false(existed);
    assert_ptr_not_equal(s2, s);
    assert_int_equal(mqtt_table_count(t), 2);
    mqtt_sess_close(t, s2, &owner_a);
    mqtt_sess_close(t, s, &owner_c);
    mqtt_table_destroy(t);
}

static void test_clean_discards(void **state)
{
    mqtt_table *t;
    mqtt_psess *s;
    bool existed;
    void *taken;
    (void)state;

    assert_int_equal(mqtt_table_create(4, &t), 0);
    s = open_s(t, "alice", "dev1", true, &owner_a, &existed, &taken);
    mqtt_sess_close(t, s, &owner_a);
    assert_int_equal(mqtt_table_count(t), 1);
    /* Clean session: the kept one goes, a private one is handed out. */
    s = open_s(t, "alice", "dev1", false, &owner_b, &existed, &taken);
    assert_false(existed);
    assert_false(s->persistent);
    assert_int_equal(mqtt_table_count(t), 0);
    mqtt_sess_close(t, s, &owner_b); /* freed */
    /* A clean connect while a persistent one is online: taken over. */
    s = open_s(t, "alice", "dev2", true, &owner_a, &existed, &taken);
    mqtt_psess *s2 = open_s(t, "alice", "dev2", false, &owner_b, &existed, &taken);
    assert_ptr_equal(taken, &owner_a);
    assert_int_equal(mqtt_table_count(t), 0);
    mqtt_sess_close(t, s, &owner_a); /* the old one is freed by its owner */
    mqtt_sess_close(t, s2, &owner_b);
    mqtt_table_destroy(t);
}

static void test_bound(void **state)
{
    mqtt_table *t;
    mqtt_psess *s[3], *x = NULL;
    bool existed;
    void *taken;
    int owners[3];
    (void)state;

    assert_int_equal(mqtt_table_create(2, &t), 0);
    s[0] = open_s(t, "u", "a", true, &owners[0], &existed, &taken);
    s[1] = open_s(t, "u", "b", true, &owners[1], &existed, &taken);
    /* Full of online sessions: refused. */
    assert_int_equal(mqtt_sess_open(t, "demo", "u", "c", 1, true, &owners[2], &x, &existed, &taken),
                     HERALD_EBUSY);
    mqtt_sess_close(t, s[1], &owners[1]);
    mqtt_sess_close(t, s[0], &owners[0]);
    /* The oldest offline one (b went first) is forgotten. */
    s[2] = open_s(t, "u", "c", true, &owners[2], &existed, &taken);
    assert_int_equal(mqtt_table_count(t), 2);
    s[0] = open_s(t, "u", "a", true, &owners[0], &existed, &taken);
    assert_true(existed);
    mqtt_sess_close(t, s[2], &owners[2]);
    s[1] = open_s(t, "u", "b", true, &owners[1], &existed, &taken);
    assert_false(existed); /* b was forgotten; c goes now */
    assert_int_equal(mqtt_sess_open(t, "demo", "u", "c", 1, true, &owners[2], &x, &existed, &taken),
                     HERALD_EBUSY);
    mqtt_table_destroy(t); /* online sessions: freed by their owners */
    mqtt_sess_close(t, s[0], &owners[0]);
    mqtt_sess_close(t, s[1], &owners[1]);
}

static void test_pub_numbers(void **state)
{
    mqtt_table *t;
    mqtt_psess *s;
    bool existed;
    void *taken;
    uint64_t n1, n2, n3;
    (void)state;

    assert_int_equal(mqtt_table_create(4, &t), 0);
    s = open_s(t, "alice", "dev1", true, &owner_a, &existed, &taken);
    n1 = mqtt_sess_pub_number(s, 7, false);
    assert_int_equal(mqtt_sess_pub_number(s, 7, true), n1); /* DUP resend: same message */
    n2 = mqtt_sess_pub_number(s, 7, false);                 /* id reused after PUBACK */
    assert_true(n2 != n1);
    assert_int_equal(mqtt_sess_pub_number(s, 7, true), n2);
    n3 = mqtt_sess_pub_number(s, 9, true); /* DUP of an id never seen: new */
    assert_true(n3 != n1 && n3 != n2);
    /* Kept across a reconnect. */
    mqtt_sess_close(t, s, &owner_a);
    s = open_s(t, "alice", "dev1", true, &owner_b, &existed, &taken);
    assert_int_equal(mqtt_sess_pub_number(s, 7, true), n2);
    /* Forgotten after MQTT_RECENT newer publishes. */
    for (unsigned i = 0; i < MQTT_RECENT; i++)
        mqtt_sess_pub_number(s, (uint16_t)(100 + i), false);
    assert_true(mqtt_sess_pub_number(s, 7, true) > n3);
    mqtt_sess_close(t, s, &owner_b);
    mqtt_table_destroy(t);
}

static void test_subs(void **state)
{
    mqtt_table *t;
    mqtt_psess *s;
    bool existed;
    void *taken;
    mqtt_sub sub = {.kind = MQTT_SUB_CONV, .qos = 1};
    (void)state;

    assert_int_equal(mqtt_table_create(4, &t), 0);
    s = open_s(t, "alice", "dev1", true, &owner_a, &existed, &taken);
    for (unsigned i = 0; i < MQTT_SUBS_MAX; i++) {
        sub.flen = (uint16_t)snprintf(sub.filter, sizeof sub.filter, "conv/c%u", i);
        assert_int_equal(mqtt_sess_subscribe(s, &sub), 0);
    }
    sub.flen = (uint16_t)snprintf(sub.filter, sizeof sub.filter, "conv/more");
    assert_int_equal(mqtt_sess_subscribe(s, &sub), HERALD_ETOO_BIG);
    /* The same filter replaces (QoS 0 now), no new entry. */
    sub.flen = (uint16_t)snprintf(sub.filter, sizeof sub.filter, "conv/c3");
    sub.qos = 0;
    assert_int_equal(mqtt_sess_subscribe(s, &sub), 0);
    assert_int_equal(s->nsubs, MQTT_SUBS_MAX);
    mqtt_sess_unsubscribe(s, "conv/c3", 7);
    assert_int_equal(s->nsubs, MQTT_SUBS_MAX - 1);
    mqtt_sess_unsubscribe(s, "conv/c3", 7);
    assert_int_equal(s->nsubs, MQTT_SUBS_MAX - 1);
    mqtt_sess_close(t, s, &owner_a);
    mqtt_table_destroy(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resume_and_takeover), cmocka_unit_test(test_clean_discards),
        cmocka_unit_test(test_bound),               cmocka_unit_test(test_pub_numbers),
        cmocka_unit_test(test_subs),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
