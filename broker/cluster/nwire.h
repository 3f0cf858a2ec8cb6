/*
 * nwire.h — the messages between gateways and nodes, and between nodes
 * (never seen by clients). Each is one msgpack map in one nng message;
 * decoders trust nothing (mpt_decode_bytes: bounded walk, types checked,
 * unknown keys skipped) and are fuzzed (tests/fuzz/fuzz_nwire.c).
 *
 * Request (nng REQ → a node's REP), kind:
 *   NW_CLIENT   a client frame forwarded by a gateway: the frame's msgpack
 *               map (no length header) plus the session it came from
 *               (tenant, user, admin, do-not-disturb end; all empty/0 before
 *               HELLO). The node runs it and answers with the frames to send.
 *               `reach` (HELLO, SYNC) names, per group, the raft index of
 *               the newest event the gateway has pushed: the node serves
 *               the frame only once its replicas have applied that far, so
 *               a sync never answers less than a push proved exists.
 *   NW_PROPOSE  an encoded command for group `group`, proposed by the leader
 *               and answered with its apply_result once applied.
 *   NW_STATUS   the node's view of the cluster (JSON in `json`).
 *   NW_REPLAY   events [seq_from, seq_to] of the node's event stream `epoch`,
 *               again (gap repair); the reply's `frames` hold the encoded
 *               events still in the node's ring, in order (status
 *               HERALD_ENOT_FOUND when the epoch is over or none is left).
 *   NW_OFFLINE  a gateway's offline reports (session/offrep.h) for the
 *               leader of `group`: per message (oconvs[i], oseqs[i]) the
 *               ocounts[i] recipients of `users` (report after report) it
 *               had no session of; answered 0 once taken (aggregated, see
 *               service/offline.c) or NOT_LEADER.
 * `gw` is the sending gateway's id on every request a gateway sends (0 from
 * a node): a node counts a gateway live while it hears from it.
 * Reply: status (0 or a HERALD code; HERALD_ENOT_LEADER comes with the
 * leader hint when known), the frames for the client, an encoded
 * apply_result, the authenticated session after HELLO, `close` (the client
 * is to be disconnected after the frames), and the node's leader table
 * (leaders[g] = node id leading group g as this node knows it, 0 unknown).
 *
 * Event (a node's PUB → gateways' SUB): what a gateway needs to push to its
 * own sessions. NW_EV_FRAME: `frame` (one encoded client frame: DELIVER,
 * RECEIPT, REMIND) goes to every session of each user in `users`; for a
 * DELIVER, prevs[i] is users[i]'s previous position in the group (set
 * into the frame's msg.prev; see events.h) and the gateway adds the SILENT flag for sessions in
 * do-not-disturb unless the message is urgent. NW_EV_DND: users[0] of
 * tenant switched do-not-disturb; `until` is the new end (0 off).
 * NW_EV_HEAD: no event itself (no seq of its own, no users): `pubseq` is the
 * last one the node published, repeated periodically so a gateway notices
 * when the newest events of a stream were dropped (nothing after them would
 * show the gap).
 * `pubseq` counts events per publishing node (gap detection). A FRAME event
 * names the group and raft index of the entry that produced it (what a
 * gateway asks a node's replicas to reach before a HELLO or SYNC).
 *
 * Thread safety: reentrant.
 */
#ifndef HERALD_NODE_NWIRE_H
#define HERALD_NODE_NWIRE_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>

#include "apply.h"

#define NW_MAX_GROUPS 65u      /* meta group + up to 64 shard groups */
#define NW_MAX_FRAMES 4096u    /* frames in one reply */
#define NW_MAX_USERS 100000u   /* users in one event */
#define NW_MAX_PROG (4u * NW_MAX_GROUPS * 16u) /* replica progress entries */
#define NW_MAX_OFFLINE 1024u   /* messages in one NW_OFFLINE */

enum nw_kind { NW_CLIENT = 1, NW_PROPOSE = 2, NW_STATUS = 3, NW_REPLAY = 4, NW_OFFLINE = 5 };
enum nw_ev_kind { NW_EV_FRAME = 1, NW_EV_DND = 2, NW_EV_HEAD = 3 };

typedef struct nw_request {
    uint32_t kind;       /* nw_kind */
    uint32_t from;       /* sender: gateway id (NW_CLIENT) or node id (NW_PROPOSE) */
    herald_str tenant;   /* NW_CLIENT: session's tenant ("" before HELLO) */
    herald_str user;     /* NW_CLIENT: session's user */
    bool admin;          /* NW_CLIENT: tenant-admin role */
    uint64_t dnd_until;  /* NW_CLIENT: session's do-not-disturb end, ms */
    herald_str token;    /* NW_CLIENT after HELLO: the session's token; the node
                            takes tenant, user and admin from it (verified with
                            the tenant's secret), never from the fields above */
    herald_str frame;    /* NW_CLIENT: the client's frame payload (the msgpack map
                            after the length header) */
    uint32_t group;      /* NW_PROPOSE: target group */
    herald_str cmd;      /* NW_PROPOSE: encoded command */
    uint64_t epoch;      /* NW_REPLAY: the event stream */
    uint64_t seq_from;   /* NW_REPLAY: first pubseq wanted (≥ 1) */
    uint64_t seq_to;     /* NW_REPLAY: last pubseq wanted (≥ seq_from) */
    uint32_t n_reach;    /* NW_CLIENT: entries in reach (≤ NW_MAX_GROUPS) */
    uint64_t *reach;     /* NW_CLIENT: reach[g] = the raft index of group g the
                            serving node's replica must have applied before it
                            runs the frame (the newest event of g the gateway
                            has pushed; 0 none); owned array after decode */
    uint32_t gw;         /* the sending gateway's id (every gateway request; 0 from
                            a node) */
    uint32_t n_oconvs;   /* NW_OFFLINE: messages (1..NW_MAX_OFFLINE; = n_oseqs =
                            n_ocounts) */
    herald_str *oconvs;  /* NW_OFFLINE: message i's conversation; owned array */
    uint32_t n_oseqs;
    uint64_t *oseqs;     /* NW_OFFLINE: message i's seq; owned array */
    uint32_t n_ocounts;
    uint64_t *ocounts;   /* NW_OFFLINE: users of message i (add up to n_users);
                            owned array */
    uint32_t n_users;    /* NW_OFFLINE: ≤ NW_MAX_USERS */
    herald_str *users;   /* NW_OFFLINE: not here, message after message; owned array */
} nw_request;

typedef struct nw_reply {
    int32_t status;        /* 0 or a HERALD code (as int; negative on the wire is fine) */
    uint32_t hint;         /* NOT_LEADER: leader's node id, 0 unknown */
    uint32_t n_frames;     /* NW_CLIENT: complete wire frames as herald_frame_encode
                              writes them (length header included), to be
                              appended verbatim to the client's output */
    herald_str *frames;    /* owned array after decode; strings point into the input */
    herald_str result;     /* NW_PROPOSE: encoded apply_result */
    bool authed;           /* NW_CLIENT HELLO accepted: the session below */
    herald_str tenant;
    herald_str user;
    bool admin;
    uint64_t dnd_until;
    bool close;            /* close the client connection after the frames */
    uint32_t n_leaders;    /* entries in leaders (≤ NW_MAX_GROUPS) */
    uint32_t leaders[NW_MAX_GROUPS]; /* leaders[g]: node id, 0 unknown */
    herald_str json;       /* NW_STATUS: the node's status document */
    uint32_t n_prog;       /* NW_STATUS: multiple of 4, ≤ NW_MAX_PROG */
    uint64_t *prog;        /* flat (group, node, match index, commit index) for each
                              replica of each group the answering node leads;
                              owned array after decode */
} nw_reply;

typedef struct nw_event {
    uint32_t kind;         /* nw_ev_kind */
    uint32_t node;         /* publishing node id */
    uint64_t epoch;        /* the publisher's stream (a new one per process start) */
    uint64_t pubseq;       /* per stream, from 1, +1 per event */
    herald_str tenant;
    uint32_t n_users;      /* ≤ NW_MAX_USERS */
    herald_str *users;     /* owned array after decode */
    uint32_t n_prevs;      /* 0, or n_users for a DELIVER */
    uint64_t *prevs;       /* owned array after decode */
    herald_str frame;      /* NW_EV_FRAME: one complete wire frame (length header
                              included, as herald_frame_encode writes it) */
    uint64_t until;        /* NW_EV_DND */
    uint32_t group;        /* NW_EV_FRAME: the group whose entry produced it */
    uint64_t index;        /* NW_EV_FRAME: that entry's raft index (0 unknown) */
} nw_event;

/* Encoders append to out: 0, HERALD_EINVAL (counts over the caps above),
 * HERALD_ENOMEM. Decoders: strings point into p (keep it alive); 0,
 * HERALD_EPROTOCOL (malformed, wrong types, counts over caps or over the
 * bytes left, missing kind), HERALD_ENOMEM; on error nothing to free. */
int nw_request_encode(const nw_request *r, herald_buf *out);
int nw_request_decode(const uint8_t *p, size_t n, nw_request *out);
void nw_request_release(nw_request *r);

int nw_reply_encode(const nw_reply *r, herald_buf *out);
int nw_reply_decode(const uint8_t *p, size_t n, nw_reply *out);
void nw_reply_release(nw_reply *r);

int nw_event_encode(const nw_event *e, herald_buf *out);
int nw_event_decode(const uint8_t *p, size_t n, nw_event *out);
void nw_event_release(nw_event *e);

/* Event batches: one PUB message carries every event a node produced in
 * one loop iteration, each as [4-byte big-endian length][encoded event].
 * nw_batch_add appends one encoded event; nw_batch_next walks a received
 * batch from *off: 0 with the next event in (*ev, *len), HERALD_ENOT_FOUND
 * at the end, HERALD_EPROTOCOL when the framing is broken (lengths are
 * checked against the bytes left; an empty event is malformed). */
int nw_batch_add(herald_buf *batch, const void *ev, size_t len);
int nw_batch_next(const uint8_t *p, size_t n, size_t *off, const uint8_t **ev, size_t *len);

/* apply_result over the wire (NW_PROPOSE replies): every field including
 * errmsg, targets, reminders and mass outcomes. The decoded result owns an
 * arena like apply_batch's (free with apply_result_free). */
int nw_result_encode(const apply_result *r, herald_buf *out);
int nw_result_decode(const uint8_t *p, size_t n, apply_result *out);

#endif
