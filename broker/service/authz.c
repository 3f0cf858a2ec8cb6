/* authz.c — the authorization table and its checks; see authz.h. */
#include "authz.h"

#include <herald/error.h>
#include <stdio.h>
#include <string.h>

#define N AUTHZ_NO
#define Y AUTHZ_YES
#define M AUTHZ_MEMBER
#define O AUTHZ_OWN

/* Columns: admin, employee, external customer, app. Rows: every request
 * verb a client may send. The README's "Authorization" table is this one. */
const authz_verb authz_table[] = {
    {HERALD_FT_PING, NULL, {Y, Y, Y, Y}, NULL, 0},
    {HERALD_FT_SEND, NULL, {M, M, M, M}, NULL, 0},
    {HERALD_FT_SYNC, NULL, {Y, Y, Y, Y}, NULL, 0},
    {HERALD_FT_HISTORY, NULL, {Y, M, M, M}, NULL, 0},
    {HERALD_FT_READ, NULL, {M, M, M, M}, NULL, 0},
    {HERALD_FT_RECEIPTS, NULL, {Y, M, N, M},
     "receipts are internal data: customers do not see them", 0},
    {HERALD_FT_RECALL, NULL, {Y, M, M, M}, NULL, 0},
    {HERALD_FT_DND, "on", {Y, Y, Y, Y}, NULL, 0},
    {HERALD_FT_DND, "off", {Y, Y, Y, Y}, NULL, 0},
    {HERALD_FT_DND, "status", {Y, Y, Y, Y}, NULL, 0},
    {HERALD_FT_URGENT, "confirm", {M, M, M, M}, NULL, 0},
    {HERALD_FT_URGENT, "status", {Y, M, N, N},
     "who confirmed an urgent message is internal data", 0},
    {HERALD_FT_CONV, "create", {Y, Y, O, N},
     "customers create conversations with other customers only; apps use APP",
     APP_SCOPE_CONVERSATION},
    {HERALD_FT_CONV, "add", {Y, M, N, N}, "only employees and admins add members",
     APP_SCOPE_CONVERSATION},
    {HERALD_FT_CONV, "remove", {Y, M, O, N}, "a customer may only remove itself",
     APP_SCOPE_CONVERSATION},
    {HERALD_FT_CONV, "info", {Y, M, M, M}, NULL, 0},
    {HERALD_FT_CONV, "list", {Y, Y, Y, Y}, NULL, 0},
    {HERALD_FT_DIR, "user.add", {Y, N, N, N}, "directory changes need the admin role",
     APP_SCOPE_DIRECTORY},
    {HERALD_FT_DIR, "dept.add", {Y, N, N, N}, "directory changes need the admin role",
     APP_SCOPE_DIRECTORY},
    {HERALD_FT_DIR, "user.show", {Y, Y, O, N},
     "customers see their own card and the cards of the employees they belong to",
     APP_SCOPE_DIRECTORY},
    {HERALD_FT_DIR, "dept.show", {Y, Y, N, N}, "the department tree is internal",
     APP_SCOPE_DIRECTORY},
    {HERALD_FT_DIR, "dept.list", {Y, Y, N, N}, "the department tree is internal",
     APP_SCOPE_DIRECTORY},
    {HERALD_FT_CONTACT, "add", {Y, N, N, N}, "contacts are managed by an admin",
     APP_SCOPE_CONTACT},
    {HERALD_FT_CONTACT, "list", {Y, Y, O, N}, "customers see their own owners only",
     APP_SCOPE_CONTACT},
    {HERALD_FT_TAG, "add", {Y, N, N, N}, "tags are managed by an admin", APP_SCOPE_CONTACT},
    {HERALD_FT_TAG, "remove", {Y, N, N, N}, "tags are managed by an admin",
     APP_SCOPE_CONTACT},
    {HERALD_FT_TAG, "list", {Y, Y, N, N}, "tags are internal", APP_SCOPE_CONTACT},
    {HERALD_FT_MASS, "send", {Y, N, N, N}, "mass messages need the admin role",
     APP_SCOPE_CONTACT},
    {HERALD_FT_MASS, "status", {Y, N, N, N}, "mass results need the admin role",
     APP_SCOPE_CONTACT},
    {HERALD_FT_APP, "send", {Y, N, N, N}, "app messages need the admin role",
     APP_SCOPE_MESSAGE},
    {HERALD_FT_APP, "announce", {Y, N, N, N}, "app messages need the admin role",
     APP_SCOPE_MESSAGE},
    {HERALD_FT_TRANSFER, "start", {Y, N, N, N}, "customer transfers need the admin role",
     APP_SCOPE_TRANSFER},
    {HERALD_FT_APP, "create", {Y, N, N, N}, "apps are registered by a tenant admin", 0},
    {HERALD_FT_APP, "list", {Y, N, N, N}, "apps are listed for a tenant admin", 0},
    {HERALD_FT_APP, "user_token", {Y, N, N, N},
     "client tokens are minted by an admin or an app with the user_token scope",
     APP_SCOPE_USER_TOKEN},
    {HERALD_FT_APP, "callback", {Y, N, N, N}, "event callbacks are set by a tenant admin", 0},
    {HERALD_FT_APP, "events", {Y, N, N, N}, "event callbacks are read by a tenant admin", 0},
    {HERALD_FT_APP, "redeliver", {Y, N, N, N}, "event callbacks are managed by a tenant admin",
     0},
    {HERALD_FT_TRANSFER, "refuse", {N, N, Y, N}, "only the customer objects to its transfer", 0},
    {HERALD_FT_STATUS, NULL, {Y, N, N, N}, "status needs the admin role", 0},
};
const size_t authz_table_len = sizeof authz_table / sizeof authz_table[0];

#undef N
#undef Y
#undef M
#undef O

const authz_verb *authz_find(uint32_t type, herald_str op)
{
    for (size_t i = 0; i < authz_table_len; i++) {
        const authz_verb *v = &authz_table[i];
        if (v->type == type && (!v->op || herald_str_eq(op, v->op)))
            return v;
    }
    return NULL;
}

const char *authz_role_name(authz_role r)
{
    static const char *const names[AUTHZ_ROLE_COUNT_] = {"admin", "employee", "external",
                                                          "app"};
    return (unsigned)r < AUTHZ_ROLE_COUNT_ ? names[r] : "unknown";
}

authz_role authz_role_of(store *meta, herald_str tenant, herald_str user, bool admin)
{
    store_dir_user d;
    if (admin)
        return AUTHZ_ADMIN;
    if (user.len > 4 && memcmp(user.ptr, "app:", 4) == 0)
        return AUTHZ_APP;
    if (meta && store_dir_user_get(meta, tenant, user, &d) == 0 && d.kind == DIR_EXTERNAL)
        return AUTHZ_EXTERNAL;
    return AUTHZ_EMPLOYEE;
}

/* 1 when user is external in the directory, 0 when not, < 0 on errors. */
static int is_external(store *meta, herald_str tenant, herald_str user)
{
    store_dir_user d;
    int rc = store_dir_user_get(meta, tenant, user, &d);
    if (rc == HERALD_ENOT_FOUND)
        return 0;
    return rc ? -rc : d.kind == DIR_EXTERNAL;
}

/* 1 when owner is an employee owning customer's relationship. */
static int owns(store *meta, herald_str tenant, herald_str customer, herald_str owner)
{
    store_strs owners = {0}, convs = {0};
    int rc = store_contacts(meta, tenant, customer, &owners, &convs), r = 0;
    for (uint32_t i = 0; rc == 0 && i < owners.n && !r; i++)
        r = herald_str_eq(owner, owners.v[i]);
    store_strs_free(&owners);
    store_strs_free(&convs);
    return rc ? -rc : r;
}

/* The AUTHZ_OWN scopes (external customers): 1 allowed, 0 not, < 0 error. */
static int own_scope(store *meta, herald_str tenant, herald_str user, const herald_frame *f)
{
    switch (f->type) {
    case HERALD_FT_CONV:
        if (herald_str_eq(f->op, "create")) {
            /* No employee among the members of a customer's conversation. */
            for (uint32_t i = 0; i < f->n_members; i++) {
                int e = is_external(meta, tenant, f->members[i]);
                if (e <= 0)
                    return e;
            }
            return 1;
        }
        /* remove: itself only. */
        return f->n_members == 1 && f->members[0].len == user.len &&
               memcmp(f->members[0].ptr, user.ptr, user.len) == 0;
    case HERALD_FT_DIR: /* user.show: itself or an owner of it */
        if (f->user.len == user.len && memcmp(f->user.ptr, user.ptr, user.len) == 0)
            return 1;
        return f->user.ptr ? owns(meta, tenant, user, f->user) : 0;
    case HERALD_FT_CONTACT: /* list: its own owners */
        return f->conv.len == user.len && memcmp(f->conv.ptr, user.ptr, user.len) == 0;
    default:
        return 0;
    }
}

static const char *const scope_names[] = {"message", "directory", "contact", "transfer",
                                           "conversation", "user_token"};

uint32_t authz_scope_bit(const char *name, size_t len)
{
    for (size_t i = 0; i < sizeof scope_names / sizeof scope_names[0]; i++)
        if (strlen(scope_names[i]) == len && memcmp(scope_names[i], name, len) == 0)
            return 1u << i;
    return 0;
}

const char *authz_scope_name(uint32_t bit)
{
    for (size_t i = 0; i < sizeof scope_names / sizeof scope_names[0]; i++)
        if (bit == 1u << i)
            return scope_names[i];
    return NULL;
}

/* An app's scope grant for verb v: 1 granted, 0 not, < 0 a store error. */
static int app_grant(store *meta, herald_str tenant, herald_str user, const authz_verb *v,
                     const herald_frame *f)
{
    herald_str id = {.ptr = user.ptr + 4, .len = user.len - 4}; /* after "app:" */
    store_app a;
    int rc;

    if (!v->scope || !meta)
        return 0;
    rc = store_app_get(meta, tenant, id, &a);
    if (rc == HERALD_ENOT_FOUND)
        return 0;
    if (rc)
        return -rc;
    if (!(a.scopes & v->scope))
        return 0;
    if (f->type == HERALD_FT_APP && v->scope == APP_SCOPE_MESSAGE)
        return f->app.len == id.len && memcmp(f->app.ptr, id.ptr, id.len) == 0;
    return 1;
}

int authz_check(store *meta, herald_str tenant, herald_str user, authz_role role,
                const herald_frame *f, char *msg, size_t cap)
{
    bool as_admin;
    return authz_check_as(meta, tenant, user, role, f, &as_admin, msg, cap);
}

int authz_check_as(store *meta, herald_str tenant, herald_str user, authz_role role,
                   const herald_frame *f, bool *as_admin, char *msg, size_t cap)
{
    const authz_verb *v = authz_find(f->type, f->op);
    int ok;

    *as_admin = false;

    if (!v) {
        /* An op the table does not name is the handler's to refuse
         * (INVAL); a frame type it does not name at all is nobody's. */
        for (size_t i = 0; i < authz_table_len; i++)
            if (authz_table[i].type == f->type)
                return 0;
        snprintf(msg, cap, "%s has no authorization rule", herald_frame_type_name(f->type));
        return HERALD_EFORBIDDEN;
    }
    switch (v->rule[role]) {
    case AUTHZ_YES:
    case AUTHZ_MEMBER:
        return 0;
    case AUTHZ_OWN:
        ok = own_scope(meta, tenant, user, f);
        if (ok < 0)
            return -ok;
        if (ok)
            return 0;
        break;
    default:
        if (role != AUTHZ_APP)
            break;
        ok = app_grant(meta, tenant, user, v, f);
        if (ok < 0)
            return -ok;
        if (ok) {
            *as_admin = true;
            return 0;
        }
        break;
    }
    snprintf(msg, cap, "%s%s%s (role %s)", herald_frame_type_name(f->type), v->op ? " " : "",
             v->op ? v->op : "", authz_role_name(role));
    if (v->why) {
        size_t n = strlen(msg);
        snprintf(msg + n, cap - n, ": %s", v->why);
    }
    return HERALD_EFORBIDDEN;
}

bool authz_reserved_conv(herald_str conv)
{
    static const char *const prefixes[] = {"ec-", "ap-", "an-"};
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
        if (conv.ptr && conv.len >= 3 && memcmp(conv.ptr, prefixes[i], 3) == 0)
            return true;
    return false;
}
