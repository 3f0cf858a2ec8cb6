/*
 * authz.h — the one authorization table of the request service: for every
 * request verb (frame type + op) and every role, whether it is refused,
 * allowed, allowed where the actor is a member (the store checks the
 * membership), or allowed on the actor's own things only (checked here).
 * svc.c's dispatch asks authz_check before any handler runs; nothing else
 * decides who may do what. Loop thread; no state of its own.
 */
#ifndef HERALD_GW_AUTHZ_H
#define HERALD_GW_AUTHZ_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

/* Who the actor is, from the verified token and the directory now. */
typedef enum authz_role {
    AUTHZ_ADMIN,    /* token with the tenant-admin role */
    AUTHZ_EMPLOYEE, /* internal user (not in the directory, or kind internal) */
    AUTHZ_EXTERNAL, /* external customer (directory kind external) */
    AUTHZ_APP,      /* an app's own user id, "app:APP" */
    AUTHZ_ROLE_COUNT_
} authz_role;

typedef enum authz_rule {
    AUTHZ_NO = 0, /* refused: FORBIDDEN */
    AUTHZ_YES,    /* allowed */
    AUTHZ_MEMBER, /* allowed in conversations the actor belongs to (store) */
    AUTHZ_OWN,    /* allowed on the actor's own things only (see authz.c) */
} authz_rule;

/* One verb: a frame type and op (NULL: the frame has no op). */
typedef struct authz_verb {
    uint32_t type;                    /* HERALD_FT_* */
    const char *op;                   /* "op" of the frame, or NULL */
    uint8_t rule[AUTHZ_ROLE_COUNT_];  /* authz_rule per role */
    const char *why;                  /* the refusal's text */
    uint32_t scope;                   /* APP_SCOPE_* that lets an app run it as the
                                         tenant's admin (0: none) */
} authz_verb;

/* The table, and its length. */
extern const authz_verb authz_table[];
extern const size_t authz_table_len;

/* The verb of a frame, or NULL when its (type, op) is not in the table (the
 * handler then answers INVAL for the unknown op). */
const authz_verb *authz_find(uint32_t type, herald_str op);

/* Role names for logs and the README ("admin", "employee", ...). */
const char *authz_role_name(authz_role r);

/* The actor's role now: admin flag, "app:" ids, else the directory kind
 * (meta may be NULL: no directory, employee). */
authz_role authz_role_of(store *meta, herald_str tenant, herald_str user, bool admin);

/* Whether role may run f: 0, or HERALD_EFORBIDDEN with the reason in msg
 * (cap bytes, NUL-terminated). AUTHZ_OWN rules read the directory and the
 * contact index in meta. An op the table does not name, of a frame type it
 * does, is allowed through (the handler rejects the op); a frame type with
 * no row at all is refused. HERALD_ESTORAGE when the store fails. */
int authz_check(store *meta, herald_str tenant, herald_str user, authz_role role,
                const herald_frame *f, char *msg, size_t cap);

/* authz_check, and for an app (role AUTHZ_APP) whose registered scopes
 * include the verb's scope: allowed, with *as_admin set — the request then
 * runs with the tenant-admin role (its commands carry it). An app sends app
 * messages as itself only (APP's app = its own id). An app with no record
 * (never registered) has no scopes. */
int authz_check_as(store *meta, herald_str tenant, herald_str user, authz_role role,
                   const herald_frame *f, bool *as_admin, char *msg, size_t cap);

/* The APP_SCOPE_* bit of a scope name ("message", "directory", "contact",
 * "transfer", "conversation", "user_token"), 0 when unknown; and the name
 * of one bit (NULL when none). */
uint32_t authz_scope_bit(const char *name, size_t len);
const char *authz_scope_name(uint32_t bit);

/* True for conversation ids the server derives (contacts "ec-", app
 * conversations "ap-", app announcements "an-"): no client creates or
 * changes them through CONV. */
bool authz_reserved_conv(herald_str conv);

#endif
