/* synckey.c — see synckey.h. */
#include "synckey.h"

#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

void sk_free(synckey *k)
{
    for (uint32_t i = 0; i < k->n_convs; i++)
        free(k->convs[i].conv);
    free(k->convs);
    free(k->groups);
    memset(k, 0, sizeof *k);
}

uint64_t *sk_group(synckey *k, uint32_t g)
{
    herald_sync_group *v;
    for (uint32_t i = 0; i < k->n_groups; i++)
        if (k->groups[i].group == g)
            return &k->groups[i].pos;
    v = realloc(k->groups, (k->n_groups + 1) * sizeof *v);
    if (!v)
        return NULL;
    k->groups = v;
    v[k->n_groups] = (herald_sync_group){.group = g};
    return &v[k->n_groups++].pos;
}

uint64_t *sk_conv_at(synckey *k, const char *conv, size_t len)
{
    sk_conv *v;
    char *id;
    for (uint32_t i = 0; i < k->n_convs; i++)
        if (strlen(k->convs[i].conv) == len && memcmp(k->convs[i].conv, conv, len) == 0)
            return &k->convs[i].seq;
    id = strndup(conv, len);
    v = id ? realloc(k->convs, (k->n_convs + 1) * sizeof *v) : NULL;
    if (!v) {
        free(id);
        return NULL;
    }
    k->convs = v;
    v[k->n_convs] = (sk_conv){.conv = id};
    return &v[k->n_convs++].seq;
}

int sk_from_frame(synckey *k, const herald_frame *f)
{
    synckey n = {0};
    for (uint32_t i = 0; i < f->n_sync_groups; i++) {
        uint64_t *p = sk_group(&n, f->sync_groups[i].group);
        if (!p)
            goto fail;
        *p = f->sync_groups[i].pos;
    }
    for (uint32_t i = 0; i < f->n_sync_convs; i++) {
        herald_str id = f->sync_convs[i].conv;
        uint64_t *p;
        /* Ids are NUL-free and non-empty (the key keeps C strings). */
        if (id.len == 0 || memchr(id.ptr, '\0', id.len)) {
            sk_free(&n);
            return HERALD_EINVAL;
        }
        p = sk_conv_at(&n, id.ptr, id.len);
        if (!p)
            goto fail;
        *p = f->sync_convs[i].seq;
    }
    sk_free(k);
    *k = n;
    return 0;
fail:
    sk_free(&n);
    return HERALD_ENOMEM;
}

int sk_copy(synckey *dst, const synckey *src)
{
    herald_frame f = {0};
    int rc = sk_to_frame(src, &f);
    if (rc == 0)
        rc = sk_from_frame(dst, &f);
    sk_frame_release(&f);
    return rc;
}

int sk_to_frame(const synckey *k, herald_frame *f)
{
    f->n_sync_groups = k->n_groups;
    f->sync_groups = k->n_groups ? malloc(k->n_groups * sizeof *f->sync_groups) : NULL;
    f->n_sync_convs = k->n_convs;
    f->sync_convs = k->n_convs ? malloc(k->n_convs * sizeof *f->sync_convs) : NULL;
    if ((k->n_groups && !f->sync_groups) || (k->n_convs && !f->sync_convs)) {
        sk_frame_release(f);
        return HERALD_ENOMEM;
    }
    if (k->n_groups)
        memcpy(f->sync_groups, k->groups, k->n_groups * sizeof *f->sync_groups);
    for (uint32_t i = 0; i < k->n_convs; i++)
        f->sync_convs[i] = (herald_sync_conv){.conv = herald_str_z(k->convs[i].conv),
                                              .seq = k->convs[i].seq};
    return 0;
}

void sk_frame_release(herald_frame *f)
{
    free(f->sync_groups);
    free(f->sync_convs);
    f->sync_groups = NULL;
    f->sync_convs = NULL;
    f->n_sync_groups = f->n_sync_convs = 0;
}

int sk_save(const synckey *k, herald_buf *out)
{
    herald_frame f = {.type = HERALD_FT_SYNC};
    int rc = sk_to_frame(k, &f);
    if (rc == 0)
        rc = herald_frame_encode(&f, out);
    sk_frame_release(&f);
    return rc;
}

int sk_load(synckey *k, const uint8_t *p, size_t n)
{
    herald_frame f;
    size_t flen = 0;
    int rc;

    if (!p || n < HERALD_FRAME_HEADER)
        return HERALD_EINVAL;
    rc = herald_frame_peek(p, n, 0, &flen);
    if (rc || flen == 0 || flen != n)
        return HERALD_EINVAL;
    rc = herald_frame_decode(p + HERALD_FRAME_HEADER, n - HERALD_FRAME_HEADER, NULL, &f);
    if (rc)
        return rc == HERALD_ENOMEM ? rc : HERALD_EINVAL;
    if (f.type != HERALD_FT_SYNC) {
        herald_frame_release(&f);
        return HERALD_EINVAL;
    }
    rc = sk_from_frame(k, &f);
    herald_frame_release(&f);
    return rc;
}

