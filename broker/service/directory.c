/* directory.c — the department directory (DIR), external contacts (CONTACT)
 * and customer tags (TAG). */
#include "svc_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "authz.h"
#include "log.h"

/* Replies DIR_RESULT with the user's directory entry (or the default: an
 * internal user named by its id). */
static void send_dir_user(svc_req *rq, uint64_t rid, herald_str user)
{
    store_dir_user d;
    store_tenant t;
    herald_frame r = {.type = HERALD_FT_DIR_RESULT, .rid = rid, .user = user};
    int rc = store_dir_user_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), user, &d);
    if (rc == HERALD_ENOT_FOUND) {
        d = (store_dir_user){.kind = DIR_INTERNAL};
        snprintf(d.name, sizeof d.name, "%.*s", (int)user.len, user.ptr);
        rc = 0;
    }
    if (rc) {
        req_error(rq, rc, NULL, rid);
        return;
    }
    rc = store_tenant_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), &t);
    if (rc) {
        req_error(rq, rc, NULL, rid);
        return;
    }
    r.kind = herald_str_z(d.kind == DIR_EXTERNAL ? "external" : "internal");
    r.name = herald_str_z(d.name);
    r.title = herald_str_z(d.title);
    /* An employee's card names the enterprise by its display name. */
    r.corp = herald_str_z(d.kind == DIR_EXTERNAL ? NULL : t.corp);
    /* A customer gets public cards only: no place in the department tree. */
    if (authz_role_of(svc_meta(rq->s), herald_str_z(rq->sess->tenant), herald_str_z(rq->sess->user),
                      rq->admin) != AUTHZ_EXTERNAL)
        r.dept = herald_str_z(d.dept);
    req_send(rq, &r);
}

static void send_dir_dept(svc_req *rq, uint64_t rid, herald_str dept)
{
    store_dir_dept d;
    herald_frame r = {.type = HERALD_FT_DIR_RESULT, .rid = rid, .dept = dept};
    int rc = store_dir_dept_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), dept, &d);
    if (rc) {
        req_error(rq, rc, rc == HERALD_ENOT_FOUND ? "no such department" : NULL, rid);
        return;
    }
    r.name = herald_str_z(d.name);
    r.parent = herald_str_z(d.parent);
    req_send(rq, &r);
}

/* dept.list: one level of the tree under dept ("" = the top): its name and
 * parent, its sub-departments (dps) and its users (mem), at most
 * DIR_LEVEL_MAX of each (more set when cut). */
#define DIR_LEVEL_MAX 1000u
static void send_dir_level(svc_req *rq, const herald_frame *f)
{
    herald_str ten = herald_str_z(rq->sess->tenant);
    store_strs kids = {0}, users = {0};
    store_dir_dept d = {0};
    herald_str *kv = NULL, *uv = NULL;
    herald_frame r = {.type = HERALD_FT_DIR_RESULT, .rid = f->rid, .dept = f->dept};
    bool more;
    int rc = 0;

    if (f->dept.len && !req_id_ok(rq, f, f->dept, "department"))
        return;
    if (f->dept.len)
        rc = store_dir_dept_get(svc_meta(rq->s), ten, f->dept, &d);
    if (rc == 0)
        rc = store_dir_level(svc_meta(rq->s), ten, f->dept, DIR_LEVEL_MAX, &kids, &users, &more);
    if (rc) {
        req_error(rq, rc, rc == HERALD_ENOT_FOUND ? "no such department" : NULL, f->rid);
        return;
    }
    kv = kids.n ? calloc(kids.n, sizeof *kv) : NULL;
    uv = users.n ? calloc(users.n, sizeof *uv) : NULL;
    if ((kids.n && !kv) || (users.n && !uv)) {
        req_error(rq, HERALD_ENOMEM, NULL, f->rid);
        goto out;
    }
    for (uint32_t i = 0; i < kids.n; i++)
        kv[i] = herald_str_z(kids.v[i]);
    for (uint32_t i = 0; i < users.n; i++)
        uv[i] = herald_str_z(users.v[i]);
    r.name = herald_str_z(d.name);
    r.parent = herald_str_z(d.parent);
    r.depts = kv;
    r.n_depts = kids.n;
    r.members = uv;
    r.n_members = users.n;
    r.more = more;
    req_send(rq, &r);
out:
    free(kv);
    free(uv);
    store_strs_free(&kids);
    store_strs_free(&users);
}

/* A directory change applied: the entry as it is now. */
static void dir_done(step *st, apply_result *res)
{
    if (res->err)
        step_error(st, res);
    else if (st->op == CMD_DIR_USER)
        send_dir_user(st->rq, st->rid, herald_str_z(st->conv));
    else
        send_dir_dept(st->rq, st->rid, herald_str_z(st->conv));
}

void on_dir(svc_req *rq, herald_frame *f)
{
    bool user_op = herald_str_eq(f->op, "user.add") || herald_str_eq(f->op, "user.show");
    herald_str id = user_op ? f->user : f->dept;
    cmd k;
    herald_buf b = {0};
    char idz[TOKEN_ID_MAX + 1];
    int rc;

    if (herald_str_eq(f->op, "dept.list")) {
        send_dir_level(rq, f);
        return;
    }
    if (!user_op && !herald_str_eq(f->op, "dept.add") && !herald_str_eq(f->op, "dept.show")) {
        req_error(rq, HERALD_EINVAL,
                  "op must be user.add, user.show, dept.add, dept.show or dept.list", f->rid);
        return;
    }
    if (!req_id_ok(rq, f, id, user_op ? "user" : "department"))
        return;
    if (herald_str_eq(f->op, "user.show")) {
        send_dir_user(rq, f->rid, id);
        return;
    }
    if (herald_str_eq(f->op, "dept.show")) {
        send_dir_dept(rq, f->rid, id);
        return;
    }
    k = req_cmd(rq, user_op ? CMD_DIR_USER : CMD_DIR_DEPT);
    k.target = f->user;
    k.kind = f->kind;
    k.name = f->name;
    k.title = f->title;
    k.dept = f->dept;
    k.parent = f->parent;
    rc = cmd_encode(&k, &b);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    snprintf(idz, sizeof idz, "%.*s", (int)id.len, id.ptr);
    /* The directory lives with the tenants (group 0). */
    svc_step_buf(rq, f->rid, k.op, &b, idz, 0, dir_done);
}

/* Contact step 2 applied: CONTACT_RESULT with the conversation. */
static void contact_added(step *st, apply_result *res)
{
    herald_frame r = {.type = HERALD_FT_CONTACT_RESULT, .rid = st->rid,
                      .conv = herald_str_z(st->conv)};
    if (res->err)
        step_error(st, res);
    else
        req_send(st->rq, &r);
}

/* Contact step 1 applied (the 1:1 conversation exists, as expected): step
 * 2 records the relationship with the tenants. */
static void contact_created(step *st, apply_result *res)
{
    svc_req *rq = st->rq;
    cmd k;

    if (res->err) {
        step_error(st, res);
        return;
    }
    k = req_cmd(rq, CMD_CONTACT_ADD);
    k.target = herald_str_z(st->a);
    k.name = herald_str_z(st->b);
    k.conv = herald_str_z(st->conv);
    svc_step(rq, st->rid, &k, 0, contact_added);
}

/* External contacts. add (admin): employee user, customer conv → their 1:1
 * conversation (created in its shard, then recorded with the tenants).
 * list: the customer's owners. */
void on_contact(svc_req *rq, herald_frame *f)
{
    herald_str ten = herald_str_z(rq->sess->tenant);
    store_dir_user d;
    int rc;

    if (!req_id_ok(rq, f, f->conv, "customer"))
        return;
    if (herald_str_eq(f->op, "list")) {
        store_strs owners = {0}, convs = {0};
        herald_str *sv;
        herald_frame r = {.type = HERALD_FT_CONTACT_RESULT, .rid = f->rid};
        rc = store_contacts(svc_meta(rq->s), ten, f->conv, &owners, &convs);
        sv = rc ? NULL : calloc(owners.n + 1, sizeof *sv);
        if (!rc && !sv)
            rc = HERALD_ENOMEM;
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
        } else {
            for (uint32_t i = 0; i < owners.n; i++)
                sv[i] = herald_str_z(owners.v[i]);
            r.members = sv;
            r.n_members = owners.n;
            req_send(rq, &r);
        }
        free(sv);
        store_strs_free(&owners);
        store_strs_free(&convs);
        return;
    }
    if (!herald_str_eq(f->op, "add")) {
        req_error(rq, HERALD_EINVAL, "op must be add or list", f->rid);
        return;
    }
    if (!req_id_ok(rq, f, f->user, "employee"))
        return;
    rc = store_dir_user_get(svc_meta(rq->s), ten, f->conv, &d);
    if (rc || d.kind != DIR_EXTERNAL) {
        req_error(rq, rc && rc != HERALD_ENOT_FOUND ? rc : HERALD_EINVAL,
                        "the customer must be an external user in the directory", f->rid);
        return;
    }
    rc = store_dir_user_get(svc_meta(rq->s), ten, f->user, &d);
    if (rc == 0 && d.kind == DIR_EXTERNAL) {
        req_error(rq, HERALD_EINVAL, "the owner must be an employee", f->rid);
        return;
    }
    {
        /* Recorded already (perhaps moved here by a customer transfer):
         * their conversation is that one. */
        store_strs owners = {0}, convs = {0};
        bool found = false;
        if (store_contacts(svc_meta(rq->s), ten, f->conv, &owners, &convs) == 0)
            for (uint32_t i = 0; i < owners.n && i < convs.n && !found; i++)
                if (herald_str_eq(f->user, owners.v[i])) {
                    herald_frame r = {.type = HERALD_FT_CONTACT_RESULT, .rid = f->rid,
                                      .conv = herald_str_z(convs.v[i])};
                    req_send(rq, &r);
                    found = true;
                }
        store_strs_free(&owners);
        store_strs_free(&convs);
        if (found)
            return;
    }
    {
        /* The 1:1 conversation's id is derived from the pair: adding the
         * same contact again finds it. */
        uint8_t h[8];
        char id[20] = "ec-";
        herald_str mem[2] = {f->user, f->conv};
        herald_str ext = f->conv;
        crypto_generichash_state st;
        cmd k = req_cmd(rq, CMD_CONV_CREATE);
        herald_buf b = {0};
        step *p;
        crypto_generichash_init(&st, NULL, 0, sizeof h);
        crypto_generichash_update(&st, (const uint8_t *)f->user.ptr, f->user.len);
        crypto_generichash_update(&st, (const uint8_t *)"", 1);
        crypto_generichash_update(&st, (const uint8_t *)f->conv.ptr, f->conv.len);
        crypto_generichash_final(&st, h, sizeof h);
        sodium_bin2hex(id + 3, sizeof id - 3, h, sizeof h);
        k.conv = herald_str_z(id);
        k.kind = herald_str_z("single");
        k.members = mem;
        k.n_members = 2;
        k.external = &ext;
        k.n_external = 1;
        /* The id may exist already, but only as exactly this conversation. */
        k.flags = CMD_CONV_EXPECT;
        rc = cmd_encode(&k, &b);
        if (rc) {
            req_error(rq, rc, NULL, f->rid);
            return;
        }
        p = svc_step_buf(rq, f->rid, CMD_CONV_CREATE, &b, id,
                         svc_conv_group(rq->s, ten, herald_str_z(id)), contact_created);
        if (p) {
            snprintf(p->a, sizeof p->a, "%.*s", (int)f->user.len, f->user.ptr);
            snprintf(p->b, sizeof p->b, "%.*s", (int)f->conv.len, f->conv.ptr);
        }
    }
}


/* Replies TAG_RESULT: the customer's tags now. */
static void send_tags(svc_req *rq, uint64_t rid, herald_str customer)
{
    store_strs tags = {0};
    herald_str *sv = NULL;
    herald_frame r = {.type = HERALD_FT_TAG_RESULT, .rid = rid, .user = customer};
    int rc = store_tags(svc_meta(rq->s), herald_str_z(rq->sess->tenant), customer, &tags);
    if (rc == 0 && !(sv = calloc(tags.n + 1, sizeof *sv)))
        rc = HERALD_ENOMEM;
    if (rc) {
        req_error(rq, rc, NULL, rid);
    } else {
        for (uint32_t i = 0; i < tags.n; i++)
            sv[i] = herald_str_z(tags.v[i]);
        r.members = sv;
        r.n_members = tags.n;
        req_send(rq, &r);
    }
    free(sv);
    store_strs_free(&tags);
}

/* TAG add / remove applied: the customer's tags now. */
static void tag_done(step *st, apply_result *res)
{
    if (res->err)
        step_error(st, res);
    else
        send_tags(st->rq, st->rid, herald_str_z(st->conv));
}

/* TAG: add / remove (admin, external users only) or list a customer's tags. */
void on_tag(svc_req *rq, herald_frame *f)
{
    bool add = herald_str_eq(f->op, "add");
    char idz[TOKEN_ID_MAX + 1];
    store_dir_user d;
    herald_buf b = {0};
    cmd k;
    int rc;

    if (!req_id_ok(rq, f, f->user, "customer"))
        return;
    if (herald_str_eq(f->op, "list")) {
        send_tags(rq, f->rid, f->user);
        return;
    }
    if (!add && !herald_str_eq(f->op, "remove")) {
        req_error(rq, HERALD_EINVAL, "op must be add, remove or list", f->rid);
        return;
    }
    rc = store_dir_user_get(svc_meta(rq->s), herald_str_z(rq->sess->tenant), f->user, &d);
    if (add && (rc || d.kind != DIR_EXTERNAL)) {
        req_error(rq, rc && rc != HERALD_ENOT_FOUND ? rc : HERALD_EINVAL,
                        "tags go on external users in the directory", f->rid);
        return;
    }
    k = req_cmd(rq, CMD_TAG);
    k.target = f->user;
    k.kind = f->op;
    k.members = f->members;
    k.n_members = f->n_members;
    rc = cmd_encode(&k, &b);
    if (rc) {
        req_error(rq, rc, NULL, f->rid);
        return;
    }
    snprintf(idz, sizeof idz, "%.*s", (int)f->user.len, f->user.ptr);
    svc_step_buf(rq, f->rid, CMD_TAG, &b, idz, 0, tag_done);
}

