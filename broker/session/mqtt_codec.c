/* mqtt_codec.c — bounded MQTT 3.1.1 packet codec, server side. See mqtt_codec.h. */
#include "mqtt_codec.h"

#include <herald/error.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

const char *mqtt_err_text(int err)
{
    switch (err) {
#define MQTT_ERR_TEXT_(name, num, text) \
    case num:                           \
        return text;
        MQTT_ERRORS(MQTT_ERR_TEXT_)
#undef MQTT_ERR_TEXT_
    default:
        return "unknown error";
    }
}

int mqtt_peek(const uint8_t *p, size_t len, size_t max_packet, size_t *size)
{
    uint32_t rl = 0;
    size_t i;

    *size = 0;
    if (len < 2)
        return 0;
    for (i = 1; i < MQTT_HEADER_MAX; i++) {
        if (i >= len)
            return 0;
        rl |= (uint32_t)(p[i] & 0x7fu) << (7 * (i - 1));
        if (!(p[i] & 0x80u))
            break;
    }
    if (i == MQTT_HEADER_MAX)
        return MQTT_EMALFORMED; /* a fifth length byte */
    if ((size_t)rl + i + 1 > max_packet)
        return MQTT_ETOO_BIG;
    *size = (size_t)rl + i + 1;
    return 0;
}

bool mqtt_utf8_ok(const char *s, size_t len)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t i = 0;

    while (i < len) {
        uint8_t c = p[i];
        uint32_t cp;
        size_t n;
        if (c == 0)
            return false; /* [MQTT-1.5.3-2] */
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            n = 1;
            cp = c & 0x1fu;
        } else if (c >= 0xe0 && c <= 0xef) {
            n = 2;
            cp = c & 0x0fu;
        } else if (c >= 0xf0 && c <= 0xf4) {
            n = 3;
            cp = c & 0x07u;
        } else {
            return false; /* continuation byte, overlong lead, or beyond U+10FFFF */
        }
        if (len - i <= n)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((p[i + k] & 0xc0u) != 0x80u)
                return false;
            cp = (cp << 6) | (p[i + k] & 0x3fu);
        }
        if ((n == 2 && cp < 0x800) || (n == 3 && (cp < 0x10000 || cp > 0x10ffff)))
            return false; /* overlong, or out of range */
        if (cp >= 0xd800 && cp <= 0xdfff)
            return false; /* surrogates [MQTT-1.5.3-1] */
        i += n + 1;
    }
    return true;
}

bool mqtt_topic_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > 65535 || !mqtt_utf8_ok(s, len))
        return false;
    return !memchr(s, '+', len) && !memchr(s, '#', len); /* [MQTT-3.3.2-2] */
}

bool mqtt_topic_filter_ok(const char *s, size_t len)
{
    if (len == 0 || len > 65535 || !mqtt_utf8_ok(s, len))
        return false;
    for (size_t i = 0; i < len; i++) {
        bool level_start = i == 0 || s[i - 1] == '/';
        bool level_end = i + 1 == len || s[i + 1] == '/';
        if (s[i] == '+' && !(level_start && level_end))
            return false; /* [MQTT-4.7.1-3] */
        if (s[i] == '#' && !(level_start && i + 1 == len))
            return false; /* [MQTT-4.7.1-2] */
    }
    return true;
}

/* A cursor over the variable header and payload. */
typedef struct rd {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left */
} rd;

static bool rd_u8(rd *r, uint8_t *v)
{
    if (r->left < 1)
        return false;
    *v = *r->p++;
    r->left--;
    return true;
}

static bool rd_u16(rd *r, uint16_t *v)
{
    if (r->left < 2)
        return false;
    *v = (uint16_t)(r->p[0] << 8 | r->p[1]);
    r->p += 2;
    r->left -= 2;
    return true;
}

/* A 2-byte length and that many bytes (not checked as UTF-8). */
static bool rd_bytes(rd *r, mqtt_str *s)
{
    uint16_t n;
    if (!rd_u16(r, &n) || r->left < n)
        return false;
    s->ptr = (const char *)r->p;
    s->len = n;
    r->p += n;
    r->left -= n;
    return true;
}

/* A UTF-8 string: MQTT_EMALFORMED (short) or MQTT_EUTF8, else 0. */
static int rd_str(rd *r, mqtt_str *s)
{
    if (!rd_bytes(r, s))
        return MQTT_EMALFORMED;
    return mqtt_utf8_ok(s->ptr, s->len) ? 0 : MQTT_EUTF8;
}

static int dec_connect(uint8_t flags, rd *r, mqtt_packet *m)
{
    mqtt_str name;
    uint8_t level, cf;
    int rc;

    if (flags != 0)
        return MQTT_EMALFORMED;
    if (!rd_bytes(r, &name) || !rd_u8(r, &level) || !rd_u8(r, &cf) || !rd_u16(r, &m->keepalive))
        return MQTT_EMALFORMED;
    /* [MQTT-3.1.2-1]: another protocol name may be disconnected at once;
     * 3.1's "MQIsdp" with level 3 is answered with return code 1. */
    if (name.len == 6 && memcmp(name.ptr, "MQIsdp", 6) == 0)
        return MQTT_EVERSION;
    if (name.len != 4 || memcmp(name.ptr, "MQTT", 4) != 0)
        return MQTT_EMALFORMED;
    if (level != 4)
        return MQTT_EVERSION; /* [MQTT-3.1.2-2] */
    if (cf & 0x01u)
        return MQTT_EMALFORMED; /* reserved [MQTT-3.1.2-3] */
    m->clean = cf & 0x02u;
    m->will = cf & 0x04u;
    m->will_qos = (cf >> 3) & 0x03u;
    m->will_retain = cf & 0x20u;
    m->has_pass = cf & 0x40u;
    m->has_user = cf & 0x80u;
    if (!m->will && (m->will_qos || m->will_retain))
        return MQTT_EMALFORMED; /* [MQTT-3.1.2-13], [MQTT-3.1.2-15] */
    if (m->will_qos == 3)
        return MQTT_EMALFORMED; /* [MQTT-3.1.2-14] */
    if (m->has_pass && !m->has_user)
        return MQTT_EMALFORMED; /* [MQTT-3.1.2-22] */
    if ((rc = rd_str(r, &m->client_id)) != 0)
        return rc;
    if (m->will) {
        if ((rc = rd_str(r, &m->will_topic)) != 0)
            return rc;
        if (!mqtt_topic_name_ok(m->will_topic.ptr, m->will_topic.len))
            return MQTT_ETOPIC;
        if (!rd_bytes(r, &m->will_msg))
            return MQTT_EMALFORMED;
    }
    if (m->has_user && (rc = rd_str(r, &m->user)) != 0)
        return rc;
    if (m->has_pass && !rd_bytes(r, &m->pass))
        return MQTT_EMALFORMED;
    if (r->left)
        return MQTT_EMALFORMED;
    /* [MQTT-3.1.3-8]: an empty id needs a clean session; ours are bounded. */
    if ((m->client_id.len == 0 && !m->clean) || m->client_id.len > MQTT_CLIENT_ID_MAX)
        return MQTT_ECLIENT_ID;
    return 0;
}

static int dec_publish(uint8_t flags, rd *r, mqtt_packet *m)
{
    int rc;

    m->dup = flags & 0x08u;
    m->qos = (flags >> 1) & 0x03u;
    m->retain = flags & 0x01u;
    if (m->qos == 3)
        return MQTT_EMALFORMED; /* [MQTT-3.3.1-4] */
    if (m->qos == 0 && m->dup)
        return MQTT_EMALFORMED; /* [MQTT-3.3.1-2] */
    if ((rc = rd_str(r, &m->topic)) != 0)
        return rc;
    if (!mqtt_topic_name_ok(m->topic.ptr, m->topic.len))
        return MQTT_ETOPIC;
    if (m->qos > 0 && (!rd_u16(r, &m->pid) || m->pid == 0))
        return MQTT_EMALFORMED; /* [MQTT-2.3.1-1] */
    if (m->qos == 2)
        return MQTT_EQOS2;
    m->payload = r->p;
    m->payload_len = r->left;
    return 0;
}

/* SUBSCRIBE (with QoS bytes) or UNSUBSCRIBE. */
static int dec_filters(uint8_t flags, rd *r, mqtt_packet *m, bool sub)
{
    int rc;

    if (flags != 0x02u)
        return MQTT_EMALFORMED; /* [MQTT-3.8.1-1], [MQTT-3.10.1-1] */
    if (!rd_u16(r, &m->pid) || m->pid == 0)
        return MQTT_EMALFORMED;
    if (r->left == 0)
        return MQTT_EMALFORMED; /* at least one filter [MQTT-3.8.3-3], [MQTT-3.10.3-2] */
    while (r->left) {
        mqtt_str f;
        if (m->n_filters == MQTT_FILTERS_MAX)
            return MQTT_EFILTERS;
        if ((rc = rd_str(r, &f)) != 0)
            return rc;
        if (!mqtt_topic_filter_ok(f.ptr, f.len))
            return MQTT_ETOPIC;
        if (sub) {
            uint8_t q;
            if (!rd_u8(r, &q) || q > 2)
                return MQTT_EMALFORMED; /* reserved bits / QoS 3 [MQTT-3.8.3-4] */
            m->req_qos[m->n_filters] = q;
        }
        m->filters[m->n_filters++] = f;
    }
    return 0;
}

int mqtt_decode(const uint8_t *p, size_t size, mqtt_packet *out)
{
    size_t hdr = 0;
    uint8_t type, flags;
    rd r;
    int rc;

    rc = mqtt_peek(p, size, SIZE_MAX, &hdr);
    if (rc)
        return rc;
    if (hdr == 0 || hdr > size)
        return MQTT_EPARTIAL;
    if (hdr < size)
        return MQTT_EMALFORMED; /* bytes past the remaining length */
    memset(out, 0, offsetof(mqtt_packet, filters));
    type = p[0] >> 4;
    flags = p[0] & 0x0fu;
    out->type = type;
    /* Skip the fixed header: type byte and its length bytes. */
    for (hdr = 1; p[hdr] & 0x80u; hdr++)
        ;
    hdr++;
    r = (rd){.p = p + hdr, .left = size - hdr};
    switch (type) {
    case MQTT_CONNECT:
        return dec_connect(flags, &r, out);
    case MQTT_PUBLISH:
        return dec_publish(flags, &r, out);
    case MQTT_PUBACK:
        if (flags != 0 || r.left != 2 || !rd_u16(&r, &out->pid) || out->pid == 0)
            return MQTT_EMALFORMED;
        return 0;
    case MQTT_SUBSCRIBE:
        return dec_filters(flags, &r, out, true);
    case MQTT_UNSUBSCRIBE:
        return dec_filters(flags, &r, out, false);
    case MQTT_PINGREQ:
    case MQTT_DISCONNECT:
        return flags == 0 && r.left == 0 ? 0 : MQTT_EMALFORMED;
    case MQTT_PUBREC:
    case MQTT_PUBREL:
    case MQTT_PUBCOMP:
        return MQTT_EQOS2; /* the QoS 2 flow: never granted here */
    default:
        return MQTT_ETYPE; /* 0, 15 reserved; CONNACK, SUBACK, … go server → client */
    }
}

/* ---- encoders --------------------------------------------------------- */

/* The fixed header: type/flags byte and the remaining length. */
static int put_header(herald_buf *out, uint8_t first, size_t rl)
{
    uint8_t h[MQTT_HEADER_MAX];
    size_t n = 0;

    if (rl > MQTT_REMAINING_MAX)
        return HERALD_ETOO_BIG;
    h[n++] = first;
    do {
        uint8_t b = rl & 0x7fu;
        rl >>= 7;
        h[n++] = (uint8_t)(b | (rl ? 0x80u : 0));
    } while (rl);
    return herald_buf_append(out, h, n);
}

int mqtt_put_connack(herald_buf *out, bool session_present, uint8_t code)
{
    uint8_t b[4] = {MQTT_CONNACK << 4, 2, session_present ? 1 : 0, code};
    if (code > MQTT_CONNACK_NOT_AUTHORIZED || (code && session_present))
        return HERALD_EINVAL; /* [MQTT-3.2.2-4] */
    return herald_buf_append(out, b, sizeof b);
}

int mqtt_put_publish(herald_buf *out, const char *topic, size_t topic_len, uint8_t qos, bool dup,
                     bool retain, uint16_t pid, const void *payload, size_t len)
{
    size_t rl = 2 + topic_len + (qos ? 2 : 0) + len;
    size_t mark = out->len;
    uint8_t tl[2] = {(uint8_t)(topic_len >> 8), (uint8_t)topic_len};
    uint8_t id[2] = {(uint8_t)(pid >> 8), (uint8_t)pid};
    int rc;

    if (!topic || topic_len == 0 || topic_len > 65535 || qos > 1 || (qos && !pid) ||
        (!qos && dup) || (len && !payload))
        return HERALD_EINVAL;
    if (len > MQTT_REMAINING_MAX || rl > MQTT_REMAINING_MAX)
        return HERALD_ETOO_BIG;
    rc = herald_buf_reserve(out, MQTT_HEADER_MAX + rl);
    if (rc)
        return rc;
    if ((rc = put_header(out, (uint8_t)(MQTT_PUBLISH << 4 | (dup ? 0x08u : 0) | qos << 1 |
                                        (retain ? 1u : 0)),
                         rl)) != 0 ||
        (rc = herald_buf_append(out, tl, 2)) != 0 ||
        (rc = herald_buf_append(out, topic, topic_len)) != 0 ||
        (qos && (rc = herald_buf_append(out, id, 2)) != 0) ||
        (len && (rc = herald_buf_append(out, payload, len)) != 0)) {
        out->len = mark;
        return rc;
    }
    return 0;
}

static int put_ack(herald_buf *out, uint8_t type, uint16_t pid)
{
    uint8_t b[4] = {(uint8_t)(type << 4), 2, (uint8_t)(pid >> 8), (uint8_t)pid};
    if (pid == 0)
        return HERALD_EINVAL;
    return herald_buf_append(out, b, sizeof b);
}

int mqtt_put_puback(herald_buf *out, uint16_t pid) { return put_ack(out, MQTT_PUBACK, pid); }

int mqtt_put_unsuback(herald_buf *out, uint16_t pid) { return put_ack(out, MQTT_UNSUBACK, pid); }

int mqtt_put_suback(herald_buf *out, uint16_t pid, const uint8_t *codes, size_t n)
{
    uint8_t h[4] = {MQTT_SUBACK << 4, (uint8_t)(2 + n), (uint8_t)(pid >> 8), (uint8_t)pid};
    size_t mark = out->len;
    int rc;

    if (pid == 0 || n == 0 || n > MQTT_FILTERS_MAX || !codes)
        return HERALD_EINVAL;
    for (size_t i = 0; i < n; i++)
        if (codes[i] > 2 && codes[i] != MQTT_SUBACK_FAILURE)
            return HERALD_EINVAL;
    /* 2 + 64 < 128: the remaining length is one byte. */
    if ((rc = herald_buf_append(out, h, sizeof h)) != 0 ||
        (rc = herald_buf_append(out, codes, n)) != 0) {
        out->len = mark;
        return rc;
    }
    return 0;
}

int mqtt_put_pingresp(herald_buf *out)
{
    uint8_t b[2] = {MQTT_PINGRESP << 4, 0};
    return herald_buf_append(out, b, sizeof b);
}
