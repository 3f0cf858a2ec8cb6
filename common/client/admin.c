/* admin.c — libherald: urgent status, the directory, external contacts,
 * customer tags and the broker's status. See include/herald/client.h. */
#include "client_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASS_TIMEOUT_MS 60000 /* minimum wait for a MASS answer */

int herald_client_urgent_status(herald_client *c, const char *conv, uint64_t seq,
                                herald_strlist *confirmed, herald_strlist *pending)
{
    herald_frame f = {.type = HERALD_FT_URGENT, .op = herald_str_z("status"),
                      .conv = herald_str_z(conv), .seq = seq}, r;
    int rc;

    memset(confirmed, 0, sizeof *confirmed);
    memset(pending, 0, sizeof *pending);
    if (!conv || !*conv || seq == 0)
        return HERALD_EINVAL;
    rc = client_request(c, &f, HERALD_FT_URGENT_RESULT, &r);
    if (rc)
        return rc;
    rc = client_copy_strs(r.read, r.n_read, confirmed);
    if (rc == 0)
        rc = client_copy_strs(r.unread, r.n_unread, pending);
    if (rc)
        herald_strlist_free(confirmed);
    herald_frame_release(&r);
    return rc;
}

void herald_dir_entry_free(herald_dir_entry *e)
{
    if (!e)
        return;
    free(e->user);
    free(e->dept);
    free(e->kind);
    free(e->name);
    free(e->title);
    free(e->parent);
    free(e->corp);
    memset(e, 0, sizeof *e);
}

int herald_client_dir(herald_client *c, const char *op, const herald_dir_entry *in,
                      herald_dir_entry *out)
{
    herald_frame f = {.type = HERALD_FT_DIR, .op = herald_str_z(op)}, r;
    int rc;

    if (out)
        memset(out, 0, sizeof *out);
    if (!op || !*op || !in)
        return HERALD_EINVAL;
    f.user = herald_str_z(in->user);
    f.dept = herald_str_z(in->dept);
    f.kind = herald_str_z(in->kind);
    f.name = herald_str_z(in->name);
    f.title = herald_str_z(in->title);
    f.parent = herald_str_z(in->parent);
    rc = client_request(c, &f, HERALD_FT_DIR_RESULT, &r);
    if (rc)
        return rc;
    if (out) {
        const herald_str *src[] = {&r.user,  &r.dept,   &r.kind, &r.name,
                                   &r.title, &r.parent, &r.corp};
        char **dst[] = {&out->user,  &out->dept,   &out->kind, &out->name,
                        &out->title, &out->parent, &out->corp};
        for (size_t i = 0; i < sizeof src / sizeof src[0] && rc == 0; i++)
            if (!(*dst[i] = client_dup_str(*src[i])))
                rc = HERALD_ENOMEM;
        if (rc)
            herald_dir_entry_free(out);
    }
    herald_frame_release(&r);
    return rc;
}

int herald_client_contact_add(herald_client *c, const char *employee, const char *customer,
                              char *conv_out, size_t conv_len)
{
    herald_frame f = {.type = HERALD_FT_CONTACT, .op = herald_str_z("add"),
                      .user = herald_str_z(employee), .conv = herald_str_z(customer)}, r;
    int rc;

    if (conv_out && conv_len)
        conv_out[0] = '\0';
    rc = client_request(c, &f, HERALD_FT_CONTACT_RESULT, &r);
    if (rc)
        return rc;
    if (conv_out && conv_len) {
        if (r.conv.len >= conv_len)
            rc = HERALD_ETOO_BIG;
        else
            snprintf(conv_out, conv_len, "%.*s", (int)r.conv.len, r.conv.ptr ? r.conv.ptr : "");
    }
    herald_frame_release(&r);
    return rc;
}

int herald_client_contact_list(herald_client *c, const char *customer, herald_strlist *owners)
{
    herald_frame f = {.type = HERALD_FT_CONTACT, .op = herald_str_z("list"),
                      .conv = herald_str_z(customer)}, r;
    int rc;

    memset(owners, 0, sizeof *owners);
    rc = client_request(c, &f, HERALD_FT_CONTACT_RESULT, &r);
    if (rc)
        return rc;
    rc = client_copy_strs(r.members, r.n_members, owners);
    herald_frame_release(&r);
    return rc;
}

int herald_client_status(herald_client *c, herald_buf *out)
{
    herald_frame f = {.type = HERALD_FT_STATUS}, r;
    int rc = client_request(c, &f, HERALD_FT_STATUS_RESULT, &r);

    if (rc)
        return rc;
    rc = herald_buf_append(out, r.body.ptr, r.body.len);
    herald_frame_release(&r);
    return rc;
}

int herald_client_tags(herald_client *c, const char *op, const char *customer,
                       const char *const *tags, uint32_t n, herald_strlist *out)
{
    herald_frame f = {.type = HERALD_FT_TAG, .op = herald_str_z(op),
                      .user = herald_str_z(customer)}, r;
    herald_str *tv = NULL;
    int rc;

    if (out)
        memset(out, 0, sizeof *out);
    if (!op || !*op || !customer || !*customer || (n && !tags))
        return HERALD_EINVAL;
    if (n) {
        tv = calloc(n, sizeof *tv);
        if (!tv)
            return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < n; i++)
        tv[i] = herald_str_z(tags[i]);
    f.members = tv;
    f.n_members = n;
    rc = client_request(c, &f, HERALD_FT_TAG_RESULT, &r);
    if (rc)
        goto free_tags;
    if (out)
        rc = client_copy_strs(r.members, r.n_members, out);
    herald_frame_release(&r);
free_tags:
    free(tv);
    return rc;
}

void herald_mass_free(herald_mass *m)
{
    if (!m)
        return;
    free(m->id);
    herald_strlist_free(&m->reached);
    herald_strlist_free(&m->limited);
    herald_strlist_free(&m->missed);
    herald_strlist_free(&m->bad_tags);
    memset(m, 0, sizeof *m);
}

/* MASS → MASS_RESULT into *out. The fan-out to every tagged customer takes
 * a while: at least MASS_TIMEOUT_MS, whatever the handle's timeout. */
static int mass_request(herald_client *c, herald_frame *f, herald_mass *out)
{
    herald_frame r;
    int rc = client_request_within(c, f, HERALD_FT_MASS_RESULT, &r,
                                   c->timeout_ms < MASS_TIMEOUT_MS ? MASS_TIMEOUT_MS
                                                                   : c->timeout_ms);
    if (rc)
        return rc;
    out->sent = r.count;
    out->id = client_dup_str(r.conv);
    rc = out->id ? 0 : HERALD_ENOMEM;
    if (rc == 0)
        rc = client_copy_strs(r.read, r.n_read, &out->reached);
    if (rc == 0)
        rc = client_copy_strs(r.unread, r.n_unread, &out->limited);
    if (rc == 0)
        rc = client_copy_strs(r.members, r.n_members, &out->missed);
    if (rc == 0)
        rc = client_copy_strs(r.bad_tags, r.n_bad_tags, &out->bad_tags);
    if (rc)
        herald_mass_free(out);
    herald_frame_release(&r);
    return rc;
}

int herald_client_mass_send(herald_client *c, const char *id, const char *const *tags,
                            uint32_t n_tags, const char *text, herald_mass *out)
{
    herald_frame f = {.type = HERALD_FT_MASS, .op = herald_str_z("send"),
                      .conv = herald_str_z(id), .body = herald_str_z(text)};
    herald_str *tv = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (n_tags && !tags)
        return HERALD_EINVAL;
    if (n_tags) {
        tv = calloc(n_tags, sizeof *tv);
        if (!tv)
            return HERALD_ENOMEM;
    }
    for (uint32_t i = 0; i < n_tags; i++)
        tv[i] = herald_str_z(tags[i]);
    f.members = tv;
    f.n_members = n_tags;
    rc = mass_request(c, &f, out);
    free(tv);
    return rc;
}

int herald_client_mass_status(herald_client *c, const char *id, herald_mass *out)
{
    herald_frame f = {.type = HERALD_FT_MASS, .op = herald_str_z("status"),
                      .conv = herald_str_z(id)};

    memset(out, 0, sizeof *out);
    if (!id || !*id)
        return HERALD_EINVAL;
    return mass_request(c, &f, out);
}
