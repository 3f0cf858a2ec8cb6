/*
 * client_int.h — libherald internals shared by its files:
 *   conn.c    the socket: dial, frame I/O, request/response matching
 *   events.c  the delivery path: sync-key filtering, the event queue, SYNC
 *   client.c  connect/close and the messaging requests
 *   admin.c   directory, contacts, tags, mass messages, urgent and broker status
 *   synckey.c the sync key itself (synckey.h)
 *
 * Threads: a handle belongs to one thread at a time; nothing here locks.
 */
#ifndef HERALD_CLIENT_INT_H
#define HERALD_CLIENT_INT_H

#include <herald/client.h>

#include "synckey.h"
#include "tls.h"

#define CLIENT_TIMEOUT_DEFAULT 10000       /* ms per request when opts say 0 */
#define CLIENT_FRAME_MAX_DEFAULT (16u << 20) /* largest frame accepted by default */
#define CLIENT_READ_CHUNK 65536u           /* bytes asked of recv() at a time */
#define CLIENT_HB_MIN_MS 50u               /* never ping more often than this (a busy-loop guard) */
#define CLIENT_HB_DEFAULT_MS 30000u        /* when WELCOME names no interval */
#define CLIENT_SYNC_ROUNDS_MAX 100000      /* SYNC pages per catch-up, a bound */
#define CLIENT_ID_MAX 130                  /* bytes of a WELCOME id, NUL included */
#define CLIENT_ERRTEXT_MAX 256             /* bytes of the kept server error text */
#define CLIENT_RESYNC_MIN_MS 20u           /* first retry of a SYNC that came back short */
#define CLIENT_RESYNC_MAX_MS 1000u         /* retries back off up to this */

/* A queued event (FIFO link). */
typedef struct client_qevent {
    struct client_qevent *next; /* the next event in arrival order */
    herald_event *ev;           /* owned; handed to the caller by next_event */
} client_qevent;

struct herald_client {
    int fd;                   /* socket; -1 once broken or closed */
    /* Where pushes arriving during a request go (client.c sets it to
     * client_on_push: conn.c stays below events.c). */
    int (*on_push)(herald_client *c, const herald_frame *f);
    client_tls *tls;          /* TLS session on fd (tls:// addresses), else NULL */
    int timeout_ms;           /* per-request deadline */
    uint32_t max_frame;       /* largest frame accepted from the server */
    uint32_t srv_max_frame;   /* WELCOME: the server's cap (0 = unknown); larger
                                 requests fail locally with HERALD_ETOO_BIG */
    herald_buf rx;            /* received bytes not yet consumed */
    size_t hold;              /* bytes of the frame last returned (consumed next) */
    uint64_t next_rid;        /* last request id used */
    char user[CLIENT_ID_MAX];   /* WELCOME: authenticated user */
    char tenant[CLIENT_ID_MAX]; /* WELCOME: tenant of the token */
    bool admin;               /* WELCOME: tenant-admin role */
    char errtext[CLIENT_ERRTEXT_MAX]; /* the server's text for the last ERROR */
    synckey recv;             /* position of everything accepted (dedup, gaps) */
    synckey out;              /* position of everything handed out (saved) */
    client_qevent *qhead;     /* first event not yet handed out */
    client_qevent *qtail;     /* last one (append point) */
    bool need_sync;           /* a gap is open: SYNC before waiting again */
    synckey want;             /* per slot: the newest position a push proved
                                 (a gap is open while recv is below it) */
    uint64_t gap_since;       /* monotonic ms the open gap was first seen (0 none) */
    uint64_t resync_at;       /* no SYNC retry before this (monotonic ms) */
    uint32_t resync_ms;       /* the current retry backoff */
    bool gap_reported;        /* HERALD_EV_GAP queued for the open gap */
    herald_client_stats st;   /* counters (herald_client_stats_get) */
    uint32_t hb_ms;           /* send something at least this often (WELCOME) */
    uint64_t last_tx;         /* when we last sent a frame (monotonic ms) */
};

/* ---- conn.c ---------------------------------------------------------------- */

/* Monotonic milliseconds. */
uint64_t client_now_ms(void);

/* Resolves "host:port" ("[v6]:port" too) and connects with TCP_NODELAY
 * within timeout_ms. 0 and *fd_out (non-blocking); HERALD_EINVAL (malformed
 * address or unknown host), HERALD_ETIMEOUT, HERALD_EIO (refused, …). */
int client_dial(const char *addr, int timeout_ms, int *fd_out);
/* client_dial into c->fd, then for "tls://host:port" the TLS handshake
 * (ca_file as in herald_client_opts) into c->tls, all within timeout_ms.
 * Errors as for client_dial and client_tls_open (text in c->errtext). */
int client_open(herald_client *c, const char *addr, const char *ca_file, int timeout_ms);

/* Closes the socket (the connection is unusable from now on) and returns rc. */
int client_broken(herald_client *c, int rc);

/* Encodes and sends f before deadline (monotonic ms). 0, HERALD_ETIMEOUT,
 * HERALD_ECLOSED, HERALD_EIO (connection broken), HERALD_ENOMEM,
 * HERALD_ETOO_BIG (over the server's cap: nothing sent, still usable). */
int client_send_frame(herald_client *c, const herald_frame *f, uint64_t deadline);

/* Receives one frame into *f (strings point into c->rx: valid until the next
 * receive; release f's arrays with herald_frame_release). block false: only
 * what is buffered or readable now. HERALD_ETIMEOUT (nothing came; the
 * connection stays usable), HERALD_ECLOSED, HERALD_EIO, HERALD_ETOO_BIG,
 * HERALD_EPROTOCOL, HERALD_ENOMEM (these break the connection). */
int client_recv_frame(herald_client *c, uint64_t deadline, bool block, herald_frame *f);

/* Keeps an ERROR frame's text for herald_client_last_error. */
void client_keep_error(herald_client *c, const herald_frame *f);

/* Sends req (its rid is assigned here) and waits up to the request timeout
 * for the frame of type `want` echoing that rid; pushed frames arriving
 * meanwhile go to c->on_push. On 0 the caller owns *resp (release it; its
 * strings live until the next receive on c). An ERROR for this request
 * returns its code (connection usable); a deadline breaks the connection
 * (HERALD_ETIMEOUT: a late answer could not be told apart). */
int client_request(herald_client *c, herald_frame *req, uint32_t want, herald_frame *resp);
/* The same with its own deadline (ms), for requests that take long (MASS). */
int client_request_within(herald_client *c, herald_frame *req, uint32_t want,
                          herald_frame *resp, int timeout_ms);

/* True for frames the server sends without a request. */
bool client_is_push(uint32_t type);

/* ---- events.c -------------------------------------------------------------- */

/* Filters / queues a pushed frame (DELIVER, RECEIPT, REMIND). 0 or
 * HERALD_ENOMEM. */
int client_on_push(herald_client *c, const herald_frame *f);

/* Frees every queued event. */
void client_queue_free(herald_client *c);

/* Deep copies of server strings (NUL-terminated). NULL on ENOMEM. */
char *client_dup_str(herald_str s);
/* n strings into one allocation. 0 or HERALD_ENOMEM (*out zeroed). */
int client_copy_strs(const herald_str *src, uint32_t n, herald_strlist *out);
/* n messages into one allocation. 0 or HERALD_ENOMEM (*out zeroed). */
int client_copy_msgs(const herald_msg *src, uint32_t n, herald_msglist *out);

#endif
