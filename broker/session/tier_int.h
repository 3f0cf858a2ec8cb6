/*
 * tier_int.h — session tier internals. Floors, each calling only down:
 * tier.c (lifecycle, listeners, delivery to sessions) → conn.c (one
 * connection: socket I/O, limits, timers, the common dispatch path) →
 * presence.c (who is online). framing.h: each listener's framing
 * (framing_tcp.c, ws.c) between conn.c's bytes and Herald frames. gw_tls.c
 * is the TLS session under conn.c. Loop thread only.
 */
#ifndef HERALD_TIER_INT_H
#define HERALD_TIER_INT_H

#include <ev.h>
#include <herald/error.h>
#include <herald/protocol.h>
#include <stdbool.h>

#include "deliver.h"
#include "framing.h"
#include "srv_tls.h"
#include "hmap.h"
#include "prom.h"
#include "tier.h"

#define TIER_MAX_GROUPS 65u /* meta group + up to 64 shard groups */
#define TIER_MAX_LISTENERS 4u /* the client port and the optional ones */

/* One listening socket and the framing its connections speak. */
typedef struct tier_listener {
    tier *t;                 /* owner */
    const framing_ops *ops;  /* the framing (static) */
    void *lst;               /* ops->listener_new's state (owned) */
    char addr[272];          /* "HOST:PORT" as configured */
    int lfd;                 /* listening socket; -1 none */
    uint16_t port;           /* bound port */
    ev_io accept_w;          /* readable on lfd */
    ev_timer accept_pause;   /* resumes accepting after EMFILE and the like */
    uint32_t nconns;         /* its open connections (tier_metrics.c) */
    uint64_t accepted;       /* connections it accepted */
} tier_listener;

/* What the tier counts for GET /metrics (tier_metrics.c); loop thread. */
typedef struct tier_counters {
    uint64_t frames[HERALD_FT_COUNT_]; /* frames received, by type (decoded) */
    uint64_t bad_frames;     /* frames refused before the handler: too big, malformed */
    uint64_t errors[HERALD_E_COUNT_]; /* ERROR frames and closing errors sent, by code */
    uint64_t refused;        /* connections refused at the cap or while stopping */
    uint64_t events;         /* frames handed to tier_deliver (pushes before fan-out) */
    uint64_t pushes;         /* DELIVER copies queued (or held) for sessions */
    prom_hist push_lat;      /* a DELIVER's commit time (msg.ts) → queued for a session */
} tier_counters;

struct tier {
    gw_config cfg;         /* copy of the configuration */
    char *ws_origins;      /* owned copy of cfg.ws_origins */
    struct ev_loop *loop;  /* the loop everything runs on */
    tier_handler h;        /* where frames go */
    tier_listener ls[TIER_MAX_LISTENERS]; /* ls[0]: the client port (TCP framing) */
    uint32_t nls;          /* listeners in use */
    ev_prepare flush_w;    /* flushes pending output once per loop iteration */
    conn *flush_head;      /* connections with output to flush */
    conn *all_head;        /* every open connection */
    hmap *presence;        /* "tenant\0user" → first conn of that user */
    gw_tls *tls;           /* TLS on every listener (NULL: plain) */
    uint32_t nconns;       /* open connections */
    uint64_t next_conn_id; /* connection ids, for logs */
    bool stopping;         /* tier_destroy in progress */
    tier_counters st;      /* counters for /metrics */
    uint8_t scratch[65536]; /* reads land here first (conn.c: CONN_READ_CHUNK) */
};

struct conn {
    tier *t;               /* owner */
    tier_listener *l;      /* the listener that accepted it (valid while open) */
    const framing_ops *ops; /* its framing (static: outlives the tier) */
    void *fst;             /* the framing's per-connection state (owned) */
    int fd;                /* socket; -1 once closed */
    uint64_t id;           /* for logs */
    int refs;              /* 1 while open + 1 per holder (the handler's requests) */
    char peer[64];         /* "ip:port" for logs */
    char label[96];        /* "conn N ip:port" */
    ev_io rio;             /* readable */
    ev_io wio;             /* writable (only while output is stuck) */
    ev_timer timer;        /* hello deadline, then idle timeout */
    ev_tstamp last_rx;     /* time of the last frame received */
    uint32_t idle_ms;      /* this connection's idle timeout (0: cfg.idle_ms; conn_set_idle_ms) */
    herald_buf in;         /* bytes received, not yet a whole frame */
    herald_buf out;        /* encoded frames not yet written */
    size_t out_off;        /* bytes of out already written */
    double tokens;         /* rate-limit bucket */
    double btokens;        /* byte-rate bucket */
    ev_tstamp refill_at;   /* last bucket refill */
    session sess;          /* who it is (authed once HELLO is verified) */
    uint64_t last_pos[TIER_MAX_GROUPS]; /* per group: the position last pushed
                                           (a deposed leader that has not noticed
                                           may publish what its successor does too) */
    bool closing;          /* close once output is flushed */
    bool in_flush;         /* on t->flush_head list */
    bool in_presence;      /* listed under sess.tenant/sess.user */
    conn *u_next, *u_prev; /* sessions of the same user (presence list) */
    conn *a_next, *a_prev; /* t->all_head list */
    conn *f_next;          /* t->flush_head list */
    gw_tls_session *tls;   /* TLS session (NULL: plain TCP) */
    bool tls_read_wants_write; /* the handshake inside a read must write first */
    char *token;           /* gateway process: the session's token */
    bool held;             /* gateway process: HELLO forwarded, its answer not back
                              yet; in presence under the token's claimed user so no
                              push slips between the node reading the position and
                              the session starting: pushes wait in held_out */
    herald_buf held_out;   /* encoded pushes kept while held (≤ out_cap) */
    bool held_over;        /* held_out hit the cap: the session must reconnect */
};

/* conn.c */
void conn_accept(tier_listener *l, int fd, const char *peer);
/* Keeps a push for a held connection. */
void conn_hold_push(conn *c, const herald_frame *f);
/* Closes now; idempotent. */
void conn_close(conn *c, const char *why);
/* Writes queued output of every connection on the flush list. */
void conn_flush_all(tier *t);

/* presence.c: the sessions of each user (c->sess.tenant / user). */
int tier_presence_add(tier *t, conn *c);
void tier_presence_del(tier *t, conn *c);
/* First session of (tenant, user) or NULL; follow u_next. */
conn *tier_presence_first(tier *t, const char *tenant, size_t tlen, const char *user,
                          size_t ulen);

/* Queues one recipient's copy of a DELIVER template (deliver.h); as
 * conn_send. */
int conn_send_deliver(conn *c, deliver_tpl *t, uint32_t flags, uint64_t prev);

#endif
