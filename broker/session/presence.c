/* presence.c — which sessions each user has online here: "tenant\0user" →
 * the first of that user's connections, the rest linked through u_next.
 * See tier_int.h. */
#include "tier_int.h"

#include <string.h>

/* Presence key: tenant, NUL, user. */
static size_t presence_key(char *buf, const char *t, size_t tl, const char *u,
                           size_t ul)
{
    memcpy(buf, t, tl);
    buf[tl] = '\0';
    memcpy(buf + tl + 1, u, ul);
    return tl + 1 + ul;
}

conn *tier_presence_first(tier *t, const char *tenant, size_t tlen, const char *user,
                          size_t ulen)
{
    char key[2 * TOKEN_ID_MAX + 2];
    if (tlen > TOKEN_ID_MAX || ulen > TOKEN_ID_MAX)
        return NULL;
    return hmap_get(t->presence, key,
                    presence_key(key, tenant, tlen, user, ulen));
}

int tier_presence_add(tier *t, conn *c)
{
    char key[2 * TOKEN_ID_MAX + 2];
    size_t kl;
    conn *head;
    int rc;

    kl = presence_key(key, c->sess.tenant, strlen(c->sess.tenant), c->sess.user, strlen(c->sess.user));
    head = hmap_get(t->presence, key, kl);
    rc = hmap_put(t->presence, key, kl, c);
    if (rc)
        return rc;
    c->u_prev = NULL;
    c->u_next = head;
    if (head)
        head->u_prev = c;
    c->in_presence = true;
    return 0;
}

void tier_presence_del(tier *t, conn *c)
{
    char key[2 * TOKEN_ID_MAX + 2];
    size_t kl;

    if (c->u_prev) {
        c->u_prev->u_next = c->u_next;
        if (c->u_next)
            c->u_next->u_prev = c->u_prev;
    } else {
        kl = presence_key(key, c->sess.tenant, strlen(c->sess.tenant), c->sess.user,
                          strlen(c->sess.user));
        if (c->u_next) {
            c->u_next->u_prev = NULL;
            /* Replacing an existing key cannot fail. */
            hmap_put(t->presence, key, kl, c->u_next);
        } else {
            hmap_del(t->presence, key, kl);
        }
    }
    c->u_next = c->u_prev = NULL;
    c->in_presence = false;
}
