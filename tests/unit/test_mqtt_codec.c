/* test_mqtt_codec.c — the MQTT 3.1.1 codec: every packet the listener
 * decodes with its strict checks, the size cap before allocation, UTF-8 and
 * topic rules, and the encoders byte for byte. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <herald/error.h>

#include "mqtt_codec.h"

/* Builds a packet: first byte, then the body, with its remaining length. */
typedef struct pkt {
    uint8_t b[1024];
    size_t n;
} pkt;

static void pk_begin(pkt *p, uint8_t first)
{
    p->n = 0;
    p->b[p->n++] = first;
    p->b[p->n++] = 0; /* patched by pk_end (bodies here are < 128 bytes) */
}
static void pk_u8(pkt *p, uint8_t v) { p->b[p->n++] = v; }
static void pk_u16(pkt *p, uint16_t v)
{
    pk_u8(p, (uint8_t)(v >> 8));
    pk_u8(p, (uint8_t)v);
}
static void pk_raw(pkt *p, const void *d, size_t n)
{
    memcpy(p->b + p->n, d, n);
    p->n += n;
}
static void pk_str(pkt *p, const char *s)
{
    pk_u16(p, (uint16_t)strlen(s));
    pk_raw(p, s, strlen(s));
}
static void pk_end(pkt *p)
{
    assert_true(p->n - 2 < 128);
    p->b[1] = (uint8_t)(p->n - 2);
}

static int decode(const pkt *p, mqtt_packet *m)
{
    size_t sz = 0;
    int rc = mqtt_peek(p->b, p->n, 4096, &sz);
    if (rc)
        return rc;
    assert_int_equal(sz, p->n);
    return mqtt_decode(p->b, p->n, m);
}

/* A CONNECT with the given flags byte and fields (NULL = left out). */
static void connect_pkt(pkt *p, const char *name, uint8_t level, uint8_t flags, const char *cid,
                        const char *wt, const char *wm, const char *user, const char *pass)
{
    pk_begin(p, MQTT_CONNECT << 4);
    pk_str(p, name);
    pk_u8(p, level);
    pk_u8(p, flags);
    pk_u16(p, 60);
    pk_str(p, cid);
    if (wt)
        pk_str(p, wt);
    if (wm)
        pk_str(p, wm);
    if (user)
        pk_str(p, user);
    if (pass)
        pk_str(p, pass);
    pk_end(p);
}

static void test_connect(void **state)
{
    mqtt_packet m;
    pkt p;
    (void)state;

    connect_pkt(&p, "MQTT", 4, 0xc2, "dev1", NULL, NULL, "alice", "tok.en");
    assert_int_equal(decode(&p, &m), 0);
    assert_int_equal(m.type, MQTT_CONNECT);
    assert_true(m.clean);
    assert_true(m.has_user && m.has_pass);
    assert_int_equal(m.keepalive, 60);
    assert_int_equal(m.client_id.len, 4);
    assert_memory_equal(m.client_id.ptr, "dev1", 4);
    assert_memory_equal(m.user.ptr, "alice", 5);
    assert_memory_equal(m.pass.ptr, "tok.en", 6);

    /* A will (flag 0x04, QoS 1 = 0x08, retain 0x20). */
    connect_pkt(&p, "MQTT", 4, 0x2e, "dev1", "conv/c1", "gone", NULL, NULL);
    assert_int_equal(decode(&p, &m), 0);
    assert_true(m.will && m.will_retain);
    assert_int_equal(m.will_qos, 1);
    assert_memory_equal(m.will_topic.ptr, "conv/c1", 7);

    /* Protocol name and level. */
    connect_pkt(&p, "MQTT", 5, 0x02, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EVERSION);
    connect_pkt(&p, "MQTT", 3, 0x02, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EVERSION);
    connect_pkt(&p, "MQIsdp", 3, 0x02, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EVERSION);
    connect_pkt(&p, "MQTX", 4, 0x02, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    /* Reserved flag bit; will QoS/retain without a will; will QoS 3;
     * password without user name. */
    connect_pkt(&p, "MQTT", 4, 0x03, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    connect_pkt(&p, "MQTT", 4, 0x0a, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    connect_pkt(&p, "MQTT", 4, 0x22, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    connect_pkt(&p, "MQTT", 4, 0x1e, "d", "t", "m", NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    connect_pkt(&p, "MQTT", 4, 0x42, "d", NULL, NULL, NULL, "pw");
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    /* A will topic with a wildcard. */
    connect_pkt(&p, "MQTT", 4, 0x06, "d", "conv/+", "m", NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_ETOPIC);
    /* Empty client id: fine with a clean session, not without. */
    connect_pkt(&p, "MQTT", 4, 0x02, "", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), 0);
    connect_pkt(&p, "MQTT", 4, 0x00, "", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_ECLIENT_ID);
    /* Fixed-header flags must be 0. */
    connect_pkt(&p, "MQTT", 4, 0x02, "d", NULL, NULL, NULL, NULL);
    p.b[0] |= 1;
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    /* A user name flag without the user name; trailing bytes. */
    connect_pkt(&p, "MQTT", 4, 0x82, "d", NULL, NULL, NULL, NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    connect_pkt(&p, "MQTT", 4, 0x02, "d", NULL, NULL, "extra", NULL);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    /* Invalid UTF-8 in the client id and the user name. */
    connect_pkt(&p, "MQTT", 4, 0x82, "d\xff", NULL, NULL, "u", NULL);
    assert_int_equal(decode(&p, &m), MQTT_EUTF8);
    connect_pkt(&p, "MQTT", 4, 0x82, "d", NULL, NULL, "\xc0\xaf", NULL);
    assert_int_equal(decode(&p, &m), MQTT_EUTF8);
}

static void test_client_id_cap(void **state)
{
    char id[MQTT_CLIENT_ID_MAX + 2];
    uint8_t buf[512];
    size_t n = 0;
    mqtt_packet m;
    (void)state;

    for (size_t len = MQTT_CLIENT_ID_MAX; len <= MQTT_CLIENT_ID_MAX + 1; len++) {
        memset(id, 'a', len);
        id[len] = '\0';
        n = 0;
        buf[n++] = MQTT_CONNECT << 4;
        buf[n++] = (uint8_t)(0x80 | ((12 + len) & 0x7f));
        buf[n++] = (uint8_t)((12 + len) >> 7);
        memcpy(buf + n, "\0\4MQTT\4\2\0\x3c", 10);
        n += 10;
        buf[n++] = 0;
        buf[n++] = (uint8_t)len;
        memcpy(buf + n, id, len);
        n += len;
        assert_int_equal(mqtt_decode(buf, n, &m),
                         len <= MQTT_CLIENT_ID_MAX ? 0 : MQTT_ECLIENT_ID);
    }
}

static void test_publish(void **state)
{
    mqtt_packet m;
    pkt p;
    (void)state;

    pk_begin(&p, MQTT_PUBLISH << 4 | 0x02); /* QoS 1 */
    pk_str(&p, "conv/c1");
    pk_u16(&p, 7);
    pk_raw(&p, "hello", 5);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), 0);
    assert_int_equal(m.qos, 1);
    assert_false(m.dup);
    assert_int_equal(m.pid, 7);
    assert_int_equal(m.payload_len, 5);
    assert_memory_equal(m.payload, "hello", 5);

    p.b[0] |= 0x08; /* DUP */
    assert_int_equal(decode(&p, &m), 0);
    assert_true(m.dup);
    p.b[0] |= 0x01; /* RETAIN decodes; the listener decides */
    assert_int_equal(decode(&p, &m), 0);
    assert_true(m.retain);

    /* QoS 0: no packet id, empty payload allowed. */
    pk_begin(&p, MQTT_PUBLISH << 4);
    pk_str(&p, "conv/c1");
    pk_end(&p);
    assert_int_equal(decode(&p, &m), 0);
    assert_int_equal(m.qos, 0);
    assert_int_equal(m.payload_len, 0);
    p.b[0] |= 0x08; /* DUP with QoS 0 */
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);

    /* QoS 3, QoS 2, packet id 0, wildcard and empty topics. */
    pk_begin(&p, MQTT_PUBLISH << 4 | 0x06);
    pk_str(&p, "conv/c1");
    pk_u16(&p, 1);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    p.b[0] = MQTT_PUBLISH << 4 | 0x04;
    assert_int_equal(decode(&p, &m), MQTT_EQOS2);
    p.b[0] = MQTT_PUBLISH << 4 | 0x02;
    p.b[p.n - 1] = 0;
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    const char *bad[] = {"conv/+", "conv/#", "", "#"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pk_begin(&p, MQTT_PUBLISH << 4);
        pk_str(&p, bad[i]);
        pk_end(&p);
        assert_int_equal(decode(&p, &m), MQTT_ETOPIC);
    }
    /* A topic length past the packet. */
    pk_begin(&p, MQTT_PUBLISH << 4);
    pk_u16(&p, 100);
    pk_raw(&p, "conv", 4);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    /* A NUL in a topic. */
    pk_begin(&p, MQTT_PUBLISH << 4);
    pk_u16(&p, 3);
    pk_raw(&p, "a\0b", 3);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), MQTT_EUTF8);
}

static void test_subscribe(void **state)
{
    mqtt_packet m;
    pkt p;
    (void)state;

    pk_begin(&p, MQTT_SUBSCRIBE << 4 | 0x02);
    pk_u16(&p, 9);
    pk_str(&p, "conv/c1");
    pk_u8(&p, 1);
    pk_str(&p, "conv/+");
    pk_u8(&p, 2);
    pk_str(&p, "#");
    pk_u8(&p, 0);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), 0);
    assert_int_equal(m.pid, 9);
    assert_int_equal(m.n_filters, 3);
    assert_int_equal(m.req_qos[0], 1);
    assert_int_equal(m.req_qos[1], 2);
    assert_memory_equal(m.filters[1].ptr, "conv/+", 6);

    p.b[0] = MQTT_SUBSCRIBE << 4; /* flags must be 0010 */
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    p.b[0] = MQTT_SUBSCRIBE << 4 | 0x02;
    p.b[p.n - 1] = 0x04; /* reserved bits of the QoS byte */
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    p.b[p.n - 1] = 3;
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);

    /* No filter at all; a missing QoS byte; bad filters. */
    pk_begin(&p, MQTT_SUBSCRIBE << 4 | 0x02);
    pk_u16(&p, 9);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    pk_begin(&p, MQTT_SUBSCRIBE << 4 | 0x02);
    pk_u16(&p, 9);
    pk_str(&p, "conv/c1");
    pk_end(&p);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
    const char *bad[] = {"conv/a+", "conv/#/x", "conv#", "+a", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        pk_begin(&p, MQTT_SUBSCRIBE << 4 | 0x02);
        pk_u16(&p, 9);
        pk_str(&p, bad[i]);
        pk_u8(&p, 1);
        pk_end(&p);
        assert_int_equal(decode(&p, &m), MQTT_ETOPIC);
    }
    const char *good[] = {"+", "+/+", "conv/+/x", "/#", "a//b", "conv/c1/#"};
    for (size_t i = 0; i < sizeof good / sizeof *good; i++)
        assert_true(mqtt_topic_filter_ok(good[i], strlen(good[i])));

    /* UNSUBSCRIBE: no QoS bytes. */
    pk_begin(&p, MQTT_UNSUBSCRIBE << 4 | 0x02);
    pk_u16(&p, 10);
    pk_str(&p, "conv/c1");
    pk_str(&p, "conv/+");
    pk_end(&p);
    assert_int_equal(decode(&p, &m), 0);
    assert_int_equal(m.type, MQTT_UNSUBSCRIBE);
    assert_int_equal(m.n_filters, 2);
    pk_begin(&p, MQTT_UNSUBSCRIBE << 4 | 0x02);
    pk_u16(&p, 10);
    pk_end(&p);
    assert_int_equal(decode(&p, &m), MQTT_EMALFORMED);
}

static void test_too_many_filters(void **state)
{
    uint8_t buf[4096];
    size_t n = 0, rl;
    mqtt_packet m;
    (void)state;

    for (unsigned count = MQTT_FILTERS_MAX; count <= MQTT_FILTERS_MAX + 1; count++) {
        rl = 2 + count * 4u;
        n = 0;
        buf[n++] = MQTT_SUBSCRIBE << 4 | 0x02;
        buf[n++] = (uint8_t)(0x80 | (rl & 0x7f));
        buf[n++] = (uint8_t)(rl >> 7);
        buf[n++] = 0;
        buf[n++] = 1;
        for (unsigned i = 0; i < count; i++) {
            memcpy(buf + n, "\0\1x\0", 4);
            n += 4;
        }
        assert_int_equal(mqtt_decode(buf, n, &m), count <= MQTT_FILTERS_MAX ? 0 : MQTT_EFILTERS);
    }
}

static void test_small_packets(void **state)
{
    mqtt_packet m;
    uint8_t ping[] = {0xc0, 0}, disc[] = {0xe0, 0}, puback[] = {0x40, 2, 0, 5};
    uint8_t bad_ping[] = {0xc1, 0}, long_ping[] = {0xc0, 1, 0}, puback0[] = {0x40, 2, 0, 0};
    uint8_t pubrel[] = {0x62, 2, 0, 1}, connack[] = {0x20, 2, 0, 0}, zero[] = {0x00, 0},
            fifteen[] = {0xf0, 0};
    (void)state;

    assert_int_equal(mqtt_decode(ping, 2, &m), 0);
    assert_int_equal(m.type, MQTT_PINGREQ);
    assert_int_equal(mqtt_decode(disc, 2, &m), 0);
    assert_int_equal(m.type, MQTT_DISCONNECT);
    assert_int_equal(mqtt_decode(puback, 4, &m), 0);
    assert_int_equal(m.pid, 5);
    assert_int_equal(mqtt_decode(bad_ping, 2, &m), MQTT_EMALFORMED);
    assert_int_equal(mqtt_decode(long_ping, 3, &m), MQTT_EMALFORMED);
    assert_int_equal(mqtt_decode(puback0, 4, &m), MQTT_EMALFORMED);
    assert_int_equal(mqtt_decode(pubrel, 4, &m), MQTT_EQOS2);
    assert_int_equal(mqtt_decode(connack, 4, &m), MQTT_ETYPE);
    assert_int_equal(mqtt_decode(zero, 2, &m), MQTT_ETYPE);
    assert_int_equal(mqtt_decode(fifteen, 2, &m), MQTT_ETYPE);
    /* Truncated, and bytes past the packet. */
    assert_int_equal(mqtt_decode(puback, 3, &m), MQTT_EPARTIAL);
    assert_int_equal(mqtt_decode(ping, 1, &m), MQTT_EPARTIAL);
    assert_int_equal(mqtt_decode(long_ping, 3, &m), MQTT_EMALFORMED);
}

static void test_peek_cap(void **state)
{
    size_t sz = 99;
    uint8_t huge[] = {0x30, 0xff, 0xff, 0xff, 0x7f};   /* 268,435,455 */
    uint8_t five[] = {0x30, 0xff, 0xff, 0xff, 0xff, 0x01};
    uint8_t two[] = {0x30, 0x80, 0x01};                 /* 128 */
    (void)state;

    /* The cap is known from the header alone: nothing is buffered past it. */
    assert_int_equal(mqtt_peek(huge, sizeof huge, 1u << 20, &sz), MQTT_ETOO_BIG);
    assert_int_equal(mqtt_peek(huge, 2, 1u << 20, &sz), 0);
    assert_int_equal(sz, 0); /* length not complete yet */
    assert_int_equal(mqtt_peek(five, sizeof five, SIZE_MAX, &sz), MQTT_EMALFORMED);
    assert_int_equal(mqtt_peek(two, 3, 1u << 20, &sz), 0);
    assert_int_equal(sz, 131);
    assert_int_equal(mqtt_peek(two, 3, 130, &sz), MQTT_ETOO_BIG);
    assert_int_equal(mqtt_peek(two, 3, 131, &sz), 0);
    assert_int_equal(mqtt_peek(two, 1, 131, &sz), 0);
    assert_int_equal(sz, 0);
}

static void test_utf8(void **state)
{
    (void)state;
    assert_true(mqtt_utf8_ok("conv/\xe4\xbc\x9a\xe8\xae\xae", 11)); /* 会议 */
    assert_true(mqtt_utf8_ok("\xf0\x9f\x98\x80", 4));
    assert_false(mqtt_utf8_ok("\xed\xa0\x80", 3));     /* U+D800 */
    assert_false(mqtt_utf8_ok("\xe0\x80\xaf", 3));     /* overlong */
    assert_false(mqtt_utf8_ok("\xf4\x90\x80\x80", 4)); /* > U+10FFFF */
    assert_false(mqtt_utf8_ok("\xe4\xbc", 2));         /* truncated */
    assert_false(mqtt_utf8_ok("\x80", 1));
    assert_false(mqtt_utf8_ok("a\0", 2));
    assert_true(mqtt_topic_name_ok("conv/c1", 7));
    assert_true(mqtt_topic_name_ok("/", 1));
    assert_false(mqtt_topic_name_ok("a+", 2));
}

static void test_encoders(void **state)
{
    herald_buf b = {0};
    uint8_t codes[] = {1, 0, MQTT_SUBACK_FAILURE}, big[300];
    mqtt_packet m;
    size_t sz;
    (void)state;

    assert_int_equal(mqtt_put_connack(&b, true, 0), 0);
    assert_memory_equal(b.data, "\x20\x02\x01\x00", 4);
    b.len = 0;
    assert_int_equal(mqtt_put_connack(&b, false, MQTT_CONNACK_BAD_CREDENTIALS), 0);
    assert_memory_equal(b.data, "\x20\x02\x00\x04", 4);
    assert_int_equal(mqtt_put_connack(&b, true, 4), HERALD_EINVAL);
    assert_int_equal(mqtt_put_connack(&b, false, 6), HERALD_EINVAL);
    b.len = 0;
    assert_int_equal(mqtt_put_puback(&b, 0x1234), 0);
    assert_memory_equal(b.data, "\x40\x02\x12\x34", 4);
    assert_int_equal(mqtt_put_puback(&b, 0), HERALD_EINVAL);
    b.len = 0;
    assert_int_equal(mqtt_put_unsuback(&b, 3), 0);
    assert_memory_equal(b.data, "\xb0\x02\x00\x03", 4);
    b.len = 0;
    assert_int_equal(mqtt_put_suback(&b, 3, codes, 3), 0);
    assert_int_equal(b.len, 7);
    assert_memory_equal(b.data, "\x90\x05\x00\x03\x01\x00\x80", 7);
    codes[1] = 3;
    assert_int_equal(mqtt_put_suback(&b, 3, codes, 3), HERALD_EINVAL);
    b.len = 0;
    assert_int_equal(mqtt_put_pingresp(&b), 0);
    assert_memory_equal(b.data, "\xd0\x00", 2);

    /* PUBLISH QoS 1, a 2-byte remaining length, decoded back. */
    memset(big, 'x', sizeof big);
    b.len = 0;
    assert_int_equal(mqtt_put_publish(&b, "conv/c1", 7, 1, true, false, 42, big, sizeof big), 0);
    assert_int_equal(b.len, 3 + 2 + 7 + 2 + sizeof big);
    assert_int_equal(b.data[0], 0x3a);
    assert_int_equal(mqtt_peek(b.data, b.len, 1u << 20, &sz), 0);
    assert_int_equal(sz, b.len);
    assert_int_equal(mqtt_decode(b.data, b.len, &m), 0);
    assert_int_equal(m.pid, 42);
    assert_true(m.dup);
    assert_int_equal(m.payload_len, sizeof big);
    assert_memory_equal(m.topic.ptr, "conv/c1", 7);
    /* QoS 0: no packet id. */
    b.len = 0;
    assert_int_equal(mqtt_put_publish(&b, "conv/c1", 7, 0, false, false, 0, "hi", 2), 0);
    assert_memory_equal(b.data, "\x30\x0b\x00\x07" "conv/c1" "hi", 13);
    assert_int_equal(mqtt_put_publish(&b, "conv/c1", 7, 1, false, false, 0, "hi", 2),
                     HERALD_EINVAL);
    assert_int_equal(mqtt_put_publish(&b, "conv/c1", 7, 2, false, false, 1, "hi", 2),
                     HERALD_EINVAL);
    assert_int_equal(mqtt_put_publish(&b, "", 0, 0, false, false, 0, "hi", 2), HERALD_EINVAL);
    assert_int_equal(mqtt_put_publish(&b, "t", 1, 0, false, false, 0, big, MQTT_REMAINING_MAX),
                     HERALD_ETOO_BIG);
    herald_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_connect),        cmocka_unit_test(test_client_id_cap),
        cmocka_unit_test(test_publish),        cmocka_unit_test(test_subscribe),
        cmocka_unit_test(test_too_many_filters), cmocka_unit_test(test_small_packets),
        cmocka_unit_test(test_peek_cap),       cmocka_unit_test(test_utf8),
        cmocka_unit_test(test_encoders),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
