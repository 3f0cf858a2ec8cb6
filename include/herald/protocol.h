/*
 * herald/protocol.h — Herald client wire protocol, version 1.
 *
 * FRAMING. A frame is a 4-byte big-endian payload length followed by that many
 * bytes holding exactly one msgpack map. The length excludes the 4 header
 * bytes. Receivers check the length against their frame cap (default 1 MiB,
 * configurable) before allocating anything; a larger frame is answered with
 * ERROR TOO_BIG and the connection is closed.
 *
 * MAPS. Keys are short msgpack strings (listed below). Every frame carries
 * "t" (frame type, uint). Requests may carry "rid" (uint request id); the
 * response to a request echoes it ("rid" in ACK/OK/…_RESULT, "ref" in ERROR),
 * so a client can pipeline. Unknown keys are skipped (forward compatible);
 * a known key with the wrong msgpack type is a PROTOCOL error. Numbers are
 * unsigned msgpack integers; zero, false and empty strings mean "absent" and
 * are not sent — so a required key must also be non-zero / non-empty ("m"
 * is only sent in DELIVER). Strings are UTF-8 msgpack str; "body" may be str or bin and
 * is sent as bin. Nesting deeper than the decoder's depth cap (default 8) and
 * any array/map whose declared count exceeds the bytes left are PROTOCOL
 * errors, detected before any allocation.
 *
 * KEYS (key: C field, msgpack type)
 *   t: type (uint)           rid: rid (uint)          ref: ref (uint)
 *   tok: token (str)         v: version (uint)        user: user (str)
 *   ten: tenant (str)        admin: admin (bool)      hb: hb_ms (uint)
 *   maxf: max_frame (uint)   conv: conv (str)         cmid: cmid (str)
 *   body: body (str|bin)     flags: flags (uint)      seq: seq (uint)
 *   ts: ts (uint, ms since the Unix epoch)            dup: dup (bool)
 *   code: code (uint)        msg: text (str)          after: after (uint)
 *   limit: limit (uint)      more: more (bool)        op: op (str)
 *   kind: kind (str)         owner: owner (str)       cap: cap (uint)
 *   cnt: count (uint)        mem: members (array of str)
 *   read: read (array of str)                         unread: unread (array of str)
 *   m: msg (map, one message)                         msgs: msgs (array of message maps)
 *   sg: sync groups, flat array [group, pos, group, pos, …] (uints)
 *   sc: sync convs, flat array [conv, seq, conv, seq, …] (str, uint)
 *   nr: n_read_total (uint)  nu: n_unread_total (uint)  aid: after_id (str)
 *   name: name (str)         title: title (str)       dept: dept (str)
 *   parent: parent (str)
 *   app: app (str, app id)   dps: depts (array of str)  tgs: tags (array of str)
 *   win: window (uint, seconds)                        lim: limited (array of str)
 *   iu: bad_users (array of str)  ip: bad_depts (array of str)
 *   itg: bad_tags (array of str)  cgs: groups (array of str)
 *   sts: statuses (array of str)  ats: times (array of uint, ms since the epoch)
 *   rsn: reasons (array of str)   rtx: texts (array of str)
 *   corp: corp (str, the tenant's display name on a DIR_RESULT user card)
 *   unr: unreached (array of str, APP_RESULT: "USER: CODE: why" per recipient
 *        the delivery failed for)
 *   cvk: conv_kinds (array of str)  cvn: conv_counts (array of uint)
 *   cvu: conv_unread (array of uint)
 *
 * MESSAGE MAP (in "m" and "msgs"): conv (str), seq (uint), from (str),
 *   ts (uint), body (bin), flags (uint), mk (uint message kind), g (uint
 *   shard group), pos (uint: the message's position in its group, 1, 2, 3,
 *   … over every message the group stores), pv (uint, DELIVER only: the
 *   position of the recipient's previous message in that group, or an
 *   upper bound of it), idc / idt (str: certified
 *   identity — corp name and title — stamped by the broker, never by a
 *   client, on an employee's message to a conversation with external
 *   members).
 *
 * FRAMES (→ client to server, ← server to client; * = required)
 *   → HELLO      tok*, v, sg, sc      first frame on a connection
 *   ← WELCOME    rid, user, ten, admin, hb, maxf, v, sg, sc
 *                the user's CURRENT sync position (a client without a saved
 *                key adopts it and starts live; one with a key SYNCs from it)
 *   → SEND       rid, conv*, cmid, body, flags
 *   ← ACK        rid, conv, seq, ts, dup   (dup: cmid seen before; seq is the original)
 *   ← ERROR      code*, msg, ref      (ref = rid of the failed request, 0 if none)
 *   ← DELIVER    m*                   a pushed message
 *   → SYNC       rid, sg, sc, limit   everything after this sync key
 *   ← SYNC_RESULT rid, msgs, sg, sc, more   new sync key; more: call SYNC again
 *   → HISTORY    rid, conv*, after, limit   messages with seq > after, ascending
 *   ← HISTORY_RESULT rid, msgs, more
 *   → READ       rid, conv*, seq*     read cursor: all messages ≤ seq are read
 *   ← OK         rid, seq             (seq = the cursor now stored)
 *   ← RECEIPT    conv*, user*, seq*   event: user's read cursor advanced to seq
 *   → RECEIPTS   rid, conv*, seq*, aid, limit   who has / has not read message seq
 *   ← RECEIPTS_RESULT rid, conv, seq, read, unread, nr, nu, more, aid
 *                nr/nu count every member. Up to 2,000 members both lists
 *                are complete. Larger conversations (announcements) get the
 *                counts and one page of the unread list (limit names, default
 *                and max 1,000, after member id aid); more + aid = the next
 *                page's cursor.
 *   → CONV       rid, op*, conv, kind, mem   op: create | add | remove | info
 *   ← CONV_RESULT rid, conv, kind, owner, mem, seq (max seq), cap, cnt, ts (created),
 *                 grp (shard group), ldr (its leader node, cluster)
 *   → CONV       rid, op* = list, limit, aid   the user's conversations, the
 *                newest activity first, limit per page (default 50, max 200),
 *                after cursor aid (absent: from the top)
 *   ← CONV_RESULT rid, msgs (the last message of each: conv = its id, seq =
 *                its last seq, 0 with ts = creation time when none; body cut
 *                to 120 bytes), cvk / cvn / cvu (its kind, member count,
 *                messages after the user's read cursor: one per msgs entry),
 *                more + aid = the next page's cursor
 *   → PING       rid               ← PONG rid
 *   → RECALL     rid, conv*, seq*     take message seq back: its sender within
 *                the tenant's recall window (default 24 h), the owner or an
 *                admin any time; the stored message becomes a tombstone (flag
 *                RECALLED, no body) and a system message {"event":"recall",
 *                "by":USER,"seq":N} is pushed and synced like any other
 *   ← OK         rid, seq             (seq = the system message's seq)
 *   → DND        rid, op*, ts         do-not-disturb ("take a break"): op on
 *                (until ts, ms since the epoch; 0 = until turned off) | off |
 *                status. While on, DELIVER and SYNC_RESULT messages carry
 *                SILENT (no alert) unless URGENT; they are still delivered.
 *   ← OK         rid, flags, ts       flags 1 = on, ts = until (0 = off; 2^64 − 1 = on until
 *                turned off)
 *   → URGENT     rid, op*, conv*, seq*   urgent (DING) messages, sent with
 *                flags URGENT: op confirm (a recipient confirms) → OK, or
 *                status → URGENT_RESULT
 *   ← URGENT_RESULT rid, conv, seq, read (confirmed), unread (pending)
 *   ← REMIND     op*, conv*, seq*, user, cnt, mem   event: op "remind" to
 *                a recipient who has not confirmed (user = that recipient,
 *                cnt = reminder number, every tenant interval, default
 *                5 min), op "escalate" to the sender when the reminders ran
 *                out (default 3; user = the sender, mem = the members who
 *                never confirmed, an array like URGENT_RESULT's unread) —
 *                the hook for SMS/phone; also logged as urgent.escalate
 *   → DIR        rid, op*, user, kind, name, title, dept, parent   the
 *                directory: op user.add (admin; kind internal | external) |
 *                user.show | dept.add (admin; dept, name, parent) | dept.show |
 *                dept.list (dept; absent = the top of the tree)
 *   ← DIR_RESULT rid, user, kind, name, title, dept, parent, corp; dept.list:
 *                dept, name, parent, dps (its sub-departments), mem (its
 *                users), at most 1,000 of each, more when cut
 *                A user missing from the directory is internal, named by id.
 *                An external customer gets public cards only (itself and the
 *                employees owning it: name, title, corp; no department).
 *   → CONTACT    rid, op*, user, conv    external contacts, owned by the
 *                enterprise: op add (admin; user = employee, conv = customer)
 *                creates or returns their 1:1 conversation | list (conv =
 *                customer): the employees who own the relationship
 *   ← CONTACT_RESULT rid, conv (the 1:1 conversation, add), mem (owners, list)
 *   → TAG        rid, op*, user*, mem   customer tags: op add | remove (admin;
 *                user = an external user, mem = up to 100 tag ids) | list
 *   ← TAG_RESULT rid, user, mem        the customer's tags after the call
 *   → MASS       rid, op*, conv, mem, body   mass message to customers: op send
 *                (admin; mem = tags, any-of; body = text; conv = mass id,
 *                optional) sends body to every tagged customer through each
 *                owning employee's 1:1 conversation, at most one mass message
 *                per customer per day (UTC); op status (conv = mass id)
 *   ← MASS_RESULT rid, conv (mass id), read (customers reached), unread
 *                (limited: already had one today), mem (not reached: no
 *                owner or the send failed), cnt (messages sent), itg (send:
 *                tags nobody carries; with none valid the answer is ERROR
 *                INVAL)
 *   → STATUS     rid                  (tenant admin) the broker's state
 *   ← STATUS_RESULT rid, body         a JSON document: mode, version,
 *                uptime_s, connections, users_online, groups [{group,
 *                applied, map_bytes, pending, batches}]
 *   → APP        rid, op*, app*, mem, dps, tgs, body, cmid, win   app
 *                messages and announcements (admin; WeCom's message/send):
 *                op send (one message to each recipient in the app's 1:1
 *                conversation with them, "app:APP" ↔ user) | announce (one
 *                read-diffused announce conversation holding every
 *                recipient). Recipients: mem = users (≤1,000; "@all" = every
 *                employee in the directory), dps = departments (≤100, with
 *                their sub-departments), tgs = tags (≤100); only users in
 *                the directory are reached, at most 10,000 in all. cmid =
 *                message id: the same app + cmid again within the duplicate
 *                window (win seconds, ≤14,400; 0 = the tenant's, default
 *                1,800) is a duplicate: dup set, the original outcome, nothing
 *                sent twice. A recipient who already got the tenant's cap of
 *                messages from this app in the current minute (default 30) is
 *                limited; when every recipient is limited the answer is ERROR
 *                RATE_LIMITED
 *   ← APP_RESULT rid, app, cmid (message id), conv (announce: its
 *                conversation), dup, cnt (messages stored), mem (recipients
 *                reached), lim (limited by the frequency cap), iu / ip / itg
 *                (invalid users / departments / tags), unr (deliveries that
 *                failed: "USER: CODE: why")
 *   → APP        rid, op*, app, body   app management: body is ONE JSON
 *                object of arguments (unknown keys and wrong types are ERROR
 *                INVAL saying which), the answer an APP_RESULT whose body is
 *                one JSON object. op create (admin; app; {"scopes": [message |
 *                directory | contact | transfer | conversation | user_token],
 *                "name"}) → {"tenant","app","secret"} (the secret is shown
 *                once; the broker keeps its SHA-256) | list (admin; {"after",
 *                "limit"}) → {"apps":[{"app","name","scopes","created",
 *                "callback_url"}],"more"} | login (no HELLO needed: exactly
 *                create's answer) → {"access_token","expires_in":7200}, a
 *                token for user "app:APP" | user_token (admin, or an app with
 *                scope user_token; {"userid","ttl","admin"}) → {"token",
 *                "expires_in"}. An app's token runs the verbs of its scopes
 *                with the tenant-admin role (authz.c), its app messages as
 *                itself only. The callback ops (callback, events, redeliver)
 *                follow the same convention.
 *   → TRANSFER   rid, op*, user, owner, mem, cgs, flags   customer transfer
 *                (WeCom's transfer_customer / resigned transfer): op start
 *                (admin; user = the current owner, owner = the taker, mem =
 *                customers ≤100, cgs = customer groups ≤100, flags 1 =
 *                resigned) | refuse (a customer objects to its waiting
 *                transfer). In service a customer is taken over after the
 *                tenant's wait (default 24 h) unless it objects; a resigned
 *                employee's customers move at once. A customer transferred
 *                twice in service within 90 days is refused; a taker with the
 *                tenant's customer limit is at limit. Sending the same start
 *                again reports the current state.
 *   ← TRANSFER_RESULT rid, mem (customers, then groups), cnt (how many of
 *                mem are customers), sts (status of each: done | waiting |
 *                refused | taker_at_limit | no_record), ats (takeover time of
 *                each, ms; 0 when not waiting), rsn (why, for every status
 *                but done: customer_may_object, taking_over,
 *                customer_refused, transfer_pending, taker_serves,
 *                protected_90_days, taker_at_limit, not_owner,
 *                member_cap_exceeded, …; "" for done) and rtx (the same in
 *                words), one per mem entry
 *
 * SYNC KEYS. A client's position is a small vector: for every shard group
 * the group position pos up to which it holds every message of its own
 * conversations. Every conversation is read-diffused: storing a message
 * writes the same few records whatever the member count, and gives it the
 * next position of its group. SYNC from a key returns, in position order,
 * the messages of the user's conversations in that group with a higher
 * position (each from the user's joined seq on), and the new position.
 * DELIVER carries pos and pv: when pv ≤ the key's position the client has
 * everything before this message and advances to pos; when pv is higher
 * something was missed and the client SYNCs. pv = pos - 1 is always a
 * correct (if pessimistic) value: a server that does not know the chain
 * sends it. The sc part of HELLO / SYNC / WELCOME / SYNC_RESULT is no
 * longer produced and is ignored.
 *
 * Thread safety: the codec is reentrant; a herald_frame is not shared.
 */
#ifndef HERALD_PROTOCOL_H
#define HERALD_PROTOCOL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HERALD_PROTOCOL_VERSION 1u
#define HERALD_FRAME_HEADER 4u               /* bytes of length prefix */
#define HERALD_FRAME_MAX_DEFAULT (1u << 20)  /* default frame cap, 1 MiB */
/* Room a message body leaves for the envelope of the frames that carry it
 * (DELIVER, HISTORY_RESULT, SYNC_RESULT: ids of up to 128 bytes, certified
 * identity, sync key): a SEND body may be at most WELCOME's max_frame less
 * this, else ERROR TOO_BIG. The server never sends a frame over max_frame. */
#define HERALD_ENVELOPE_RESERVE 4096u
#define HERALD_DEPTH_MAX_DEFAULT 8u          /* default msgpack nesting cap */

/* X(NAME, number) */
#define HERALD_FRAME_TYPES(X)                                                 \
    X(HELLO, 1)                                                               \
    X(WELCOME, 2)                                                             \
    X(SEND, 3)                                                                \
    X(ACK, 4)                                                                 \
    X(ERROR, 5)                                                               \
    X(DELIVER, 6)                                                             \
    X(SYNC, 7)                                                                \
    X(SYNC_RESULT, 8)                                                         \
    X(HISTORY, 9)                                                             \
    X(HISTORY_RESULT, 10)                                                     \
    X(READ, 11)                                                               \
    X(OK, 12)                                                                 \
    X(RECEIPT, 13)                                                            \
    X(RECEIPTS, 14)                                                           \
    X(RECEIPTS_RESULT, 15)                                                    \
    X(CONV, 16)                                                               \
    X(CONV_RESULT, 17)                                                        \
    X(PING, 18)                                                               \
    X(PONG, 19)                                                               \
    X(RECALL, 20)                                                             \
    X(DND, 21)                                                                \
    X(URGENT, 22)                                                             \
    X(URGENT_RESULT, 23)                                                      \
    X(REMIND, 24)                                                             \
    X(DIR, 25)                                                                \
    X(DIR_RESULT, 26)                                                         \
    X(CONTACT, 27)                                                            \
    X(CONTACT_RESULT, 28)                                                     \
    X(STATUS, 29)                                                             \
    X(STATUS_RESULT, 30)                                                      \
    X(TAG, 31)                                                                \
    X(TAG_RESULT, 32)                                                         \
    X(MASS, 33)                                                               \
    X(MASS_RESULT, 34)                                                        \
    X(APP, 35)                                                                \
    X(APP_RESULT, 36)                                                         \
    X(TRANSFER, 37)                                                           \
    X(TRANSFER_RESULT, 38)

typedef enum herald_frame_type {
#define HERALD_FT_ENUM_(name, num) HERALD_FT_##name = num,
    HERALD_FRAME_TYPES(HERALD_FT_ENUM_)
#undef HERALD_FT_ENUM_
    HERALD_FT_COUNT_
} herald_frame_type;

/* Message flags ("flags"). Bits a client may set in SEND are
 * HERALD_MSGF_CLIENT_MASK; the broker clears every other bit it receives. */
#define HERALD_MSGF_SILENT 0x1u  /* deliver without an alert */
#define HERALD_MSGF_URGENT 0x2u  /* must-reach (DING) */
#define HERALD_MSGF_RECALLED 0x4u /* set by the broker: a tombstone, body removed */
#define HERALD_MSGF_CONFIRMED 0x8u /* set by the broker in HISTORY_RESULT and
                                      SYNC_RESULT: an URGENT message the reader
                                      has confirmed (or sent); never stored */
#define HERALD_MSGF_CLIENT_MASK (HERALD_MSGF_SILENT | HERALD_MSGF_URGENT)

/* Message kinds ("mk"). */
#define HERALD_MK_TEXT 0u    /* a user's message */
#define HERALD_MK_SYSTEM 1u  /* membership change etc.; body is a short text */

/* A byte string that is NOT NUL-terminated. In a decoded frame it points into
 * the input buffer and lives as long as that buffer. */
typedef struct herald_str {
    const char *ptr; /* first byte; NULL when absent */
    uint32_t len;    /* number of bytes */
} herald_str;

/* One stored message (DELIVER "m", SYNC_RESULT/HISTORY_RESULT "msgs"). */
typedef struct herald_msg {
    herald_str conv;  /* conversation id */
    uint64_t seq;     /* conversation sequence, gap-free from 1 */
    herald_str from;  /* sender user id */
    uint64_t ts;      /* broker commit time, ms since the Unix epoch */
    herald_str body;  /* payload bytes */
    uint32_t flags;   /* HERALD_MSGF_* */
    uint32_t kind;    /* HERALD_MK_* */
    uint32_t group;   /* shard group holding the conversation */
    uint64_t pos;     /* position in `group` (0: not from a group) */
    herald_str id_corp;  /* certified identity, stamped by the broker on an
                            employee's message to a conversation with external
                            members: the enterprise's name ("idc") */
    herald_str id_title; /* ... and the employee's title ("idt") */
    uint64_t prev;       /* DELIVER ("pv"): the recipient's previous position
                            in `group`, or a bound of it (see SYNC KEYS) */
} herald_msg;

/* One entry of the group part of a sync key. */
typedef struct herald_sync_group {
    uint32_t group; /* shard group id */
    uint64_t pos;   /* group position up to which the client holds everything */
} herald_sync_group;

/* One entry of the conversation part of a sync key. */
typedef struct herald_sync_conv {
    herald_str conv; /* read-diffused conversation id */
    uint64_t seq;    /* highest conversation seq seen */
} herald_sync_conv;

/* A decoded frame. Which fields are meaningful depends on `type` (see the
 * table above). Zero / empty = absent. Arrays are owned by the frame (freed by
 * herald_frame_release); strings point into the decoded buffer. For encoding,
 * fill the fields and call herald_frame_encode; the encoder never frees. */
typedef struct herald_frame {
    uint32_t type;        /* HERALD_FT_* */
    uint64_t rid;         /* request id, echoed in the response */
    uint64_t ref;         /* ERROR: rid of the request that failed */
    herald_str token;     /* HELLO: signed token */
    uint32_t version;     /* HELLO/WELCOME: protocol version */
    herald_str user;      /* WELCOME: authenticated user; RECEIPT: reader */
    herald_str tenant;    /* WELCOME: tenant of the token */
    bool admin;           /* WELCOME: token carries the tenant-admin role */
    uint32_t hb_ms;       /* WELCOME: server expects traffic at least this often */
    uint32_t max_frame;   /* WELCOME: server's frame cap in bytes */
    herald_str conv;      /* conversation id */
    herald_str cmid;      /* SEND: client message id (dedup key) */
    herald_str body;      /* SEND: payload */
    uint32_t flags;       /* SEND: HERALD_MSGF_* */
    uint64_t seq;         /* ACK/READ/OK/RECEIPT/RECEIPTS/CONV_RESULT: a seq */
    uint64_t ts;          /* ACK: commit time; CONV_RESULT: creation time */
    bool dup;             /* ACK: the cmid was seen before */
    uint32_t code;        /* ERROR: herald_err */
    herald_str text;      /* ERROR: human-readable message ("msg") */
    uint64_t after;       /* HISTORY: return seq > after */
    uint32_t limit;       /* SYNC/HISTORY: max messages (0 = server default) */
    bool more;            /* SYNC_RESULT/HISTORY_RESULT: more remain */
    herald_str op;        /* CONV: create | add | remove | info */
    herald_str kind;      /* CONV: single | group | customer_group | announce */
    herald_str owner;     /* CONV_RESULT: owner user id */
    uint32_t cap;         /* CONV_RESULT: member cap */
    uint32_t count;       /* CONV_RESULT: member count */
    herald_msg msg;       /* DELIVER: the message ("m") */
    uint32_t n_members;   /* CONV/CONV_RESULT: members; REMIND escalate: who never
                             confirmed */
    herald_str *members;
    uint32_t n_read;      /* RECEIPTS_RESULT: users who have read */
    herald_str *read;
    uint32_t n_unread;    /* RECEIPTS_RESULT: users who have not */
    herald_str *unread;
    uint32_t n_msgs;      /* SYNC_RESULT/HISTORY_RESULT: messages */
    herald_msg *msgs;
    uint32_t n_sync_groups; /* HELLO/SYNC/SYNC_RESULT: sync key, group part */
    herald_sync_group *sync_groups;
    uint32_t n_sync_convs;  /* HELLO/SYNC/SYNC_RESULT: sync key, conv part */
    herald_sync_conv *sync_convs;
    uint32_t n_read_total;  /* RECEIPTS_RESULT: members who have read */
    uint32_t n_unread_total;/* RECEIPTS_RESULT: members who have not */
    herald_str after_id;    /* RECEIPTS: page after this member id; RESULT: next cursor */
    herald_str name;        /* DIR: display name */
    herald_str title;       /* DIR: job title */
    herald_str dept;        /* DIR: department id */
    herald_str parent;      /* DIR: parent department id */
    uint32_t group;         /* CONV_RESULT: the conversation's shard group ("grp") */
    uint32_t leader;        /* CONV_RESULT: node id leading that group, cluster only ("ldr") */
    herald_str app;         /* APP/APP_RESULT: app id */
    uint32_t window;        /* APP: duplicate-check window, seconds ("win") */
    uint32_t n_depts;       /* APP: departments ("dps") */
    herald_str *depts;
    uint32_t n_tags;        /* APP: tags ("tgs") */
    herald_str *tags;
    uint32_t n_limited;     /* APP_RESULT: recipients over the frequency cap ("lim") */
    herald_str *limited;
    uint32_t n_bad_users;   /* APP_RESULT: invalid users ("iu") */
    herald_str *bad_users;
    uint32_t n_bad_depts;   /* APP_RESULT: invalid departments ("ip") */
    herald_str *bad_depts;
    uint32_t n_bad_tags;    /* APP_RESULT: invalid tags ("itg") */
    herald_str *bad_tags;
    uint32_t n_groups;      /* TRANSFER: customer groups ("cgs") */
    herald_str *groups;
    uint32_t n_statuses;    /* TRANSFER_RESULT: one status per mem entry ("sts") */
    herald_str *statuses;
    uint32_t n_times;       /* TRANSFER_RESULT: takeover time per mem entry ("ats") */
    uint64_t *times;
    uint32_t n_reasons;     /* TRANSFER_RESULT: machine-readable reason per mem entry ("rsn") */
    herald_str *reasons;
    uint32_t n_texts;       /* TRANSFER_RESULT: the reason in words per mem entry ("rtx") */
    herald_str *texts;
    herald_str corp;        /* DIR_RESULT (users): the tenant's display name ("corp") */
    uint32_t n_unreached;   /* APP_RESULT: "USER: CODE: why" per failed delivery ("unr") */
    herald_str *unreached;
    uint32_t n_conv_kinds;  /* CONV_RESULT (list): the kind of each msgs entry ("cvk") */
    herald_str *conv_kinds;
    uint32_t n_conv_counts; /* CONV_RESULT (list): its member count ("cvn") */
    uint64_t *conv_counts;
    uint32_t n_conv_unread; /* CONV_RESULT (list): its unread count ("cvu") */
    uint64_t *conv_unread;
} herald_frame;

/* Decoder limits. Zero fields take the defaults. */
typedef struct herald_limits {
    uint32_t max_frame; /* payload cap in bytes (HERALD_FRAME_MAX_DEFAULT) */
    uint32_t max_depth; /* msgpack nesting cap (HERALD_DEPTH_MAX_DEFAULT) */
} herald_limits;

/* A growable byte buffer. Zero-initialise; free with herald_buf_free. */
typedef struct herald_buf {
    uint8_t *data; /* bytes, malloc'd */
    size_t len;    /* bytes in use */
    size_t cap;    /* bytes allocated */
} herald_buf;

/* Ensures room for `extra` more bytes. 0 or HERALD_ENOMEM (buffer unchanged). */
int herald_buf_reserve(herald_buf *b, size_t extra);
/* Appends `n` bytes. 0 or HERALD_ENOMEM (buffer unchanged). */
int herald_buf_append(herald_buf *b, const void *p, size_t n);
/* Drops the first `n` bytes (n ≤ len), moving the rest to the front. */
void herald_buf_consume(herald_buf *b, size_t n);
/* Frees the storage and zeroes *b. NULL-safe. */
void herald_buf_free(herald_buf *b);

/* Looks at the start of a byte stream. When a whole frame is present sets
 * *frame_len to its total size (header included) and returns 0; when more
 * bytes are needed sets *frame_len to 0 and returns 0. Returns HERALD_ETOO_BIG
 * when the header announces a payload above max_frame (0 = default), and
 * HERALD_EPROTOCOL for a zero-length payload. Never allocates. */
int herald_frame_peek(const uint8_t *data, size_t len, uint32_t max_frame,
                      size_t *frame_len);

/* Decodes one frame payload (without the 4-byte header) into *out, which is
 * overwritten. Returns 0; HERALD_ETOO_BIG (payload over the cap);
 * HERALD_EPROTOCOL (not one well-formed map, trailing bytes, depth or count
 * over the limits, a known key with the wrong type, a required key missing,
 * an unknown frame type); HERALD_ENOMEM. On error *out holds nothing to free.
 * On success strings in *out point into `payload`, which must outlive them;
 * release arrays with herald_frame_release. `lim` may be NULL (defaults). */
int herald_frame_decode(const uint8_t *payload, size_t len,
                        const herald_limits *lim, herald_frame *out);

/* Frees the arrays of a decoded frame and zeroes it. NULL-safe. */
void herald_frame_release(herald_frame *f);

/* Appends the encoding of *f (4-byte header + map) to `out`. Fields equal to
 * zero/false/empty are omitted. Returns 0, HERALD_EINVAL (unknown type) or
 * HERALD_ENOMEM; on error `out` keeps its previous length. */
int herald_frame_encode(const herald_frame *f, herald_buf *out);

/* An ERROR frame: code, text (NULL: the code's own text, herald_strerror),
 * ref = the request id it answers (0: none). text is borrowed. */
herald_frame herald_frame_error(int code, const char *text, uint64_t ref);

/* "HELLO", "SEND", … or "UNKNOWN". Static storage. */
const char *herald_frame_type_name(uint32_t type);

/* True when s equals the NUL-terminated string z. */
bool herald_str_eq(herald_str s, const char *z);
/* A herald_str viewing the NUL-terminated z (NULL gives an absent string). */
herald_str herald_str_z(const char *z);

#ifdef __cplusplus
}
#endif
#endif
