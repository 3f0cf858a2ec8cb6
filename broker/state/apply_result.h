/*
 * apply_result.h — what one applied command did (apply.h runs commands):
 * the result that drives the requester's ack and the push events
 * (events.h), and the outcomes of the multi-subject commands. Everything a
 * result points to lives in its arena, freed by apply_result_free.
 *
 * A result is filled on the applying thread and read, once its batch has
 * committed, on any thread (it is not shared while it is being filled).
 */
#ifndef HERALD_STATE_APPLY_RESULT_H
#define HERALD_STATE_APPLY_RESULT_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>

/* One recipient of a fan-out. */
typedef struct apply_target {
    const char *user; /* NUL-terminated, in the result's arena */
} apply_target;

/* One reminder (or escalation) produced by CMD_REMIND. */
typedef struct apply_remind {
    const char *tenant;    /* NUL-terminated, in the result's arena */
    const char *conv;      /* conversation */
    uint64_t seq;          /* the urgent message */
    const char *user;      /* remind: the pending recipient; escalate: the sender */
    const char *pending;   /* escalate: pending recipients, comma-separated */
    uint32_t count;        /* reminder number */
    bool escalate;         /* reminders ran out: tell the sender / the hook */
} apply_remind;

/* One outcome of MASS_MARK: a message to send, or why a customer gets none. */
#define MASS_SENT 1u      /* send through owner's conversation */
#define MASS_LIMITED 2u   /* already had a mass message today */
#define MASS_NO_OWNER 3u  /* no employee owns the relationship */
/* APP_MARK outcomes: a recipient reached, limited, or an invalid id. */
#define APP_SENT 1u       /* deliver to this user */
#define APP_LIMITED 2u    /* over the per-member per-app frequency cap */
#define APP_BAD_USER 3u   /* not a user in the directory (or malformed) */
#define APP_BAD_DEPT 4u   /* no such department */
#define APP_BAD_TAG 5u    /* nobody carries the tag */
/* TRANSFER_* outcomes, one per customer (or customer group). */
#define XFER_DONE 1u      /* the taker owns it now */
#define XFER_WAITING 2u   /* in service: taken over at `at` unless it objects */
#define XFER_REFUSED 3u   /* the customer objected, or is protected (two
                             in-service transfers in 90 days), or another
                             transfer of it is waiting */
#define XFER_AT_LIMIT 4u  /* the taker has the tenant's customer limit */
#define XFER_NO_RECORD 5u /* the from employee does not own it */
#define XFER_MOVING 6u    /* taking over: hand the conversation over, then
                             TRANSFER_DONE (gateway steps, idempotent) */
/* Why a TRANSFER_MARK outcome is what it is: in the bits above the status
 * (apply_mass.status = XFER_* | XFER_WHY_* << XFER_WHY_SHIFT), so a result
 * forwarded between nodes carries it unchanged. Records keep the bare state. */
#define XFER_WHY_SHIFT 8u
#define XFER_STATUS(st) ((st) & 0xffu)        /* the XFER_* part */
#define XFER_WHY(st) ((st) >> XFER_WHY_SHIFT) /* the XFER_WHY_* part (0: none) */
#define XFER_WHY_OBJECTED 1u  /* refused: the customer objected (in service,
                                 within 90 days of the objection) */
#define XFER_WHY_PENDING 2u   /* refused: another transfer of it is waiting */
#define XFER_WHY_SERVED 3u    /* refused: the taker serves it already */
#define XFER_WHY_PROTECTED 4u /* refused: two in-service transfers in 90 days */
typedef struct apply_mass {
    const char *customer;  /* the subject (customer, recipient, id); in the
                              result's arena */
    const char *owner;     /* MASS_SENT: the employee sending; TRANSFER: the
                              taker */
    const char *conv;      /* MASS_SENT: their 1:1 conversation; TRANSFER:
                              the customer's conversation */
    uint32_t status;       /* MASS_* / APP_* / XFER_* */
} apply_mass;

/* What a TRANSFER_* outcome adds (same index as its apply_mass). Only in
 * the process that applied the command and in results forwarded between
 * nodes (nwire carries it with the apply_mass entries). */
typedef struct apply_xfer {
    const char *tenant;    /* the customer's tenant (TRANSFER_DUE spans them) */
    const char *from;      /* the employee giving it up */
    uint64_t at;           /* WAITING: takeover time (ms); DONE: when */
} apply_xfer;

/* What one command did; drives the ack and the fan-out. */
typedef struct apply_result {
    int err;               /* 0 applied; herald_err when rejected */
    char errmsg[128];      /* human-readable reason when err != 0 */
    uint32_t op;           /* cmd_op */
    uint64_t index;        /* command index */
    bool skipped;          /* index ≤ applied index: nothing done */
    uint64_t seq;          /* SEND/CONV_*: message seq (original one if dup);
                              READ: cursor now stored; OFFLINE: events
                              recorded */
    uint64_t ignored;      /* OFFLINE: reported users left out (no such
                              message, recalled, not a member, the sender) */
    uint64_t ts;           /* commit timestamp of that message */
    bool dup;              /* SEND: cmid seen before */
    int conv_kind;         /* conversation kind */
    uint32_t group;        /* shard group */
    uint32_t n_targets;    /* SEND/CONV_*: members to push the message to;
                              READ: members to send a RECEIPT event to */
    apply_target *targets; /* in arena */
    uint32_t n_reminders;  /* REMIND: reminders and escalations to send */
    apply_remind *reminders; /* in arena */
    uint32_t outbox_events; /* callback events this command recorded (its
                              group's outbox; see apply_outbox.c) */
    uint32_t n_mass;       /* MASS_MARK / APP_MARK / TRANSFER_*: outcomes,
                              one per subject */
    apply_mass *mass;      /* in arena */
    apply_xfer *xfer;      /* TRANSFER_*: n_mass entries, in arena (else NULL) */
    /* What the push events need (events.h), so nobody decodes the command
     * again or reads the message back. NULL when the command was skipped
     * or could not be decoded; otherwise set even when it was rejected.
     * Only in the process that applied the command (nwire does not carry
     * them). */
    const char *tenant;    /* the command's tenant; NUL-terminated, in arena
                              ("" when the command has none) */
    const char *conv;      /* its conversation ("" when none) */
    const char *user;      /* its acting user: READ's reader, DND's user
                              ("" when none) */
    const herald_msg *msg; /* the message at `seq` when the command stored
                              one (SEND unless dup; APP_DELIVER, RECALL,
                              CONV_CREATE/ADD/REMOVE, CONV_HANDOVER when seq
                              is set) — and for a duplicate CONV_CREATE the
                              conversation's last message, which its event
                              pushes. Fields as store_history returns them
                              (group = the store's, pos = its group position) as of this
                              command; strings in arena. NULL otherwise, and
                              whenever err != 0 */
    void *arena;           /* private */
} apply_result;

#endif
