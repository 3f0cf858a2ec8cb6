/*
 * mqtt_codec.h — a bounded MQTT 3.1.1 packet codec for the server side of
 * the session tier's MQTT listener (OASIS MQTT 3.1.1, 2014).
 *
 * Decoding is two steps. mqtt_peek reads the fixed header of the bytes
 * received so far and returns the whole packet's size once the remaining
 * length is known, checked against the caller's cap BEFORE anything is
 * allocated or buffered past it (a 5-byte header cannot ask for 256 MiB).
 * mqtt_decode then validates one whole packet strictly: fixed-header flags
 * of every type, reserved bits, the protocol name and level, string lengths
 * against the bytes left, UTF-8 (well-formed, no U+0000, no surrogates),
 * topic names without wildcards, filters with '+' and '#' only as whole
 * levels ('#' last), non-zero packet ids, and no trailing bytes. Only the
 * packets a client sends to a server that this listener serves decode:
 * CONNECT, PUBLISH (QoS 0 and 1), PUBACK, SUBSCRIBE, UNSUBSCRIBE, PINGREQ,
 * DISCONNECT. Everything else gets its own error, so the caller can say
 * why it closes: QoS 2 PUBLISH and PUBREC / PUBREL / PUBCOMP are refused
 * (MQTT_EQOS2: this listener never grants QoS 2, so a client that sends it
 * is told so and disconnected), server-to-client types from a client and
 * the reserved types 0 and 15 are protocol violations.
 *
 * A decoded packet points into the caller's bytes (strings are NOT NUL
 * terminated): it is valid while those bytes are. Encoders append to a
 * herald_buf and fail only on HERALD_ENOMEM or a field out of range
 * (HERALD_EINVAL / HERALD_ETOO_BIG). Reentrant; no global state; any
 * thread (each call on its own data).
 */
#ifndef HERALD_MQTT_CODEC_H
#define HERALD_MQTT_CODEC_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Packet types (fixed header, high nibble). */
enum {
    MQTT_CONNECT = 1,
    MQTT_CONNACK = 2,
    MQTT_PUBLISH = 3,
    MQTT_PUBACK = 4,
    MQTT_PUBREC = 5,
    MQTT_PUBREL = 6,
    MQTT_PUBCOMP = 7,
    MQTT_SUBSCRIBE = 8,
    MQTT_SUBACK = 9,
    MQTT_UNSUBSCRIBE = 10,
    MQTT_UNSUBACK = 11,
    MQTT_PINGREQ = 12,
    MQTT_PINGRESP = 13,
    MQTT_DISCONNECT = 14,
};

/* CONNACK return codes (3.1.1 table 3.1). */
enum {
    MQTT_CONNACK_ACCEPTED = 0,
    MQTT_CONNACK_BAD_VERSION = 1,    /* unacceptable protocol level */
    MQTT_CONNACK_BAD_CLIENT_ID = 2,  /* identifier rejected */
    MQTT_CONNACK_UNAVAILABLE = 3,    /* server unavailable */
    MQTT_CONNACK_BAD_CREDENTIALS = 4, /* bad user name or password */
    MQTT_CONNACK_NOT_AUTHORIZED = 5, /* not authorized */
};

#define MQTT_SUBACK_FAILURE 0x80u
#define MQTT_REMAINING_MAX 268435455u /* the largest 4-byte remaining length */
#define MQTT_HEADER_MAX 5u            /* fixed header: type byte + up to 4 length bytes */
#define MQTT_FILTERS_MAX 64u          /* topic filters in one SUBSCRIBE / UNSUBSCRIBE (ours) */
#define MQTT_CLIENT_ID_MAX 128u       /* bytes of a client id we accept (3.1.1 requires 23) */

/* Decode results: 0 or one of these (each with a text, mqtt_err_text). */
#define MQTT_ERRORS(X)                                                                 \
    X(MQTT_EPARTIAL, 1, "incomplete packet")                                           \
    X(MQTT_ETOO_BIG, 2, "packet exceeds the size limit")                               \
    X(MQTT_EMALFORMED, 3, "malformed packet")                                          \
    X(MQTT_EVERSION, 4, "unsupported protocol level (only MQTT 3.1.1, level 4)")       \
    X(MQTT_ECLIENT_ID, 5, "client identifier rejected")                                \
    X(MQTT_EQOS2, 6, "QoS 2 is not supported")                                         \
    X(MQTT_ETYPE, 7, "packet type not allowed from a client")                          \
    X(MQTT_EFILTERS, 8, "too many topic filters in one packet")                        \
    X(MQTT_EUTF8, 9, "string is not valid MQTT UTF-8")                                 \
    X(MQTT_ETOPIC, 10, "invalid topic name or filter")

enum {
#define MQTT_ERR_ENUM_(name, num, text) name = num,
    MQTT_ERRORS(MQTT_ERR_ENUM_)
#undef MQTT_ERR_ENUM_
};

/* The error's text ("unknown error" for anything else); static storage. */
const char *mqtt_err_text(int err);

/* A length-delimited string inside the decoded bytes (not NUL terminated). */
typedef struct mqtt_str {
    const char *ptr; /* NULL when absent */
    uint16_t len;    /* bytes */
} mqtt_str;

/* One decoded packet. Only the fields of its type are meaningful. */
typedef struct mqtt_packet {
    uint8_t type;            /* MQTT_CONNECT … */
    /* CONNECT */
    bool clean;              /* clean session flag */
    bool will;               /* a will message is present (will_*) */
    uint8_t will_qos;        /* its QoS (0..2) */
    bool will_retain;        /* its retain flag */
    bool has_user;           /* user name present */
    bool has_pass;           /* password present */
    uint16_t keepalive;      /* seconds, 0 = none */
    mqtt_str client_id;      /* may be empty (len 0) with clean = true */
    mqtt_str will_topic;     /* when will */
    mqtt_str will_msg;       /* when will (binary) */
    mqtt_str user;           /* when has_user */
    mqtt_str pass;           /* when has_pass (binary) */
    /* PUBLISH */
    bool dup;                /* DUP flag (only with QoS 1) */
    uint8_t qos;             /* 0 or 1 (2 is MQTT_EQOS2) */
    bool retain;             /* RETAIN flag */
    mqtt_str topic;          /* topic name: non-empty, no wildcards */
    const uint8_t *payload;  /* application message */
    size_t payload_len;      /* its bytes (may be 0) */
    /* PUBLISH QoS 1, PUBACK, SUBSCRIBE, UNSUBSCRIBE */
    uint16_t pid;            /* packet identifier, non-zero */
    /* SUBSCRIBE (with req_qos) and UNSUBSCRIBE */
    uint16_t n_filters;                 /* 1..MQTT_FILTERS_MAX */
    mqtt_str filters[MQTT_FILTERS_MAX]; /* topic filters */
    uint8_t req_qos[MQTT_FILTERS_MAX];  /* requested QoS 0..2 (SUBSCRIBE) */
} mqtt_packet;

/* Looks at the first len bytes of a stream. *size = the whole packet's
 * bytes (fixed header included) once its remaining length is complete, 0
 * while more bytes are needed. Returns 0, MQTT_ETOO_BIG when the packet
 * would exceed max_packet bytes (known from the header alone), or
 * MQTT_EMALFORMED (a fifth length byte). 3.1.1 does not require the
 * shortest length encoding; a longer one is accepted. */
int mqtt_peek(const uint8_t *p, size_t len, size_t max_packet, size_t *size);

/* Decodes one whole packet p[0..size) (as sized by mqtt_peek). 0 and *out
 * filled (pointing into p), or an MQTT_E* error; *out is then unspecified. */
int mqtt_decode(const uint8_t *p, size_t size, mqtt_packet *out);

/* True when s is MQTT UTF-8: well-formed, no U+0000, no surrogates. */
bool mqtt_utf8_ok(const char *s, size_t len);
/* True for a valid topic name (1..65535 bytes, no '+' or '#'). */
bool mqtt_topic_name_ok(const char *s, size_t len);
/* True for a valid topic filter ('+' a whole level, '#' a whole last level). */
bool mqtt_topic_filter_ok(const char *s, size_t len);

/* Encoders (server → client): each appends one packet to out. */
int mqtt_put_connack(herald_buf *out, bool session_present, uint8_t code);
/* topic: 1..65535 bytes; qos 0 or 1 (pid ignored for 0, non-zero for 1);
 * the packet must fit MQTT_REMAINING_MAX (else HERALD_ETOO_BIG). */
int mqtt_put_publish(herald_buf *out, const char *topic, size_t topic_len, uint8_t qos, bool dup,
                     bool retain, uint16_t pid, const void *payload, size_t len);
int mqtt_put_puback(herald_buf *out, uint16_t pid);
/* codes: n granted QoS values or MQTT_SUBACK_FAILURE, 1..MQTT_FILTERS_MAX. */
int mqtt_put_suback(herald_buf *out, uint16_t pid, const uint8_t *codes, size_t n);
int mqtt_put_unsuback(herald_buf *out, uint16_t pid);
int mqtt_put_pingresp(herald_buf *out);

#endif
