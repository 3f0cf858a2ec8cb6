/* store.c — LMDB environment, map growth and every read; see store.h. */
#include "store_int.h"

#include <errno.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "log.h"
#include "slots.h"

#define MAP_DEFAULT ((size_t)1 << 30)
#define MAP_MAX_DEFAULT ((size_t)64 << 30)

int store_err(int rc)
{
    switch (rc) {
    case MDB_SUCCESS:
        return 0;
    case MDB_NOTFOUND:
        return HERALD_ENOT_FOUND;
    case ENOMEM:
        return HERALD_ENOMEM;
    case EIO:
    case ENOSPC:
        return HERALD_EIO;
    default:
        return HERALD_ESTORAGE;
    }
}

const store_db_name store_db_names[] = {
    {"meta", offsetof(store_dbs, meta)},         {"conv", offsetof(store_dbs, conv)},
    {"member", offsetof(store_dbs, member)},     {"memberof", offsetof(store_dbs, memberof)},
    {"msg", offsetof(store_dbs, msg)},           {"cursor", offsetof(store_dbs, cursor)},
    {"dedup", offsetof(store_dbs, dedup)},       {"mpos", offsetof(store_dbs, mpos)},
    {"urgent", offsetof(store_dbs, urgent)},     {"remind", offsetof(store_dbs, remind)},
};
_Static_assert(sizeof store_db_names / sizeof store_db_names[0] == STORE_NDBS,
               "a database was added to store_dbs: list it in store_db_names");

/* Checks the on-disk format in txn: a new environment gets STORE_FORMAT;
 * format 1 (per-user pointer logs) is refused with the upgrade step. */
static int check_format(MDB_txn *txn, store *s, const char *dir)
{
    MDB_val k = {.mv_size = 6, .mv_data = "format"}, v;
    MDB_dbi old;
    MDB_stat st;
    uint8_t b[4] = {0, 0, 0, STORE_FORMAT};
    int rc = mdb_get(txn, s->db.meta, &k, &v);

    if (rc == 0) {
        uint32_t f = v.mv_size == 4 ? (uint32_t)((const uint8_t *)v.mv_data)[0] << 24 |
                                          (uint32_t)((const uint8_t *)v.mv_data)[1] << 16 |
                                          (uint32_t)((const uint8_t *)v.mv_data)[2] << 8 |
                                          ((const uint8_t *)v.mv_data)[3]
                                    : 0;
        if (f == STORE_FORMAT)
            return 0;
        log_error("store.format", "%s: store format %u; this build reads format %u", dir, f,
                  STORE_FORMAT);
        return HERALD_ESTORAGE;
    }
    if (rc != MDB_NOTFOUND)
        return store_err(rc);
    /* No format yet: a new environment, or one written before formats
     * were recorded (format 1). */
    if (mdb_dbi_open(txn, "uevt", 0, &old) == 0 || mdb_stat(txn, s->db.msg, &st) != 0 ||
        st.ms_entries != 0) {
        log_error("store.format",
                  "%s holds store format 1 (per-user pointer logs); this build keeps one "
                  "position per shard group (format 2) and cannot read it in place. Upgrade: "
                  "`heraldd upgrade-data --data %s` with every process of the cluster stopped, "
                  "on every node (see README, Operations)",
                  dir, dir);
        return HERALD_ESTORAGE;
    }
    return store_err(mdb_put(txn, s->db.meta, &k, &(MDB_val){.mv_size = 4, .mv_data = b}, 0));
}

int store_open(const store_config *cfg, store **out)
{
    store *s = calloc(1, sizeof *s);
    MDB_txn *txn;
    unsigned flags = MDB_NOTLS | (cfg->no_sync ? MDB_NOSYNC : 0);
    int rc;

    if (!s)
        return HERALD_ENOMEM;
    if (mkdir(cfg->dir, 0700) != 0 && errno != EEXIST) {
        free(s);
        return HERALD_EIO;
    }
    s->group = cfg->group;
    s->map_size = cfg->map_size ? cfg->map_size : MAP_DEFAULT;
    s->map_max = cfg->map_max ? cfg->map_max : MAP_MAX_DEFAULT;
    {
        /* Prefer the writer: under a steady stream of short reads a
         * reader-preferring lock could keep map growth (and so every
         * commit) waiting forever. No reader takes the lock recursively. */
        pthread_rwlockattr_t attr;
        int lrc = pthread_rwlockattr_init(&attr);
        if (lrc == 0) {
            pthread_rwlockattr_setkind_np(&attr, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
            lrc = pthread_rwlock_init(&s->grow, &attr);
            pthread_rwlockattr_destroy(&attr);
        }
        if (lrc != 0) {
            free(s);
            return HERALD_ENOMEM;
        }
    }
    rc = mdb_env_create(&s->env);
    if (rc) {
        rc = store_err(rc);
        goto fail_lock;
    }
    rc = mdb_env_set_maxdbs(s->env, 16);
    if (rc == 0)
        rc = mdb_env_set_maxreaders(s->env, 256);
    if (rc == 0)
        rc = mdb_env_set_mapsize(s->env, s->map_size);
    if (rc == 0)
        rc = mdb_env_open(s->env, cfg->dir, flags, 0600);
    if (rc) {
        log_error("store.open", "mdb_env_open %s: %s", cfg->dir, mdb_strerror(rc));
        goto fail_env;
    }
    {
        /* An existing env may already be larger than asked. */
        MDB_envinfo info;
        if (mdb_env_info(s->env, &info) == 0 && info.me_mapsize > s->map_size)
            s->map_size = info.me_mapsize;
    }
    rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        goto fail_env;
    for (size_t i = 0; i < STORE_NDBS; i++) {
        rc = mdb_dbi_open(txn, store_db_names[i].name, MDB_CREATE,
                          (MDB_dbi *)((char *)&s->db + store_db_names[i].off));
        if (rc) {
            mdb_txn_abort(txn);
            goto fail_env;
        }
    }
    rc = check_format(txn, s, cfg->dir);
    if (rc) {
        mdb_txn_abort(txn);
        goto fail_env_herald;
    }
    rc = mdb_txn_commit(txn);
    if (rc)
        goto fail_env;
    *out = s;
    return 0;

fail_env:
    rc = store_err(rc);
fail_env_herald:
    mdb_env_close(s->env);
fail_lock:
    pthread_rwlock_destroy(&s->grow);
    free(s);
    return rc;
}

void store_close(store *s)
{
    if (!s)
        return;
    mdb_env_close(s->env);
    pthread_rwlock_destroy(&s->grow);
    free(s);
}

uint32_t store_group(const store *s) { return s->group; }

uint64_t store_map_used(store *s)
{
    MDB_envinfo info;
    MDB_stat st;
    uint64_t used = 0;
    pthread_rwlock_rdlock(&s->grow);
    if (mdb_env_info(s->env, &info) == 0 && mdb_env_stat(s->env, &st) == 0)
        used = ((uint64_t)info.me_last_pgno + 1) * st.ms_psize;
    pthread_rwlock_unlock(&s->grow);
    return used;
}

size_t store_map_size(store *s)
{
    size_t n;
    pthread_rwlock_rdlock(&s->grow); /* the writer changes it under wrlock */
    n = s->map_size;
    pthread_rwlock_unlock(&s->grow);
    return n;
}

int store_rd_begin(store *s, MDB_txn **txn)
{
    int rc;
    pthread_rwlock_rdlock(&s->grow);
    rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc) {
        pthread_rwlock_unlock(&s->grow);
        return store_err(rc);
    }
    return 0;
}

void store_rd_end(store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->grow);
}

int store_grow(store *s)
{
    size_t next = s->map_size * 2;
    int rc;
    if (s->map_size >= s->map_max)
        return HERALD_ESTORAGE;
    if (next > s->map_max)
        next = s->map_max;
    pthread_rwlock_wrlock(&s->grow);
    rc = mdb_env_set_mapsize(s->env, next);
    if (rc == 0) {
        log_info("store.grow", "map grown from %zu to %zu bytes", s->map_size, next);
        s->map_size = next;
    }
    pthread_rwlock_unlock(&s->grow);
    if (rc) {
        log_error("store.grow", "mdb_env_set_mapsize %zu: %s", next, mdb_strerror(rc));
        return store_err(rc);
    }
    return 0;
}

uint64_t store_gpos_txn(MDB_txn *txn, store *s)
{
    MDB_val k = {.mv_size = 4, .mv_data = "gpos"}, v;
    return mdb_get(txn, s->db.meta, &k, &v) == 0 && v.mv_size == 8 ? be64(v.mv_data) : 0;
}

uint64_t store_applied(store *s)
{
    MDB_txn *txn;
    MDB_val k = {.mv_size = 7, .mv_data = "applied"}, v;
    uint64_t idx = 0;
    if (store_rd_begin(s, &txn) != 0)
        return 0;
    if (mdb_get(txn, s->db.meta, &k, &v) == 0 && v.mv_size == 8)
        idx = be64(v.mv_data);
    store_rd_end(s, txn);
    return idx;
}

/* ---- keys and records shared with apply.c ------------------------------- */

void key_conv(kbuf *k, herald_str ten, herald_str conv)
{
    k->n = 0;
    k->over = false;
    kb_id(k, ten);
    kb_id(k, conv);
}

void key_memberof(kbuf *k, herald_str ten, herald_str user, herald_str conv)
{
    k->n = 0;
    k->over = false;
    kb_id(k, ten);
    kb_id(k, user);
    if (conv.ptr)
        kb_id(k, conv);
}

void key_member(kbuf *k, herald_str ten, herald_str conv, herald_str user)
{
    key_conv(k, ten, conv);
    kb_id(k, user);
}

void key_msg(kbuf *k, herald_str ten, herald_str conv, uint64_t seq)
{
    key_conv(k, ten, conv);
    kb_u64(k, seq);
}


int conv_kind_parse(herald_str s)
{
    static const char *const names[] = {NULL, "single", "group", "customer_group",
                                        "announce"};
    for (int i = 1; i <= CONV_ANNOUNCE; i++)
        if (herald_str_eq(s, names[i]))
            return i;
    return 0;
}

const char *conv_kind_name(int kind)
{
    switch (kind) {
    case CONV_SINGLE: return "single";
    case CONV_GROUP: return "group";
    case CONV_CUSTOMER_GROUP: return "customer_group";
    case CONV_ANNOUNCE: return "announce";
    default: return "unknown";
    }
}

int conv_decode(MDB_val v, store_conv *out)
{
    rcur c = rc_of(v);
    herald_str owner;
    out->kind = rc_u8(&c);
    owner = rc_str(&c);
    out->max_seq = rc_u64(&c);
    out->created = rc_u64(&c);
    out->cap = rc_u32(&c);
    out->count = rc_u32(&c);
    out->n_external = c.left >= 4 ? rc_u32(&c) : 0;
    if (c.bad || c.left || owner.len >= sizeof out->owner || out->kind < CONV_SINGLE ||
        out->kind > CONV_ANNOUNCE)
        return HERALD_ESTORAGE;
    memcpy(out->owner, owner.ptr, owner.len);
    out->owner[owner.len] = '\0';
    return 0;
}

int conv_read(MDB_txn *txn, store *s, herald_str ten, herald_str conv, store_conv *out)
{
    kbuf k;
    MDB_val kv, v;
    int rc;

    key_conv(&k, ten, conv);
    if (k.over)
        return HERALD_ENOT_FOUND;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.conv, &kv, &v);
    return rc ? store_err(rc) : conv_decode(v, out);
}

int member_read(MDB_txn *txn, store *s, herald_str ten, herald_str conv, herald_str user,
                uint32_t *role, uint64_t *joined, bool *external)
{
    kbuf k;
    MDB_val kv, v;
    rcur c;
    int rc;

    key_member(&k, ten, conv, user);
    if (k.over)
        return HERALD_ENOT_MEMBER;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.member, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return HERALD_ENOT_MEMBER;
    if (rc)
        return store_err(rc);
    c = rc_of(v);
    *role = rc_u8(&c);
    *joined = rc_u64(&c);
    if (external)
        *external = c.left ? rc_u8(&c) != 0 : false;
    return c.bad ? HERALD_ESTORAGE : 0;
}

int msg_decode(MDB_val v, herald_str conv, uint64_t seq, arena *a, herald_msg *m)
{
    rcur c = rc_of(v);
    herald_str from, cmid, body;
    memset(m, 0, sizeof *m);
    from = rc_str(&c);
    m->ts = rc_u64(&c);
    cmid = rc_str(&c);
    m->flags = rc_u32(&c);
    m->kind = rc_u8(&c);
    body = rc_str(&c);
    (void)cmid;
    if (c.left) {
        herald_str corp = rc_str(&c), title = rc_str(&c);
        if (!c.bad && corp.len) {
            m->id_corp.ptr = arena_dup(a, corp.ptr, corp.len);
            m->id_corp.len = corp.len;
            m->id_title.ptr = arena_dup(a, title.ptr, title.len);
            m->id_title.len = title.len;
            if (!m->id_corp.ptr || !m->id_title.ptr)
                return HERALD_ENOMEM;
        }
    }
    if (c.bad || c.left || m->kind > HERALD_MK_SYSTEM)
        return HERALD_ESTORAGE;
    m->seq = seq;
    m->conv.ptr = arena_dup(a, conv.ptr, conv.len);
    m->conv.len = conv.len;
    m->from.ptr = arena_dup(a, from.ptr, from.len);
    m->from.len = from.len;
    m->body.ptr = arena_dup(a, body.ptr, body.len);
    m->body.len = body.len;
    if (!m->conv.ptr || !m->from.ptr || !m->body.ptr)
        return HERALD_ENOMEM;
    return 0;
}

/* ---- reads ---------------------------------------------------------------- */

int store_slotmap_get(store *s, uint8_t *map)
{
    MDB_txn *txn;
    kbuf k = {0};
    MDB_val kv, v;
    int rc;

    kb_id(&k, herald_str_z("slots"));
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    if (rc == 0 && v.mv_size == HERALD_SLOTS)
        memcpy(map, v.mv_data, HERALD_SLOTS);
    store_rd_end(s, txn);
    if (rc == MDB_NOTFOUND)
        return HERALD_ENOT_FOUND;
    return rc == 0 && v.mv_size == HERALD_SLOTS ? 0 : HERALD_ESTORAGE;
}

int store_tenant_get(store *s, herald_str tenant, store_tenant *out)
{
    MDB_txn *txn;
    kbuf k = {0};
    MDB_val kv, v;
    rcur c;
    herald_str sec;
    int rc;

    kb_id(&k, herald_str_z("t"));
    kb_id(&k, tenant);
    if (k.over)
        return HERALD_ENOT_FOUND;
    rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    kv = kb_val(&k);
    rc = mdb_get(txn, s->db.meta, &kv, &v);
    if (rc == 0) {
        c = rc_of(v);
        sec = rc_str(&c);
        out->group_cap = rc_u32(&c);
        out->recall_window = c.left >= 8 ? rc_u64(&c) : RECALL_WINDOW_DEFAULT;
        out->urgent_interval = c.left >= 4 ? rc_u32(&c) : URGENT_INTERVAL_DEFAULT;
        out->urgent_max = c.left >= 4 ? rc_u32(&c) : URGENT_MAX_DEFAULT;
        out->corp[0] = '\0';
        if (c.left) {
            herald_str corp = rc_str(&c);
            if (!c.bad && corp.len < sizeof out->corp) {
                memcpy(out->corp, corp.ptr, corp.len);
                out->corp[corp.len] = '\0';
            }
        }
        out->no_receipts = c.left ? rc_u8(&c) != 0 : false;
        /* Settings added later: records written before them take defaults. */
        out->app_dedup = c.left >= 4 ? rc_u32(&c) : APP_DEDUP_DEFAULT;
        out->app_freq = c.left >= 4 ? rc_u32(&c) : APP_FREQ_DEFAULT;
        out->customer_limit = c.left >= 4 ? rc_u32(&c) : CUSTOMER_LIMIT_DEFAULT;
        out->transfer_wait = c.left >= 4 ? rc_u32(&c) : TRANSFER_WAIT_DEFAULT;
        if (!out->corp[0])
            snprintf(out->corp, sizeof out->corp, "%.*s", (int)tenant.len, tenant.ptr);
        if (c.bad || sec.len != sizeof out->secret)
            rc = HERALD_ESTORAGE;
        else
            memcpy(out->secret, sec.ptr, sizeof out->secret);
    } else {
        rc = store_err(rc);
    }
    store_rd_end(s, txn);
    return rc;
}

int store_conv_get(store *s, herald_str tenant, herald_str conv, store_conv *out)
{
    MDB_txn *txn;
    int rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = conv_read(txn, s, tenant, conv, out);
    store_rd_end(s, txn);
    return rc;
}

int store_member_check(store *s, herald_str tenant, herald_str conv, herald_str user)
{
    MDB_txn *txn;
    uint32_t role;
    uint64_t joined;
    store_conv sc;
    int rc = store_rd_begin(s, &txn);
    if (rc)
        return rc;
    rc = conv_read(txn, s, tenant, conv, &sc);
    if (rc == 0)
        rc = member_read(txn, s, tenant, conv, user, &role, &joined, NULL);
    store_rd_end(s, txn);
    return rc;
}

void store_strs_free(store_strs *l)
{
    if (!l)
        return;
    free(l->v);
    *l = (store_strs){0};
}

/* Appends s to a store_strs whose strings share the v allocation: v holds
 * pointers, then the bytes. Simple approach: grow a pointer array and keep
 * bytes in a side buffer, fixed up at the end. */

int sb_add(strs_builder *b, const char *p, size_t n)
{
    size_t off = b->bytes.len;
    char nul = '\0';
    if (herald_buf_append(&b->ptrs, &off, sizeof off) != 0 ||
        herald_buf_append(&b->bytes, p, n) != 0 || herald_buf_append(&b->bytes, &nul, 1) != 0)
        return HERALD_ENOMEM;
    b->n++;
    return 0;
}

/* Keys order ids by (length, bytes); people expect plain byte order. */
static int cmp_strp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Moves the builder into one allocation: n pointers followed by the bytes,
 * sorted in byte order unless `keep_order`. */
int sb_finish_as(strs_builder *b, store_strs *out, bool keep_order)
{
    size_t head = (size_t)b->n * sizeof(char *);
    char **v = malloc(head + b->bytes.len + 1);
    char *base;
    int rc = 0;
    if (!v) {
        rc = HERALD_ENOMEM;
        goto out;
    }
    base = (char *)v + head;
    if (b->bytes.len)
        memcpy(base, b->bytes.data, b->bytes.len);
    for (uint32_t i = 0; i < b->n; i++) {
        size_t off;
        memcpy(&off, b->ptrs.data + i * sizeof off, sizeof off);
        v[i] = base + off;
    }
    if (!keep_order)
        qsort(v, b->n, sizeof *v, cmp_strp);
    out->v = v;
    out->n = b->n;
out:
    herald_buf_free(&b->ptrs);
    herald_buf_free(&b->bytes);
    return rc;
}

int sb_finish(strs_builder *b, store_strs *out) { return sb_finish_as(b, out, false); }

int sb_finish_unsorted(strs_builder *b, store_strs *out)
{
    return sb_finish_as(b, out, true);
}

void sb_drop(strs_builder *b)
{
    herald_buf_free(&b->ptrs);
    herald_buf_free(&b->bytes);
}

/* Calls fn(id, value) for each key "prefix, len(id), id" of dbi in key order
 * until fn returns non-zero (returned). A malformed key is ESTORAGE. */
int scan_ids(MDB_txn *txn, MDB_dbi dbi, const kbuf *prefix, member_fn fn, void *arg)
{
    MDB_cursor *cur;
    MDB_val kv = {.mv_size = prefix->n, .mv_data = (void *)prefix->b}, v;
    size_t plen = prefix->n;
    int rc = 0, mrc;

    mrc = mdb_cursor_open(txn, dbi, &cur);
    if (mrc)
        return store_err(mrc);
    for (mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE); mrc == 0;
         mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT)) {
        const uint8_t *kp = kv.mv_data;
        herald_str id;
        if (kv.mv_size <= plen + 1 || memcmp(kp, prefix->b, plen) != 0)
            break;
        id.len = kp[plen];
        id.ptr = (const char *)kp + plen + 1;
        if (plen + 1 + id.len != kv.mv_size) {
            rc = HERALD_ESTORAGE;
            break;
        }
        rc = fn(id, v, arg);
        if (rc)
            break;
    }
    if (mrc != 0 && mrc != MDB_NOTFOUND && !rc)
        rc = store_err(mrc);
    mdb_cursor_close(cur);
    return rc;
}

int store_each_member(MDB_txn *txn, store *s, herald_str ten, herald_str conv,
                      member_fn fn, void *arg)
{
    kbuf k;
    key_conv(&k, ten, conv);
    if (k.over)
        return HERALD_ENOT_FOUND;
    return scan_ids(txn, s->db.member, &k, fn, arg);
}

static int add_member_name(herald_str user, MDB_val rec, void *arg)
{
    (void)rec;
    return sb_add(arg, user.ptr, user.len);
}

int store_members(store *s, herald_str tenant, herald_str conv, store_strs *out)
{
    MDB_txn *txn;
    strs_builder b = {0};
    store_conv sc;
    int rc = store_rd_begin(s, &txn);

    *out = (store_strs){0};
    if (rc)
        return rc;
    rc = conv_read(txn, s, tenant, conv, &sc);
    if (rc == 0)
        rc = store_each_member(txn, s, tenant, conv, add_member_name, &b);
    store_rd_end(s, txn);
    if (rc) {
        sb_drop(&b);
        return rc;
    }
    return sb_finish(&b, out);
}

/* Receipts: classify each member by cursor. */
typedef struct rcpt_ctx {
    store *s;           /* store */
    MDB_txn *txn;       /* read txn */
    herald_str ten;     /* tenant */
    herald_str conv;    /* conversation */
    herald_str sender;  /* the message's sender (counts as read) */
    uint64_t seq;       /* message */
    bool lists;         /* complete lists (small conversation) */
    herald_str after;   /* page: unread names after this id (key order) */
    bool past_after;    /* the scan has passed `after` */
    uint32_t limit;     /* page size */
    store_receipts_out *out; /* counts, cursor */
    strs_builder rd;    /* have read */
    strs_builder un;    /* have not */
} rcpt_ctx;

/* Key order of ids: length first, then bytes (see keys.h). */
static int id_order(herald_str a, herald_str b)
{
    if (a.len != b.len)
        return a.len < b.len ? -1 : 1;
    return memcmp(a.ptr, b.ptr, a.len);
}

static int classify(herald_str user, MDB_val rec, void *arg)
{
    rcpt_ctx *x = arg;
    kbuf k;
    MDB_val kv, v;
    bool read = user.len == x->sender.len && memcmp(user.ptr, x->sender.ptr, user.len) == 0;
    (void)rec;
    if (!read) {
        key_member(&k, x->ten, x->conv, user);
        kv = kb_val(&k);
        if (mdb_get(x->txn, x->s->db.cursor, &kv, &v) == 0 && v.mv_size == 8)
            read = be64(v.mv_data) >= x->seq;
    }
    if (read)
        x->out->n_read++;
    else
        x->out->n_unread++;
    if (x->lists)
        return sb_add(read ? &x->rd : &x->un, user.ptr, user.len);
    if (read)
        return 0;
    if (!x->past_after) {
        if (x->after.len && id_order(user, x->after) <= 0)
            return 0;
        x->past_after = true;
    }
    if (x->un.n == x->limit) {
        x->out->more = true;
        return 0; /* keep counting */
    }
    if (user.len >= sizeof x->out->next)
        return HERALD_ESTORAGE; /* ids are validated on the way in */
    memcpy(x->out->next, user.ptr, user.len);
    x->out->next[user.len] = '\0';
    return sb_add(&x->un, user.ptr, user.len);
}

void store_receipts_free(store_receipts_out *o)
{
    if (!o)
        return;
    store_strs_free(&o->read);
    store_strs_free(&o->unread);
    memset(o, 0, sizeof *o);
}

int store_receipts(store *s, herald_str tenant, herald_str conv, uint64_t seq,
                   herald_str after, uint32_t limit, store_receipts_out *out)
{
    rcpt_ctx x = {.s = s, .ten = tenant, .conv = conv, .seq = seq, .after = after, .out = out};
    store_conv sc;
    kbuf k;
    MDB_val kv, v;
    arena a = {0};
    herald_msg m;
    int rc;

    memset(out, 0, sizeof *out);
    x.limit = limit == 0 || limit > RECEIPTS_PAGE_MAX ? RECEIPTS_PAGE_MAX : limit;
    if (after.len > TOKEN_ID_MAX_STORE)
        return HERALD_EINVAL;
    rc = store_rd_begin(s, &x.txn);
    if (rc)
        return rc;
    rc = conv_read(x.txn, s, tenant, conv, &sc);
    if (rc == 0 && (seq == 0 || seq > sc.max_seq))
        rc = HERALD_EINVAL;
    if (rc == 0) {
        key_msg(&k, tenant, conv, seq);
        kv = kb_val(&k);
        rc = mdb_get(x.txn, s->db.msg, &kv, &v);
        rc = rc ? store_err(rc) : msg_decode(v, conv, seq, &a, &m);
    }
    if (rc == 0) {
        x.sender = m.from;
        x.lists = sc.count <= RECEIPTS_LIST_MAX;
        rc = store_each_member(x.txn, s, tenant, conv, classify, &x);
    }
    store_rd_end(s, x.txn);
    arena_free(&a);
    if (rc == 0)
        rc = sb_finish(&x.rd, &out->read);
    else
        sb_drop(&x.rd);
    if (rc == 0)
        rc = sb_finish(&x.un, &out->unread);
    else
        sb_drop(&x.un);
    if (rc)
        store_receipts_free(out);
    if (rc == 0 && !out->more)
        out->next[0] = '\0';
    return rc;
}


int store_seq_beyond(char *buf, size_t cap, uint64_t seq, uint64_t last)
{
    snprintf(buf, cap, "seq %llu is beyond the conversation (last seq %llu)",
             (unsigned long long)seq, (unsigned long long)last);
    return HERALD_EINVAL;
}
