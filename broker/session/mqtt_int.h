/*
 * mqtt_int.h — internals of the MQTT framing shared by its two files:
 * mqtt.c (the framing ops, MQTT packets in, Herald replies) → mqtt_push.c
 * (messages out: pushes and SYNC against the session's sync key, the QoS 1
 * window). Loop thread only.
 */
#ifndef HERALD_SESSION_MQTT_INT_H
#define HERALD_SESSION_MQTT_INT_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>

#include "mqtt.h"
#include "mqtt_codec.h"
#include "mqtt_sess.h"
#include "tier_int.h"

#define MQ_IN_MAX 256u     /* client QoS 1 publishes waiting for Herald's ACK */
#define MQ_OUT_MAX 128u    /* our QoS 1 publishes waiting for the client's PUBACK */
#define MQ_SUBP_MAX 4u     /* SUBSCRIBE packets being checked at once */
#define MQ_EARLY_MAX 65536u /* bytes a client may send after CONNECT before CONNACK */

/* Request kinds, in the top 16 bits of the rid of every frame we submit. */
enum { RK_HELLO = 1, RK_SEND0, RK_SEND1, RK_SUB, RK_SYNC };
#define RID(kind, n) ((uint64_t)(kind) << 48 | ((n) & 0xffffffffffffull))
#define RID_KIND(rid) ((unsigned)((rid) >> 48))

enum { MQ_WAIT_CONNECT, MQ_WAIT_WELCOME, MQ_LIVE, MQ_DEAD };

/* A client QoS 1 publish, waiting for Herald's ACK; PUBACKs go out in the
 * order the publishes came [MQTT-4.6.0-2]. */
typedef struct mq_in {
    uint64_t rid;  /* the SEND's rid */
    uint16_t pid;  /* the client's packet id */
    bool done;     /* ACK received: PUBACK once everything before it is acked */
} mq_in;

/* One of our QoS 1 publishes, until the client's PUBACK. */
typedef struct mq_out {
    uint16_t pid;   /* our packet id */
    uint32_t group; /* the message's shard group */
    uint64_t pos;   /* its position there */
} mq_out;

/* A SUBSCRIBE whose conv/ID filters are being checked (CONV info). */
typedef struct mq_subp {
    uint16_t pid;                     /* the SUBSCRIBE's packet id */
    uint32_t id;                      /* names the checks' rids */
    uint16_t n;                       /* filters */
    uint16_t left;                    /* checks not answered yet */
    uint8_t codes[MQTT_FILTERS_MAX];  /* granted QoS or 0x80, per filter */
    mqtt_sub subs[MQTT_FILTERS_MAX];  /* what each grants */
} mq_subp;

typedef struct mq mq;

struct mq {
    conn *c;                          /* the connection */
    mqtt_table *table;                /* the tier's persistent sessions */
    int phase;                        /* MQ_WAIT_CONNECT … */
    bool clean;                       /* CONNECT's clean session */
    uint16_t keepalive;               /* CONNECT's keep-alive, s */
    char user[TOKEN_ID_MAX + 1];      /* CONNECT's user name ("" = none) */
    char cid[MQTT_CLIENT_ID_MAX + 1]; /* client id */
    size_t cid_len;                   /* its bytes */
    char cmid_prefix[24];             /* "mq" + 16 hex of a hash of the client id */
    mqtt_psess *ps;                   /* the session (persistent or private) */
    herald_buf early;                 /* packets received before CONNACK */
    uint64_t dkey[MQTT_GROUPS_MAX];   /* per group: position handled up to (delivered) */
    bool known[MQTT_GROUPS_MAX];      /* the group exists (WELCOME's key) */
    uint32_t unacked[MQTT_GROUPS_MAX]; /* our QoS 1 publishes of each group not PUBACKed */
    bool syncing;                     /* a SYNC is in flight */
    bool need_sync;                   /* something was left for SYNC to bring */
    uint64_t next_rid;                /* rid counter */
    mq_in in[MQ_IN_MAX];              /* client QoS 1 publishes, oldest at in_head */
    uint32_t in_head, in_len;
    mq_out out[MQ_OUT_MAX];           /* our QoS 1 publishes in flight */
    uint32_t nout;
    uint16_t next_pid;                /* our last packet id */
    mq_subp *subp[MQ_SUBP_MAX];       /* SUBSCRIBEs being checked */
    uint32_t next_subp;               /* subp ids */
    herald_buf *obuf;                 /* inside an output op: where its bytes go */
    ev_check defer_w;                 /* fed (never started): runs what an output op
                                         may not do itself (dispatch, close) */
    bool deferred;                    /* defer_w is fed, holding a conn reference */
    bool defer_close;                 /* close once deferred work runs */
    bool defer_early;                 /* replay `early` once deferred work runs */
};

/* mqtt_out.c: output and deferred work (see there). */
void mq_write(mq *m, const herald_buf *b);
void mq_drop(mq *m, const char *why);
/* Ends the session: closes once what is queued is out (deferred inside an
 * output op). */
void mq_end(mq *m);
void mq_submit(mq *m, herald_frame *f);
void mq_defer(mq *m);

/* mqtt_push.c */
/* The session's key of group g after a change of dkey or of the window. */
void mq_key_update(mq *m, uint32_t g);
/* SYNC from dkey when something was left for it and the window has room. */
void mq_sync(mq *m);
/* A pushed message (DELIVER). */
void mq_push(mq *m, const herald_msg *msg);
/* SYNC's answer. */
void mq_sync_result(mq *m, const herald_frame *f);

#endif
