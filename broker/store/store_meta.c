/* store_meta.c — tenant-level records read outside the write path: the
 * directory, do-not-disturb, external contacts, urgent-message status and
 * the reminder schedule's next due time. See store.h. */
#include "store_int.h"

#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void key_meta(kbuf *k, const char *kind, herald_str ten, herald_str id)
{
    k->n = 0;
    k->over = false;
    kb_id(k, herald_str_z(kind));
    kb_id(k, ten);
    kb_id(k, id);
}

void key_dir_user(kbuf *k, herald_str ten, herald_str user)
{
    key_meta(k, "u", ten, user);
}

void key_dir_dept(kbuf *k, herald_str ten, herald_str dept)
{
    key_meta(k, "dp", ten, dept);
}

/* Copies a record string into a fixed buffer; false when it does not fit. */
static bool take_str(rcur *c, char *dst, size_t cap)
{
    herald_str v = rc_str(c);
    if (c->bad || v.len >= cap)
        return false;
    memcpy(dst, v.ptr, v.len);
    dst[v.len] = '\0';
    return true;
}

int dir_user_decode(MDB_val v, store_dir_user *out)
{
    rcur c = rc_of(v);
    out->kind = rc_u8(&c);
    if (!take_str(&c, out->name, sizeof out->name) ||
        !take_str(&c, out->title, sizeof out->title) ||
        !take_str(&c, out->dept, sizeof out->dept) || c.left ||
        (out->kind != DIR_INTERNAL && out->kind != DIR_EXTERNAL))
        return HERALD_ESTORAGE;
    return 0;
}

int dir_dept_decode(MDB_val v, store_dir_dept *out)
{
    rcur c = rc_of(v);
    if (!take_str(&c, out->name, sizeof out->name) ||
        !take_str(&c, out->parent, sizeof out->parent) || c.left)
        return HERALD_ESTORAGE;
    return 0;
}

/* Reads one meta record and decodes it. */
static int meta_get(store *s, kbuf *k, int (*decode)(MDB_val, void *), void *out)
{
    MDB_txn *txn;
    MDB_val kv, v;
    int rc;
    if (k->over)
        return HERALD_ENOT_FOUND;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    rc = rc ? store_err(rc) : decode(v, out);
    store_rd_end(s, txn);
    return rc;
}

static int dec_user(MDB_val v, void *out) { return dir_user_decode(v, out); }
static int dec_dept(MDB_val v, void *out) { return dir_dept_decode(v, out); }

int store_dir_user_get(store *s, herald_str tenant, herald_str user, store_dir_user *out)
{
    kbuf k;
    key_dir_user(&k, tenant, user);
    return meta_get(s, &k, dec_user, out);
}

int store_dir_dept_get(store *s, herald_str tenant, herald_str dept, store_dir_dept *out)
{
    kbuf k;
    key_dir_dept(&k, tenant, dept);
    return meta_get(s, &k, dec_dept, out);
}

typedef struct level_scan {
    herald_str dept;
    uint32_t max;
    bool more;
    bool users;          /* scanning users (else departments) */
    strs_builder out;
} level_scan;

static int level_one(herald_str id, MDB_val rec, void *arg)
{
    level_scan *ls = arg;
    store_dir_user u;
    store_dir_dept d;
    const char *at;
    int rc = ls->users ? dir_user_decode(rec, &u) : dir_dept_decode(rec, &d);

    if (rc)
        return rc;
    at = ls->users ? u.dept : d.parent;
    if (strlen(at) != ls->dept.len ||
        (ls->dept.len && memcmp(at, ls->dept.ptr, ls->dept.len) != 0)) /* top: ptr NULL */
        return 0;
    if (ls->out.n == ls->max) {
        ls->more = true;
        return 0;
    }
    return sb_add(&ls->out, id.ptr, id.len);
}

int store_dir_level(store *s, herald_str tenant, herald_str dept, uint32_t max,
                    store_strs *children, store_strs *users, bool *more)
{
    level_scan ls = {.dept = dept, .max = max};
    MDB_txn *txn;
    kbuf k;
    int rc;

    memset(children, 0, sizeof *children);
    memset(users, 0, sizeof *users);
    *more = false;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    for (int pass = 0; pass < 2 && rc == 0; pass++) {
        ls.users = pass == 1;
        memset(&ls.out, 0, sizeof ls.out);
        key_meta(&k, ls.users ? "u" : "dp", tenant, herald_str_z(""));
        k.n--; /* the prefix: kind and tenant */
        rc = k.over ? 0 : scan_ids(txn, s->db.meta, &k, level_one, &ls);
        if (rc == 0)
            rc = sb_finish(&ls.out, ls.users ? users : children);
        else
            sb_drop(&ls.out);
    }
    store_rd_end(s, txn);
    *more = ls.more;
    if (rc) {
        store_strs_free(children);
        store_strs_free(users);
    }
    return rc;
}

void key_contact(kbuf *k, herald_str ten, herald_str customer)
{
    key_meta(k, "ct", ten, customer);
}

void key_dnd(kbuf *k, herald_str ten, herald_str user)
{
    key_meta(k, "d", ten, user);
}

int store_dnd_get(store *s, herald_str tenant, herald_str user, uint64_t *until)
{
    MDB_txn *txn;
    kbuf k;
    MDB_val kv, v;
    int rc;

    *until = 0;
    key_dnd(&k, tenant, user);
    if (k.over)
        return 0;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    if (rc == 0 && v.mv_size == 8)
        *until = be64(v.mv_data);
    else if (rc == 0)
        rc = HERALD_ESTORAGE;
    else
        rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
    store_rd_end(s, txn);
    return rc;
}

/* Splits the recipients of an urgent message by confirmation. */
typedef struct urgent_ctx {
    strs_builder confirmed; /* have confirmed */
    strs_builder pending;   /* have not */
} urgent_ctx;

static int urgent_split(herald_str user, MDB_val v, void *arg)
{
    urgent_ctx *u = arg;
    if (v.mv_size != 8)
        return HERALD_ESTORAGE;
    return sb_add(be64(v.mv_data) ? &u->confirmed : &u->pending, user.ptr, user.len);
}

int store_urgent_status(store *s, herald_str tenant, herald_str conv, uint64_t seq,
                        store_strs *confirmed, store_strs *pending)
{
    MDB_txn *txn;
    urgent_ctx u = {0};
    kbuf k;
    int rc;

    *confirmed = (store_strs){0};
    *pending = (store_strs){0};
    key_msg(&k, tenant, conv, seq);
    if (k.over)
        return HERALD_ENOT_FOUND;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = scan_ids(txn, s->db.urgent, &k, urgent_split, &u);
    store_rd_end(s, txn);
    if (rc == 0 && u.confirmed.n + u.pending.n == 0)
        rc = HERALD_ENOT_FOUND;
    if (rc == 0)
        rc = sb_finish(&u.confirmed, confirmed);
    else
        sb_drop(&u.confirmed);
    if (rc == 0)
        rc = sb_finish(&u.pending, pending);
    else
        sb_drop(&u.pending);
    if (rc) {
        store_strs_free(confirmed);
        store_strs_free(pending);
    }
    return rc;
}

int store_urgent_mark(store *s, herald_str tenant, herald_str reader, herald_msg *v, uint32_t n)
{
    MDB_txn *txn = NULL;
    int rc = 0;

    for (uint32_t i = 0; i < n && rc == 0; i++) {
        herald_msg *m = &v[i];
        kbuf k;
        MDB_val kv, val;
        int mrc;
        m->flags &= ~HERALD_MSGF_CONFIRMED;
        if (!(m->flags & HERALD_MSGF_URGENT))
            continue;
        if (m->from.len == reader.len && memcmp(m->from.ptr, reader.ptr, reader.len) == 0) {
            m->flags |= HERALD_MSGF_CONFIRMED; /* the sender has nothing to confirm */
            continue;
        }
        if (!txn && (rc = store_rd_begin(s, &txn)) != 0)
            break;
        key_msg(&k, tenant, m->conv, m->seq);
        kb_id(&k, reader);
        if (k.over)
            continue;
        kv = kb_val(&k);
        mrc = mdb_get(txn, s->db.urgent, &kv, &val);
        if (mrc == 0 && val.mv_size == 8 && be64(val.mv_data))
            m->flags |= HERALD_MSGF_CONFIRMED;
        else if (mrc != 0 && mrc != MDB_NOTFOUND)
            rc = store_err(mrc);
    }
    if (txn)
        store_rd_end(s, txn);
    return rc;
}

uint64_t store_remind_next(store *s)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    MDB_val kv, v;
    uint64_t due = 0;
    if (store_rd_begin(s, &txn) != 0)
        return 0;
    if (mdb_cursor_open(txn, s->db.remind, &cur) == 0) {
        if (mdb_cursor_get(cur, &kv, &v, MDB_FIRST) == 0 && kv.mv_size >= 8)
            due = be64(kv.mv_data);
        mdb_cursor_close(cur);
    }
    store_rd_end(s, txn);
    return due;
}

void key_transfer(kbuf *k, herald_str ten, herald_str customer)
{
    key_meta(k, "xr", ten, customer);
}

int transfer_decode(MDB_val v, store_transfer *out)
{
    rcur c = rc_of(v);
    out->state = rc_u8(&c);
    out->resigned = rc_u8(&c) != 0;
    if (!take_str(&c, out->from, sizeof out->from) || !take_str(&c, out->to, sizeof out->to) ||
        !take_str(&c, out->conv, sizeof out->conv))
        return HERALD_ESTORAGE;
    out->at = rc_u64(&c);
    out->due = rc_u64(&c);
    return c.bad || c.left ? HERALD_ESTORAGE : 0;
}

static int dec_transfer(MDB_val v, void *out) { return transfer_decode(v, out); }

int store_transfer_get(store *s, herald_str tenant, herald_str customer, store_transfer *out)
{
    kbuf k;
    key_transfer(&k, tenant, customer);
    return meta_get(s, &k, dec_transfer, out);
}

uint64_t store_transfer_next(store *s)
{
    MDB_txn *txn;
    MDB_cursor *cur;
    kbuf k = {0};
    MDB_val kv, v;
    uint64_t due = 0;
    kb_id(&k, herald_str_z("xq"));
    if (store_rd_begin(s, &txn) != 0)
        return 0;
    if (mdb_cursor_open(txn, s->db.meta, &cur) == 0) {
        kv = kb_val(&k);
        if (mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE) == 0 && kv.mv_size >= k.n + 8 &&
            memcmp(kv.mv_data, k.b, k.n) == 0)
            due = be64((const uint8_t *)kv.mv_data + k.n);
        mdb_cursor_close(cur);
    }
    store_rd_end(s, txn);
    return due;
}

/* Collects (owner, conv) pairs of one customer. */
typedef struct contact_ctx {
    strs_builder owners; /* employees */
    strs_builder convs;  /* their conversations */
} contact_ctx;

static int contact_one(herald_str owner, MDB_val v, void *arg)
{
    contact_ctx *x = arg;
    int rc = sb_add(&x->owners, owner.ptr, owner.len);
    return rc ? rc : sb_add(&x->convs, v.mv_data, v.mv_size);
}

int store_contacts(store *s, herald_str tenant, herald_str customer, store_strs *owners,
                   store_strs *convs)
{
    MDB_txn *txn;
    contact_ctx x = {0};
    kbuf k;
    int rc;

    *owners = (store_strs){0};
    *convs = (store_strs){0};
    key_contact(&k, tenant, customer);
    if (k.over)
        return 0;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = scan_ids(txn, s->db.meta, &k, contact_one, &x);
    store_rd_end(s, txn);
    /* Owners and their conversations were added pairwise: keep that order. */
    if (rc == 0)
        rc = sb_finish_unsorted(&x.owners, owners);
    else
        sb_drop(&x.owners);
    if (rc == 0)
        rc = sb_finish_unsorted(&x.convs, convs);
    else
        sb_drop(&x.convs);
    if (rc) {
        store_strs_free(owners);
        store_strs_free(convs);
    }
    return rc;
}

void key_tags_of(kbuf *k, herald_str ten, herald_str customer)
{
    key_meta(k, "tc", ten, customer);
}

void key_tagged(kbuf *k, herald_str ten, herald_str tag)
{
    key_meta(k, "tg", ten, tag);
}

static int add_id(herald_str id, MDB_val v, void *arg)
{
    (void)v;
    return sb_add(arg, id.ptr, id.len);
}

/* Every id under a meta prefix, sorted. */
static int ids_under(store *s, kbuf *k, store_strs *out)
{
    MDB_txn *txn;
    strs_builder b = {0};
    int rc;
    *out = (store_strs){0};
    if (k->over)
        return 0;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = scan_ids(txn, s->db.meta, k, add_id, &b);
    store_rd_end(s, txn);
    if (rc) {
        sb_drop(&b);
        return rc;
    }
    return sb_finish(&b, out);
}

int store_tags(store *s, herald_str tenant, herald_str customer, store_strs *tags)
{
    kbuf k;
    key_tags_of(&k, tenant, customer);
    return ids_under(s, &k, tags);
}

int store_tagged(store *s, herald_str tenant, herald_str tag, store_strs *customers)
{
    kbuf k;
    key_tagged(&k, tenant, tag);
    return ids_under(s, &k, customers);
}

void key_mass_day(kbuf *k, herald_str ten, herald_str customer)
{
    key_meta(k, "mm", ten, customer);
}

void key_mass_result(kbuf *k, herald_str ten, herald_str mass_id)
{
    key_meta(k, "mr", ten, mass_id);
}

/* Sorts the outcomes of one mass message into three lists. */
typedef struct mass_ctx {
    strs_builder by[3]; /* reached, limited, not reached */
} mass_ctx;

static int mass_one(herald_str customer, MDB_val v, void *arg)
{
    mass_ctx *x = arg;
    uint8_t st = v.mv_size == 1 ? *(const uint8_t *)v.mv_data : 0;
    if (st < MASS_SENT_STORED || st > MASS_NO_OWNER_STORED)
        return HERALD_ESTORAGE;
    return sb_add(&x->by[st - 1], customer.ptr, customer.len);
}

int store_mass_results(store *s, herald_str tenant, herald_str mass_id, store_strs *reached,
                       store_strs *limited, store_strs *missed)
{
    MDB_txn *txn;
    mass_ctx x;
    store_strs *out[3] = {reached, limited, missed};
    kbuf k;
    int rc;

    memset(&x, 0, sizeof x);
    for (int i = 0; i < 3; i++)
        *out[i] = (store_strs){0};
    key_mass_result(&k, tenant, mass_id);
    if (k.over)
        return HERALD_ENOT_FOUND;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = scan_ids(txn, s->db.meta, &k, mass_one, &x);
    store_rd_end(s, txn);
    if (rc == 0 && x.by[0].n + x.by[1].n + x.by[2].n == 0)
        rc = HERALD_ENOT_FOUND;
    for (int i = 0; i < 3; i++) {
        if (rc == 0)
            rc = sb_finish(&x.by[i], out[i]);
        else
            sb_drop(&x.by[i]);
    }
    if (rc)
        for (int i = 0; i < 3; i++)
            store_strs_free(out[i]);
    return rc;
}
