/* fuzz_mqtt.c — the MQTT 3.1.1 codec (broker/session/mqtt_codec.h) on a
 * byte stream: packets are peeked under a small cap and decoded one after
 * another; every decoded field must lie inside the input, and a decoded
 * PUBLISH / PUBACK re-encodes and decodes to the same packet. */
#include <herald/protocol.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mqtt_codec.h"

#define FUZZ_CAP 4096u

static void inside(const uint8_t *d, size_t n, const void *p, size_t len)
{
    const uint8_t *q = p;
    if (len && (!q || q < d || q + len > d + n))
        abort();
}

static void check_str(const uint8_t *d, size_t n, mqtt_str s) { inside(d, n, s.ptr, s.len); }

static void round_trip(const mqtt_packet *m)
{
    herald_buf b = {0};
    mqtt_packet m2;
    size_t sz = 0;
    int rc;

    if (m->type == MQTT_PUBLISH)
        rc = mqtt_put_publish(&b, m->topic.ptr, m->topic.len, m->qos, m->dup, m->retain, m->pid,
                              m->payload, m->payload_len);
    else
        rc = mqtt_put_puback(&b, m->pid);
    if (rc != 0)
        abort();
    if (mqtt_peek(b.data, b.len, SIZE_MAX, &sz) != 0 || sz != b.len ||
        mqtt_decode(b.data, b.len, &m2) != 0 || m2.type != m->type || m2.pid != m->pid)
        abort();
    if (m->type == MQTT_PUBLISH &&
        (m2.qos != m->qos || m2.dup != m->dup || m2.retain != m->retain ||
         m2.topic.len != m->topic.len || memcmp(m2.topic.ptr, m->topic.ptr, m->topic.len) ||
         m2.payload_len != m->payload_len ||
         (m->payload_len && memcmp(m2.payload, m->payload, m->payload_len))))
        abort();
    herald_buf_free(&b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t off = 0;
    static mqtt_packet m; /* ~1.2 KB: off the fuzzer's stack */

    while (off < size) {
        size_t sz = 0;
        const uint8_t *p = data + off;
        if (mqtt_peek(p, size - off, FUZZ_CAP, &sz) != 0 || sz == 0 || sz > size - off)
            break;
        if (mqtt_decode(p, sz, &m) == 0) {
            check_str(p, sz, m.client_id);
            check_str(p, sz, m.will_topic);
            check_str(p, sz, m.will_msg);
            check_str(p, sz, m.user);
            check_str(p, sz, m.pass);
            check_str(p, sz, m.topic);
            inside(p, sz, m.payload, m.payload_len);
            if (m.n_filters > MQTT_FILTERS_MAX)
                abort();
            for (uint16_t i = 0; i < m.n_filters; i++) {
                check_str(p, sz, m.filters[i]);
                if (!mqtt_topic_filter_ok(m.filters[i].ptr, m.filters[i].len))
                    abort();
            }
            if (m.type == MQTT_PUBLISH && !mqtt_topic_name_ok(m.topic.ptr, m.topic.len))
                abort();
            if (m.type == MQTT_PUBLISH || m.type == MQTT_PUBACK)
                round_trip(&m);
        }
        off += sz;
    }
    return 0;
}
