/* app.c — libherald: app messages and announcements, customer transfer.
 * See include/herald/client.h. */
#include "client_int.h"

#include <stdlib.h>
#include <string.h>

#define APP_TIMEOUT_MS 60000 /* minimum wait: the fan-out takes a while */

/* A herald_str array viewing n C strings (NULL when n is 0). */
static int view(const char *const *v, uint32_t n, herald_str **out)
{
    *out = NULL;
    if (n == 0)
        return 0;
    if (!v)
        return HERALD_EINVAL;
    *out = calloc(n, sizeof **out);
    if (!*out)
        return HERALD_ENOMEM;
    for (uint32_t i = 0; i < n; i++) {
        if (!v[i]) {
            free(*out);
            *out = NULL;
            return HERALD_EINVAL;
        }
        (*out)[i] = herald_str_z(v[i]);
    }
    return 0;
}

void herald_app_result_free(herald_app_result *r)
{
    if (!r)
        return;
    free(r->id);
    free(r->conv);
    herald_strlist_free(&r->reached);
    herald_strlist_free(&r->limited);
    herald_strlist_free(&r->bad_users);
    herald_strlist_free(&r->bad_depts);
    herald_strlist_free(&r->bad_tags);
    herald_strlist_free(&r->unreached);
    memset(r, 0, sizeof *r);
}

int herald_client_app_send(herald_client *c, const herald_app_msg *m, herald_app_result *out)
{
    herald_frame f = {.type = HERALD_FT_APP}, r;
    herald_str *users = NULL, *depts = NULL, *tags = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (!m || !m->app || !*m->app || !m->text)
        return HERALD_EINVAL;
    rc = view(m->users, m->n_users, &users);
    if (rc == 0)
        rc = view(m->depts, m->n_depts, &depts);
    if (rc == 0)
        rc = view(m->tags, m->n_tags, &tags);
    if (rc)
        goto out;
    f.op = herald_str_z(m->announce ? "announce" : "send");
    f.app = herald_str_z(m->app);
    f.body = herald_str_z(m->text);
    f.cmid = herald_str_z(m->id);
    f.window = m->window_s;
    f.members = users;
    f.n_members = m->n_users;
    f.depts = depts;
    f.n_depts = m->n_depts;
    f.tags = tags;
    f.n_tags = m->n_tags;
    rc = client_request_within(c, &f, HERALD_FT_APP_RESULT, &r,
                               c->timeout_ms < APP_TIMEOUT_MS ? APP_TIMEOUT_MS : c->timeout_ms);
    if (rc)
        goto out;
    out->dup = r.dup;
    out->stored = r.count;
    out->id = client_dup_str(r.cmid);
    if (r.conv.len)
        out->conv = client_dup_str(r.conv);
    rc = !out->id || (r.conv.len && !out->conv) ? HERALD_ENOMEM : 0;
    if (rc == 0)
        rc = client_copy_strs(r.members, r.n_members, &out->reached);
    if (rc == 0)
        rc = client_copy_strs(r.limited, r.n_limited, &out->limited);
    if (rc == 0)
        rc = client_copy_strs(r.bad_users, r.n_bad_users, &out->bad_users);
    if (rc == 0)
        rc = client_copy_strs(r.bad_depts, r.n_bad_depts, &out->bad_depts);
    if (rc == 0)
        rc = client_copy_strs(r.bad_tags, r.n_bad_tags, &out->bad_tags);
    if (rc == 0)
        rc = client_copy_strs(r.unreached, r.n_unreached, &out->unreached);
    if (rc)
        herald_app_result_free(out);
    herald_frame_release(&r);
out:
    free(users);
    free(depts);
    free(tags);
    return rc;
}

void herald_transfer_result_free(herald_transfer_result *r)
{
    if (!r)
        return;
    for (uint32_t i = 0; r->v && i < r->n; i++) {
        free(r->v[i].id);
        free(r->v[i].status);
        free(r->v[i].reason);
        free(r->v[i].text);
    }
    free(r->v);
    memset(r, 0, sizeof *r);
}

/* TRANSFER → TRANSFER_RESULT into *out. */
static int transfer_request(herald_client *c, herald_frame *f, herald_transfer_result *out)
{
    herald_frame r;
    int rc = client_request_within(c, f, HERALD_FT_TRANSFER_RESULT, &r,
                                   c->timeout_ms < APP_TIMEOUT_MS ? APP_TIMEOUT_MS
                                                                  : c->timeout_ms);
    if (rc)
        return rc;
    if (r.n_statuses != r.n_members || (r.n_times && r.n_times != r.n_members) ||
        (r.n_reasons && r.n_reasons != r.n_members) ||
        (r.n_texts && r.n_texts != r.n_members) || r.count > r.n_members) {
        herald_frame_release(&r);
        return HERALD_EPROTOCOL;
    }
    out->v = calloc(r.n_members + 1, sizeof *out->v);
    rc = out->v ? 0 : HERALD_ENOMEM;
    for (uint32_t i = 0; rc == 0 && i < r.n_members; i++) {
        herald_transfer_item *it = &out->v[i];
        out->n++;
        it->id = client_dup_str(r.members[i]);
        it->status = client_dup_str(r.statuses[i]);
        it->group = i >= r.count;
        it->takeover_ms = r.n_times ? r.times[i] : 0;
        it->reason = client_dup_str(r.n_reasons ? r.reasons[i] : (herald_str){"", 0});
        it->text = client_dup_str(r.n_texts ? r.texts[i] : (herald_str){"", 0});
        if (!it->id || !it->status || !it->reason || !it->text)
            rc = HERALD_ENOMEM;
    }
    if (rc)
        herald_transfer_result_free(out);
    herald_frame_release(&r);
    return rc;
}

int herald_client_transfer(herald_client *c, const char *from, const char *to,
                           const char *const *customers, uint32_t n_customers,
                           const char *const *groups, uint32_t n_groups, bool resigned,
                           herald_transfer_result *out)
{
    herald_frame f = {.type = HERALD_FT_TRANSFER, .op = herald_str_z("start"),
                      .user = herald_str_z(from), .owner = herald_str_z(to),
                      .flags = resigned ? 1u : 0u};
    herald_str *cv = NULL, *gv = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (!from || !*from || !to || !*to)
        return HERALD_EINVAL;
    rc = view(customers, n_customers, &cv);
    if (rc == 0)
        rc = view(groups, n_groups, &gv);
    if (rc == 0) {
        f.members = cv;
        f.n_members = n_customers;
        f.groups = gv;
        f.n_groups = n_groups;
        rc = transfer_request(c, &f, out);
    }
    free(cv);
    free(gv);
    return rc;
}

int herald_client_transfer_refuse(herald_client *c, herald_transfer_result *out)
{
    herald_frame f = {.type = HERALD_FT_TRANSFER, .op = herald_str_z("refuse")};
    memset(out, 0, sizeof *out);
    return transfer_request(c, &f, out);
}

int herald_client_app_call(herald_client *c, const char *op, const char *app,
                           const char *args_json, herald_buf *out_json)
{
    const char *args = args_json ? args_json : "{}";
    herald_frame f = {.type = HERALD_FT_APP, .op = herald_str_z(op), .app = herald_str_z(app),
                      .body = {.ptr = args, .len = (uint32_t)strlen(args)}},
                 r;
    int rc;

    if (!c || !op || !*op || !out_json || strlen(args) > UINT32_MAX / 2)
        return HERALD_EINVAL;
    rc = client_request(c, &f, HERALD_FT_APP_RESULT, &r);
    if (rc)
        return rc;
    rc = herald_buf_append(out_json, r.body.ptr, r.body.len);
    herald_frame_release(&r);
    return rc;
}
