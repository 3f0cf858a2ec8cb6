/*
 * herald/client.h — libherald, the C client library.
 *
 * A herald_client is one authenticated connection to a gateway. Calls are
 * blocking with a per-request deadline (opts.timeout_ms); while a call waits
 * for its response, pushed messages and receipts are queued in arrival order
 * and handed out by herald_client_next_event.
 *
 * Delivery guarantee: the client keeps a sync key ({group → position}, see
 * SYNC KEYS in protocol.h). A pushed message whose pv the key covers
 * advances it; a duplicate is dropped; a gap (pv past the key) triggers a
 * SYNC that fetches the missing messages in order. Save the key (herald_client_sync_key) and pass
 * it to the next connect: messages missed while offline come first, each
 * exactly once, in per-conversation order.
 *
 * Threads: a handle is used by one thread at a time (one thread per
 * handle; different handles are independent); there are no callbacks and
 * no background threads. Every request blocks until its answer or its
 * deadline (opts.timeout_ms).
 *
 * Errors: every call returns 0 or a herald_err (include/herald/error.h).
 * Connection errors leave the handle unusable (every later request returns
 * HERALD_ECLOSED; save the sync key, close, reconnect): HERALD_ECLOSED,
 * HERALD_EIO, HERALD_ETIMEOUT (from a request; next_event's ETIMEOUT only
 * means "nothing yet"), HERALD_EPROTOCOL, an incoming frame over max_frame
 * (HERALD_ETOO_BIG), and a server ERROR not tied to a request (IDLE,
 * SHUTDOWN, SLOW_CONSUMER, …). Every other code came from the server for
 * this request, or from a local argument check (HERALD_EINVAL, an outgoing
 * HERALD_ETOO_BIG, HERALD_ENOMEM), and the connection stays usable;
 * herald_client_last_error gives the server's text. Tell them apart with
 * herald_client_fd(c) < 0.
 *
 * Ownership: every input pointer is only read during the call; results
 * come through out-parameters that the caller owns and frees with the
 * matching *_free function (each NULL-safe); on error an out-parameter is
 * left empty (nothing to free, though freeing it is harmless).
 */
#ifndef HERALD_CLIENT_H
#define HERALD_CLIENT_H

#include <herald/error.h>
#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* An opaque connection handle: herald_client_connect / herald_client_close. */
typedef struct herald_client herald_client;

/* Connection options; zero-initialise, then set what you need. Read only
 * during herald_client_connect; nothing is kept. */
typedef struct herald_client_opts {
    int timeout_ms;          /* per-request deadline, also for connect (0 = 10000) */
    uint32_t max_frame;      /* largest frame accepted from the server (0 = 16 MiB);
                                a larger one fails with HERALD_ETOO_BIG */
    const uint8_t *sync_key; /* a key saved by herald_client_sync_key, or NULL
                                (start live at the server's current position) */
    size_t sync_key_len;     /* its length in bytes */
    char *errbuf;            /* NULL, or a buffer that gets the server's ERROR
                                text when connect fails ("" when it sent none) */
    size_t errbuf_len;       /* its size in bytes (the text is truncated, NUL-terminated) */
    const char *ca_file;     /* tls://HOST:PORT addresses: PEM file of the CA the
                                gateway's certificate must chain to (NULL: the
                                system's bundle, /etc/ssl/certs/ca-certificates.crt) */
} herald_client_opts;

/* Connects to addr ("host:port" or "[v6]:port"; getaddrinfo, TCP_NODELAY;
 * "tls://host:port": TLS 1.2, the gateway's certificate must chain to
 * opts->ca_file and name host — a certificate that does not verify fails
 * with HERALD_EUNAUTHORIZED and the reason in opts->errbuf),
 * sends HELLO with token and waits for WELCOME. With opts->sync_key it then
 * SYNCs from that key, looping while the server says "more", and queues the
 * missed messages as events (in order, before anything pushed later);
 * without, it adopts the WELCOME position. opts may be NULL. Blocks up to
 * opts->timeout_ms for the TCP connect and again for each request.
 * Returns 0 and *out (close it with herald_client_close); on error *out is
 * NULL and nothing is left open: HERALD_EINVAL (malformed address, unknown
 * host, or key bytes that are not a saved key), HERALD_EIO (refused or
 * unreachable), HERALD_ETIMEOUT, HERALD_ECLOSED, HERALD_EPROTOCOL /
 * HERALD_ETOO_BIG (the peer is not a Herald gateway), HERALD_EUNAUTHORIZED
 * (no token or a bad one), HERALD_EEXPIRED, HERALD_EBUSY / HERALD_ESHUTDOWN
 * (server refusing connections), HERALD_ENOMEM. */
int herald_client_connect(const char *addr, const char *token,
                          const herald_client_opts *opts, herald_client **out);

/* Closes the connection and frees everything, queued events included.
 * Events already handed out stay valid (they are owned by the caller).
 * NULL-safe. Never blocks. */
void herald_client_close(herald_client *c);

/* "whoami": the identity from WELCOME. The strings live as long as the
 * handle and never change. */
const char *herald_client_user(const herald_client *c);
const char *herald_client_tenant(const herald_client *c);
bool herald_client_is_admin(const herald_client *c);

/* The server's text for the last error it returned for a request (or a
 * local explanation of a protocol violation); "" if none. Cleared when the
 * next request starts; the pointer stays valid until herald_client_close. */
const char *herald_client_last_error(const herald_client *c);

/* The socket, for poll/epoll loops: when it is readable, call
 * herald_client_next_event with timeout 0 (it may still return
 * HERALD_ETIMEOUT: a partial frame, or a frame that was not an event).
 * -1 once the connection is broken. Do not read, write or close it. */
int herald_client_fd(const herald_client *c);

/* Result of a SEND. */
typedef struct herald_ack {
    uint64_t seq; /* the message's seq (the original one when dup) */
    uint64_t ts;  /* commit time, ms since the Unix epoch */
    bool dup;     /* the cmid was seen before: nothing new was stored */
} herald_ack;

/* Sends body (len bytes, copied before return) to conv and waits until it
 * is stored; *ack (may be NULL) gets its seq. cmid NULL: the library makes
 * a random one (128 bits, hex) — to retry exactly-once after a timeout or a
 * reconnect, pass your own cmid and reuse it (a retry gets dup = true and the
 * original seq). Local errors: HERALD_EINVAL (conv NULL/empty),
 * HERALD_ETOO_BIG (the frame exceeds the server's cap; nothing was sent).
 * flags: HERALD_MSGF_CLIENT_MASK bits (SILENT; URGENT = DING: every
 * recipient must confirm, the unconfirmed are reminded on the tenant's
 * schedule, then the sender gets an ESCALATE event). Server errors: NOT_FOUND, NOT_MEMBER,
 * FORBIDDEN, INVAL, RATE_LIMITED, STORAGE. */
int herald_client_send(herald_client *c, const char *conv, const char *cmid,
                       const void *body, size_t len, uint32_t flags, herald_ack *ack);

/* An owned list of messages. Free with herald_msglist_free. */
typedef struct herald_msglist {
    uint32_t n;     /* messages */
    herald_msg *v;  /* strings owned by the list */
    bool more;      /* the server's limit cut the answer */
} herald_msglist;
void herald_msglist_free(herald_msglist *l);

/* Messages of conv with seq > after (ascending), at most limit (0 = server
 * default, 100). Members and admins only. On 0 *out is an owned deep copy
 * (free with herald_msglist_free); on error *out is empty. out->more: ask
 * again with after = the last seq. Server errors: NOT_FOUND, NOT_MEMBER. */
int herald_client_history(herald_client *c, const char *conv, uint64_t after,
                          uint32_t limit, herald_msglist *out);

/* Marks everything up to seq (≥ 1) read; *cursor (may be NULL) gets the
 * stored cursor (cursors never move back, so it may exceed seq). Server
 * errors: NOT_FOUND, NOT_MEMBER, INVAL (seq beyond the last message). */
int herald_client_read(herald_client *c, const char *conv, uint64_t seq,
                       uint64_t *cursor);

/* An owned list of NUL-terminated strings (one allocation). Free with
 * herald_strlist_free (NULL-safe, leaves it empty). */
typedef struct herald_strlist {
    uint32_t n;  /* strings */
    char **v;    /* v[i] */
} herald_strlist;
void herald_strlist_free(herald_strlist *l);

/* Recalls message seq of conv (its sender within the tenant's window, the
 * owner or an admin any time). *event_seq (may be NULL) gets the seq of the
 * system message announcing it (0 when it was recalled already). Server
 * errors: NOT_FOUND, FORBIDDEN (not allowed or the window has passed),
 * INVAL (a system message), NOT_MEMBER. */
int herald_client_recall(herald_client *c, const char *conv, uint64_t seq,
                         uint64_t *event_seq);

/* Confirms an urgent (DING) message received in conv (stops its
 * reminders for this user). *seq_out (may be NULL) gets seq. Server errors:
 * NOT_FOUND (not an urgent message for this user). */
int herald_client_confirm(herald_client *c, const char *conv, uint64_t seq, uint64_t *seq_out);

/* Who has / has not confirmed urgent message seq of conv. */
int herald_client_urgent_status(herald_client *c, const char *conv, uint64_t seq,
                                herald_strlist *confirmed, herald_strlist *pending);

/* A directory entry (all strings owned; "" when unset). */
typedef struct herald_dir_entry {
    char *user;    /* user id (user.* ops) */
    char *dept;    /* department id (dept.* ops; a user's department) */
    char *kind;    /* "internal" | "external" (users) */
    char *name;    /* display name */
    char *title;   /* job title (users) */
    char *parent;  /* parent department (departments) */
    char *corp;    /* the tenant's display name (users) */
} herald_dir_entry;
void herald_dir_entry_free(herald_dir_entry *e);

/* The directory. op: "user.add" (admin: in->user, kind, name, title, dept),
 * "user.show" (in->user; a user not in the directory shows as internal,
 * named by its id), "dept.add" (admin: in->dept, name, parent — the parent
 * must exist), "dept.show" (in->dept). Unused fields of *in may be NULL.
 * *out (may be NULL) gets the entry as stored. Server errors: FORBIDDEN (not
 * an admin), INVAL, NOT_FOUND (department). */
int herald_client_dir(herald_client *c, const char *op, const herald_dir_entry *in,
                      herald_dir_entry *out);

/* External contacts (admin): records that employee owns the relationship
 * with customer (an external user in the directory) and returns their 1:1
 * conversation in conv_out (NUL-terminated; may be NULL; HERALD_ETOO_BIG when
 * conv_len is too small — 64 bytes are enough). Adding the same pair again
 * returns the same conversation. Server errors: FORBIDDEN, INVAL (not an
 * employee / not an external user). */
int herald_client_contact_add(herald_client *c, const char *employee, const char *customer,
                              char *conv_out, size_t conv_len);

/* The employees who own the relationship with customer. */
int herald_client_contact_list(herald_client *c, const char *customer, herald_strlist *owners);

/* Customer tags. op "add" / "remove" (admin; tags on an external user, up
 * to 100 per call) or "list" (tags may be NULL, n 0). *out (may be NULL)
 * gets the customer's tags afterwards. Server errors: FORBIDDEN, INVAL. */
int herald_client_tags(herald_client *c, const char *op, const char *customer,
                       const char *const *tags, uint32_t n, herald_strlist *out);

/* Result of a mass message. Free with herald_mass_free. */
typedef struct herald_mass {
    char *id;                /* mass message id */
    herald_strlist reached;  /* customers who got it */
    herald_strlist limited;  /* had a mass message already that day */
    herald_strlist missed;   /* no owning employee, or the send failed */
    herald_strlist bad_tags; /* send: tags nobody carries (or no tag id) */
    uint32_t sent;           /* messages sent (one per owning employee) */
} herald_mass;
void herald_mass_free(herald_mass *m);

/* Mass message (admin) to the customers carrying any of tags, sent by each
 * owning employee in their 1:1 conversation, at most one per customer per
 * UTC day. id NULL: the server picks one (pass your own to retry
 * exactly-once). Waits until every message is stored. Server errors:
 * FORBIDDEN, INVAL (no customer carries any of the tags: nothing valid). */
int herald_client_mass_send(herald_client *c, const char *id, const char *const *tags,
                            uint32_t n_tags, const char *text, herald_mass *out);
/* The recorded outcome of mass message id. */
int herald_client_mass_status(herald_client *c, const char *id, herald_mass *out);

/* An app message or announcement (admin), modelled on WeCom's
 * message/send: touser / toparty / totag / @all, agentid = app. Unused
 * lists may be NULL with n 0; everything is only read during the call. */
typedef struct herald_app_msg {
    const char *app;            /* app id (up to 100 id characters) */
    bool announce;              /* one read-diffused announce conversation
                                   holding every recipient, instead of one
                                   message in the app's 1:1 conversation with
                                   each */
    const char *const *users;   /* users (≤1,000); "@all" = every employee */
    uint32_t n_users;
    const char *const *depts;   /* departments, with sub-departments (≤100) */
    uint32_t n_depts;
    const char *const *tags;    /* tags (≤100) */
    uint32_t n_tags;
    const char *text;           /* the message */
    const char *id;             /* message id (NULL: the server picks one);
                                   the same app + id within the window is a
                                   duplicate, answered with the first outcome */
    uint32_t window_s;          /* duplicate window, ≤14,400 (0 = the
                                   tenant's, default 1,800) */
} herald_app_msg;

/* The outcome of an app message. Free with herald_app_result_free. */
typedef struct herald_app_result {
    char *id;                  /* message id */
    char *conv;                /* announce: its conversation (else NULL) */
    bool dup;                  /* a duplicate: the first outcome, nothing sent */
    uint32_t stored;           /* messages stored */
    herald_strlist reached;    /* recipients who got it */
    herald_strlist limited;    /* over the per-member per-app frequency cap */
    herald_strlist bad_users;  /* invalid users (not in the directory) */
    herald_strlist bad_depts;  /* no such department */
    herald_strlist bad_tags;   /* nobody carries the tag */
    herald_strlist unreached;  /* "USER: CODE: why" per delivery that failed */
} herald_app_result;
void herald_app_result_free(herald_app_result *r);

/* Sends an app message or announcement and waits until every message is
 * stored. Server errors: FORBIDDEN (not an admin), INVAL (ids, counts, no
 * valid recipient at all), RATE_LIMITED (every recipient is over the
 * frequency cap; herald_client_last_error says so). */
int herald_client_app_send(herald_client *c, const herald_app_msg *m, herald_app_result *out);

/* One customer (or customer group) of a transfer. */
typedef struct herald_transfer_item {
    char *id;               /* customer or group id */
    bool group;             /* a customer group */
    char *status;           /* done | waiting | refused | taker_at_limit | no_record */
    uint64_t takeover_ms;   /* waiting: when the taker takes over (ms since the epoch) */
    char *reason;           /* why (not done): customer_may_object, taking_over,
                               customer_refused, transfer_pending, taker_serves,
                               protected_90_days, taker_at_limit, not_owner,
                               member_cap_exceeded, …; "" for done or from a
                               server that sends none */
    char *text;             /* the reason in words ("" likewise) */
} herald_transfer_item;
typedef struct herald_transfer_result {
    uint32_t n;               /* items */
    herald_transfer_item *v;  /* customers first, then groups */
} herald_transfer_result;
void herald_transfer_result_free(herald_transfer_result *r);

/* Customer transfer (admin): customers (≤100) and customer groups (≤100)
 * of employee `from` go to `to`. In service each customer waits the
 * tenant's period (default 24 h) before the takeover; resigned moves them
 * at once. Calling again with the same arguments reports the current
 * state. Server errors: FORBIDDEN, INVAL. */
int herald_client_transfer(herald_client *c, const char *from, const char *to,
                           const char *const *customers, uint32_t n_customers,
                           const char *const *groups, uint32_t n_groups, bool resigned,
                           herald_transfer_result *out);
/* The connected customer objects to its waiting transfer (status refused).
 * Server errors: NOT_FOUND (nothing waiting). */
int herald_client_transfer_refuse(herald_client *c, herald_transfer_result *out);

/* Do-not-disturb ("take a break"). op: "on" (until_ms: when it ends, ms
 * since the epoch; 0 = until turned off), "off", or "status". *until (may
 * be NULL) gets the state after the call: 0 = off, UINT64_MAX = on until
 * turned off, else the end time. While on, pushed and synced messages carry
 * HERALD_MSGF_SILENT unless they are urgent. Server errors: INVAL. */
int herald_client_dnd(herald_client *c, const char *op, uint64_t until_ms, uint64_t *until);

/* Who has read message seq of conv (the sender counts as having read it).
 * On 0 both lists are owned by the caller (free each with
 * herald_strlist_free); on error both are empty. Complete lists for
 * conversations up to 2,000 members; for larger ones use
 * herald_client_receipts_page. Server errors: NOT_FOUND, NOT_MEMBER,
 * FORBIDDEN (receipts switched off for the tenant). */
int herald_client_receipts(herald_client *c, const char *conv, uint64_t seq,
                           herald_strlist *read, herald_strlist *unread);

/* Receipts with counts and paging. Free with herald_receipts_free. */
typedef struct herald_receipts {
    herald_strlist read;   /* who has read (complete up to 2,000 members, else empty) */
    herald_strlist unread; /* who has not (beyond 2,000 members: one page) */
    uint32_t n_read;       /* how many members have read */
    uint32_t n_unread;     /* how many have not */
    bool more;             /* the unread page was cut: ask again with after = next */
    char *next;            /* cursor for the next page (NULL when !more) */
} herald_receipts;
void herald_receipts_free(herald_receipts *r);

/* after: NULL or the previous page's next; limit: names per page (0 = 1000). */
int herald_client_receipts_page(herald_client *c, const char *conv, uint64_t seq,
                                const char *after, uint32_t limit, herald_receipts *out);

/* A conversation's description. Free with herald_conv_info_free. */
typedef struct herald_conv_info {
    char *id;              /* conversation id */
    char *kind;            /* single | group | customer_group | announce */
    char *owner;           /* owner user id */
    herald_strlist members;/* member ids, sorted */
    uint64_t max_seq;      /* highest seq */
    uint64_t created;      /* ms since the Unix epoch */
    uint32_t cap;          /* member cap */
    uint32_t count;        /* member count */
    uint32_t group;        /* shard group holding it */
    uint32_t leader;       /* node id leading that group (cluster; 0 unknown) */
} herald_conv_info;
void herald_conv_info_free(herald_conv_info *i);

/* One page of the user's conversation list (newest activity first). */
typedef struct herald_convlist {
    uint32_t n;         /* conversations */
    herald_msglist last;/* last.v[i]: the last message of conversation i (conv =
                           its id; seq 0 and ts = its creation time when it has
                           none; body cut to 120 bytes) */
    char **kinds;       /* kinds[i]: single | group | customer_group | announce */
    uint32_t *counts;   /* counts[i]: members */
    uint64_t *unread;   /* unread[i]: messages after the user's read cursor */
    char *cursor;       /* the next page's cursor; NULL on the last page */
} herald_convlist;
void herald_convlist_free(herald_convlist *l);

/* The user's conversations after cursor (NULL: from the top), at most
 * limit (0 = 50, at most 200). A new device without a sync key lists them
 * and pages each one's history (herald_client_history). On 0 *out is owned
 * (herald_convlist_free); on error it is empty. Server errors: INVAL (a
 * cursor not from an earlier page). */
int herald_client_conv_list(herald_client *c, const char *cursor, uint32_t limit,
                            herald_convlist *out);

/* Creates a conversation of kind (single | group | customer_group |
 * announce) with members[0..n) (id NULL: the server picks one). The creator
 * joins unless it is an admin not listed. out may be NULL; on 0 *out is owned
 * by the caller (herald_conv_info_free), on error it is zeroed. The members
 * array and strings are only read during the call. Server errors: EXISTS,
 * INVAL (kind, ids, single needs 2), CAP_EXCEEDED. */
int herald_client_conv_create(herald_client *c, const char *kind, const char *id,
                              const char *const *members, uint32_t n,
                              herald_conv_info *out);
/* Adds / removes members (owner or admin; anyone may remove itself); *out
 * (may be NULL) as for create. Server errors: NOT_FOUND, FORBIDDEN,
 * CAP_EXCEEDED, INVAL. */
int herald_client_conv_add(herald_client *c, const char *conv,
                           const char *const *members, uint32_t n, herald_conv_info *out);
int herald_client_conv_remove(herald_client *c, const char *conv,
                              const char *const *members, uint32_t n,
                              herald_conv_info *out);
/* Describes conv (members and admins); *out as for create. Server errors:
 * NOT_FOUND, NOT_MEMBER. */
int herald_client_conv_info(herald_client *c, const char *conv, herald_conv_info *out);

/* The broker's state (tenant admin) as a JSON document, appended to out
 * (NUL not included). Server errors: FORBIDDEN. */
int herald_client_status(herald_client *c, herald_buf *out);

/* App management (tenant admin, or the app itself where the operation
 * allows it): the APP frame's operations that take one JSON object of
 * arguments and answer one JSON object — op "create" (a new app and its
 * secret), "list", "callback", "events", "redeliver", ... (the wire
 * protocol lists them under APP). args_json (NULL: "{}") is sent as is;
 * the answer's JSON is appended to out_json (NUL not included). Server
 * errors: FORBIDDEN, INVAL (bad arguments: the error text says which),
 * NOT_FOUND (no such app), EXISTS. */
int herald_client_app_call(herald_client *c, const char *op, const char *app,
                           const char *args_json, herald_buf *out_json);

/* PING → PONG; *rtt_us (may be NULL) gets the round trip in microseconds.
 * Pushes arriving meanwhile are queued. */
int herald_client_ping(herald_client *c, uint64_t *rtt_us);

/* Event types. */
typedef enum herald_event_type {
    HERALD_EV_MSG = 1,     /* a message (ev->msg) */
    HERALD_EV_RECEIPT = 2, /* ev->conv's reader ev->user read up to ev->seq */
    HERALD_EV_REMIND = 3,  /* urgent message ev->conv/ev->seq still unconfirmed:
                              reminder number ev->count (confirm it) */
    HERALD_EV_ESCALATE = 4,/* your urgent message ev->conv/ev->seq: reminders
                              ran out; ev->pending[0..n_pending) never
                              confirmed */
    HERALD_EV_GAP = 5,     /* a gap stayed open past the request timeout: a push
                              proved that messages up to position ev->seq of
                              shard group ev->group exist (ev->conv is
                              empty), and SYNC has not returned them yet. Nothing is skipped:
                              libherald keeps retrying with backoff and hands
                              them out in order once they come. */
} herald_event_type;

/* A pushed (or synced) event: one allocation holding its strings (msg's
 * herald_str fields point inside it; body is also NUL-terminated). Owned by
 * the caller; free with herald_event_free (NULL-safe). */
typedef struct herald_event {
    int type;          /* herald_event_type */
    herald_msg msg;    /* HERALD_EV_MSG */
    const char *conv;  /* HERALD_EV_RECEIPT: conversation */
    const char *user;  /* HERALD_EV_RECEIPT: reader; REMIND: you; ESCALATE: the
                          sender (you) */
    uint64_t seq;      /* HERALD_EV_RECEIPT: cursor; REMIND/ESCALATE: the message */
    uint32_t count;    /* HERALD_EV_REMIND / ESCALATE: reminders so far */
    uint32_t group;    /* HERALD_EV_GAP: the shard group (conv "" then) */
    const char *const *pending; /* HERALD_EV_ESCALATE: who never confirmed */
    uint32_t n_pending;         /* entries in pending */
} herald_event;
void herald_event_free(herald_event *ev);

/* The next event, waiting up to timeout_ms (0: only what is already queued
 * or readable now; -1: forever). Messages come exactly once and in
 * per-conversation order: duplicates are dropped, and a gap (a pushed
 * message beyond the next expected position) runs a SYNC first, which
 * fetches the missing ones. While waiting it sends a heartbeat PING every
 * interval the server advertised. Returns 0 and *ev (the caller frees it),
 * HERALD_ETIMEOUT when none came (the connection stays usable), or a
 * connection error (HERALD_ECLOSED, HERALD_EIO, HERALD_ETOO_BIG,
 * HERALD_EPROTOCOL, or the code of the server's ERROR before it closed:
 * IDLE, SHUTDOWN, SLOW_CONSUMER …); then *ev is NULL. */
int herald_client_next_event(herald_client *c, int timeout_ms, herald_event **ev);

/* Catches up explicitly: SYNCs from the current key, looping while the
 * server says "more", and queues what was missed as events (duplicates of
 * queued ones are dropped). Blocks up to the request timeout per page.
 * Errors as for any request. A gap a push revealed stays open until a SYNC
 * has returned everything up to that push: when this SYNC came back short
 * (the push overtook the answer, or the server's replica was behind),
 * next_event tries again: at once, then after 20 ms doubling up to 1 s,
 * and reports HERALD_EV_GAP once the gap is older than the request
 * timeout. */
int herald_client_sync(herald_client *c);

/* Delivery counters of one handle (monotonic since connect). */
typedef struct herald_client_stats {
    uint64_t gaps;          /* pushes dropped because they were ahead of the key */
    uint64_t syncs;         /* SYNC exchanges (pages) run */
    uint64_t sync_retries;  /* SYNCs run again because a gap was still open */
    uint64_t gaps_unfilled; /* gaps reported with HERALD_EV_GAP (open past the
                               request timeout) */
} herald_client_stats;
/* Copies c's counters to *out. Never blocks. */
void herald_client_stats_get(const herald_client *c, herald_client_stats *out);

/* Serialises the current sync key — covering exactly the events handed out
 * by next_event, not those still queued — by appending to out (the caller
 * owns the buffer). The bytes are opaque (a msgpack SYNC frame; the loader
 * rejects anything else with HERALD_EINVAL); store them and pass them back in
 * herald_client_opts.sync_key to resume exactly once. Works on a broken
 * connection too (save before closing). 0 or HERALD_ENOMEM. Never blocks. */
int herald_client_sync_key(herald_client *c, herald_buf *out);

#ifdef __cplusplus
}
#endif
#endif
