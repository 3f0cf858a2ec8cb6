/*
 * rio_store.c — raft state of every group in one LMDB environment, with
 * group commit: requests queued on the loop thread during one iteration are
 * handed to the writer thread in an ev_prepare watcher (end of iteration);
 * the writer commits everything handed over since its last commit in ONE
 * write transaction (one fsync) and returns the results through ev_async;
 * callbacks then fire on the loop thread in submission order.
 *
 * Map growth: every transaction (the writer's batches, the loop thread's
 * synchronous writes and its reads) runs with `gate` held shared. A write
 * that hits MDB_MAP_FULL is aborted (nothing of it is acknowledged), the map
 * is doubled with mdb_env_set_mapsize while `gate` is held exclusively (so no
 * transaction of this process is active, as LMDB requires), and the whole
 * transaction is run again. No thread waits for `gate` while inside a
 * transaction, so the two threads cannot deadlock on it.
 *
 * Failure is sticky: once a writer batch fails, every later batch fails with
 * the same code without writing (like MDB_TXN_ERROR), so the log on disk
 * never gets a hole behind a failed append; a restart loads what was
 * committed.
 *
 * Keys and values: rio_tables.h (rlog, rstate, rsnap); rio_tables.c reads
 * and writes them inside the transactions run here.
 *
 * Floor: below the hub and the group io; above the tables (rio_tables.c)
 * and the codec (rio_msg.c). Callbacks go up only as rio_store_cb.
 */
#include <errno.h>
#include <herald/error.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "rio_tables.h"

#define GROW_TRIES 24 /* doublings tried for one transaction */

typedef enum sop_kind { SOP_APPEND, SOP_TRUNCATE, SOP_SNAPSHOT } sop_kind;

/* One queued request. */
typedef struct sop {
    struct sop *next;         /* queue link */
    sop_kind kind;            /* what to do */
    uint32_t gid;             /* group */
    raft_index index;         /* append: first index; truncate: first deleted; snapshot: its index */
    struct raft_entry *ents;  /* append: copy of the descriptors (buffers borrowed) */
    unsigned n;               /* append: number of entries */
    unsigned trailing;        /* snapshot: entries to keep below index */
    raft_term term;           /* snapshot: term of index */
    raft_index conf_index;    /* snapshot: index of its configuration */
    rio_buf conf;             /* snapshot: encoded configuration (owned) */
    struct raft_buffer *bufs; /* snapshot: copy of the data descriptors (bytes borrowed) */
    unsigned n_bufs;          /* snapshot: number of data buffers */
    rio_store_cb cb;          /* completion (NULL for truncate) */
    void *arg;                /* its argument */
    int status;               /* result, set by the writer */
} sop;

/* A FIFO of requests. */
typedef struct sopq {
    sop *head, *tail; /* ends */
} sopq;

struct rio_store {
    struct ev_loop *loop;   /* the loop thread's loop */
    MDB_env *env;           /* the environment */
    rio_tables t;           /* its raft databases: rlog, rstate, rsnap */
    pthread_rwlock_t gate;  /* shared: a transaction is active; exclusive: growing the map */
    size_t map_size;        /* current map size in bytes (written under gate exclusive) */
    bool broken;            /* remapping failed: the env is unusable (gate) */
    uint64_t grows;         /* times the map was grown (gate) */
    int failed;             /* sticky writer failure: 0 or the LMDB code (writer thread) */
    pthread_t thread;       /* the writer thread */
    bool thread_started;    /* thread needs joining */
    pthread_mutex_t mu;     /* guards in, out, stop, the writer counters */
    pthread_cond_t cv;      /* wakes the writer */
    sopq staged;            /* queued this iteration (loop thread only) */
    sopq in;                /* handed to the writer (mu) */
    sopq out;               /* committed or failed, not yet called back (mu) */
    bool stop;              /* writer must exit once `in` is empty (mu) */
    ev_prepare prep;        /* end of iteration: staged → in */
    ev_async wake;          /* writer → loop: results in out */
    ev_idle kick;           /* keeps the poll from blocking while requests are staged */
    size_t pending;         /* submitted − called back (loop thread) */
    uint64_t txns;          /* writer transactions committed (mu) */
    uint64_t appends;       /* append requests committed (mu) */
    uint64_t entries;       /* entries committed (mu) */
    uint64_t errs;          /* failed writer batches (mu) */
    uint64_t sync_txns;     /* synchronous transactions (loop thread) */
    unsigned inject_fail;   /* tests: next submissions refused with RAFT_NOMEM (loop thread) */
    void (*observe)(void *arg, uint64_t ns); /* group-commit latency hook (mu) */
    void *observe_arg;
};

static void q_push(sopq *q, sop *o)
{
    o->next = NULL;
    if (q->tail)
        q->tail->next = o;
    else
        q->head = o;
    q->tail = o;
}

/* Moves all of `from` to the end of `to`. */
static void q_splice(sopq *to, sopq *from)
{
    if (!from->head)
        return;
    if (to->tail)
        to->tail->next = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    from->head = from->tail = NULL;
}

static void sop_free(sop *o)
{
    free(o->ents);
    free(o->bufs);
    rio_buf_free(&o->conf);
    free(o);
}

/* ---- transactions and map growth (any thread) ------------------------------ */

/* Begins a transaction with `gate` held shared; txn_end releases both. */
static int txn_begin(rio_store *s, unsigned flags, MDB_txn **txn, size_t *map_size)
{
    int rc;

    pthread_rwlock_rdlock(&s->gate);
    if (map_size)
        *map_size = s->map_size;
    rc = s->broken ? EIO : mdb_txn_begin(s->env, NULL, flags, txn);
    if (rc != 0)
        pthread_rwlock_unlock(&s->gate);
    return rc;
}

/* Commits (rc 0) or aborts (rc != 0) and leaves the gate; returns the result. */
static int txn_end(rio_store *s, MDB_txn *txn, int rc)
{
    if (rc == 0)
        rc = mdb_txn_commit(txn); /* frees txn even when it fails */
    else
        mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->gate);
    return rc;
}

/* Ends a read transaction and leaves the gate. */
static void read_end(rio_store *s, MDB_txn *txn)
{
    mdb_txn_abort(txn);
    pthread_rwlock_unlock(&s->gate);
}

/* Doubles the map, unless another thread grew it since `seen` was read.
 * Waits until no transaction of this process is active. 0 or an LMDB/errno
 * code; a failed remap leaves the env unusable (s->broken, sticky). */
static int grow_map(rio_store *s, size_t seen)
{
    size_t now = 0;
    bool grown = false;
    int rc = 0;

    pthread_rwlock_wrlock(&s->gate);
    if (s->broken) {
        rc = EIO;
    } else if (s->map_size == seen) {
        size_t want = seen > SIZE_MAX / 2 ? SIZE_MAX : seen * 2;
        if (want == seen) {
            rc = MDB_MAP_FULL;
        } else if ((rc = mdb_env_set_mapsize(s->env, want)) == 0) {
            MDB_envinfo info;
            mdb_env_info(s->env, &info);
            s->map_size = now = info.me_mapsize;
            s->grows++;
            grown = true;
        } else {
            s->broken = true; /* munmap'd, not remapped: nothing may touch the env */
        }
    }
    pthread_rwlock_unlock(&s->gate);
    if (grown)
        log_info("rio.grow", "raft store map grown from %zu to %zu bytes", seen, now);
    else if (rc != 0)
        log_error("rio.grow", "raft store map cannot grow past %zu bytes: %s", seen,
                  mdb_strerror(rc));
    return rc;
}

/* Writes in one transaction: fn fills txn (and must be repeatable, writing
 * only through txn); commit. On MDB_MAP_FULL (from fn or the commit) the
 * transaction is aborted, the map grown and fn run again. 0 or an LMDB code. */
typedef int (*txn_fn)(rio_store *s, MDB_txn *txn, void *arg);
static int write_txn(rio_store *s, txn_fn fn, void *arg)
{
    MDB_txn *txn;
    size_t seen;
    int rc, tries;

    for (tries = 0;; tries++) {
        if ((rc = txn_begin(s, 0, &txn, &seen)) != 0)
            return rc;
        rc = txn_end(s, txn, fn(s, txn, arg));
        if (rc != MDB_MAP_FULL || tries >= GROW_TRIES)
            return rc;
        if ((rc = grow_map(s, seen)) != 0)
            return rc;
    }
}

/* Stores the snapshot, then deletes the entries it covers but the trailing
 * ones (all of them for an installed snapshot). */
static int apply_snapshot(rio_store *s, MDB_txn *txn, const sop *o)
{
    int rc = rio_tables_put_snapshot(txn, &s->t, o->gid, o->index, o->term, o->conf_index,
                                     &o->conf, o->bufs, o->n_bufs);

    if (rc != 0)
        return rc;
    /* An installed snapshot (trailing 0) replaces the whole log. */
    if (o->trailing == 0)
        return rio_tables_del_entries(txn, &s->t, o->gid, 0, UINT64_MAX);
    if (o->index > o->trailing)
        return rio_tables_del_entries(txn, &s->t, o->gid, 0, o->index - o->trailing);
    return 0;
}

/* The writes of a whole batch (a txn_fn; arg is the first request). */
static int batch_fill(rio_store *s, MDB_txn *txn, void *arg)
{
    const sop *o;
    int rc = 0;

    for (o = arg; rc == 0 && o; o = o->next) {
        switch (o->kind) {
        case SOP_APPEND:
            rc = rio_tables_put_entries(txn, &s->t, o->gid, o->index, o->ents, o->n);
            break;
        case SOP_TRUNCATE:
            rc = rio_tables_del_entries(txn, &s->t, o->gid, o->index, UINT64_MAX);
            break;
        case SOP_SNAPSHOT:
            rc = apply_snapshot(s, txn, o);
            break;
        }
    }
    return rc;
}

/* Writer thread: one transaction for the whole batch (grown and retried on
 * MDB_MAP_FULL); after a failure every later batch fails too. */
static void commit_batch(rio_store *s, sop *batch)
{
    uint64_t appends = 0, entries = 0;
    bool log_ops = false;
    struct timespec t0, t1;
    void (*observe)(void *, uint64_t);
    void *observe_arg;
    sop *o;
    int rc;

    clock_gettime(CLOCK_MONOTONIC, &t0);
    rc = s->failed ? s->failed : write_txn(s, batch_fill, batch);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    for (o = batch; o; o = o->next) {
        o->status = rc == 0 ? 0 : rio_lmdb_to_raft(rc);
        log_ops |= o->kind != SOP_SNAPSHOT;
        if (o->kind == SOP_APPEND) {
            appends++;
            entries += o->n;
        }
    }
    pthread_mutex_lock(&s->mu);
    if (rc == 0) {
        s->txns++;
        s->appends += appends;
        s->entries += entries;
    } else {
        s->errs++;
    }
    observe = s->observe;
    observe_arg = s->observe_arg;
    pthread_mutex_unlock(&s->mu);
    if (rc == 0 && observe)
        observe(observe_arg, (uint64_t)(t1.tv_sec - t0.tv_sec) * 1000000000u +
                                 (uint64_t)t1.tv_nsec - (uint64_t)t0.tv_nsec);
    if (rc != 0 && !s->failed && log_ops) {
        /* Later appends must not land behind a hole in the log. */
        s->failed = rc;
        log_error("rio.store", "raft batch not committed: %s; the raft store refuses every "
                  "later write until restarted", mdb_strerror(rc));
    } else if (rc != 0 && !s->failed) {
        log_error("rio.store", "raft snapshot not stored: %s", mdb_strerror(rc));
    }
}

static void *writer_main(void *arg)
{
    rio_store *s = arg;
    sopq batch;

    for (;;) {
        pthread_mutex_lock(&s->mu);
        while (!s->in.head && !s->stop)
            pthread_cond_wait(&s->cv, &s->mu);
        if (!s->in.head) {
            pthread_mutex_unlock(&s->mu);
            break;
        }
        batch = s->in;
        s->in.head = s->in.tail = NULL;
        pthread_mutex_unlock(&s->mu);

        commit_batch(s, batch.head);

        pthread_mutex_lock(&s->mu);
        q_splice(&s->out, &batch);
        pthread_mutex_unlock(&s->mu);
        ev_async_send(s->loop, &s->wake);
    }
    return NULL;
}

/* Loop thread: fires the callbacks of finished requests, in order. */
static void drain_out(rio_store *s)
{
    sopq done;
    sop *o, *next;

    pthread_mutex_lock(&s->mu);
    done = s->out;
    s->out.head = s->out.tail = NULL;
    pthread_mutex_unlock(&s->mu);
    for (o = done.head; o; o = next) {
        next = o->next;
        s->pending--;
        if (o->cb)
            o->cb(o->arg, o->status);
        sop_free(o);
    }
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    drain_out(w->data);
}

static void on_kick(struct ev_loop *loop, ev_idle *w, int revents)
{
    ev_idle_stop(loop, w); /* only there so the prepare watcher runs again soon */
}

/* End of the loop iteration: hand this iteration's requests over at once. */
static void on_prepare(struct ev_loop *loop, ev_prepare *w, int revents)
{
    rio_store *s = w->data;

    if (!s->staged.head)
        return;
    pthread_mutex_lock(&s->mu);
    q_splice(&s->in, &s->staged);
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

int rio_store_open(struct ev_loop *loop, const char *dir, size_t map_size, rio_store **out)
{
    rio_store *s;
    MDB_txn *txn;
    int rc;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST)
        return HERALD_ESTORAGE;
    s = calloc(1, sizeof *s);
    if (!s)
        return HERALD_ENOMEM;
    s->loop = loop;
    if ((rc = mdb_env_create(&s->env)) != 0)
        goto fail_alloc;
    if ((rc = mdb_env_set_maxdbs(s->env, 4)) != 0 ||
        (rc = mdb_env_set_mapsize(s->env, map_size ? map_size : ((size_t)1 << 30))) != 0 ||
        (rc = mdb_env_open(s->env, dir, 0, 0644)) != 0)
        goto fail_env;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        goto fail_env;
    if ((rc = rio_tables_open(txn, &s->t)) != 0) {
        mdb_txn_abort(txn);
        goto fail_env;
    }
    if ((rc = mdb_txn_commit(txn)) != 0)
        goto fail_env;
    {
        MDB_envinfo info;
        mdb_env_info(s->env, &info); /* at least the data already in the file */
        s->map_size = info.me_mapsize;
    }
    pthread_rwlock_init(&s->gate, NULL);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    ev_async_init(&s->wake, on_wake);
    s->wake.data = s;
    ev_async_start(loop, &s->wake);
    ev_prepare_init(&s->prep, on_prepare);
    s->prep.data = s;
    ev_prepare_start(loop, &s->prep);
    ev_idle_init(&s->kick, on_kick);
    if (pthread_create(&s->thread, NULL, writer_main, s) != 0) {
        rc = -1;
        goto fail_watchers;
    }
    s->thread_started = true;
    *out = s;
    return 0;

fail_watchers:
    ev_prepare_stop(loop, &s->prep);
    ev_async_stop(loop, &s->wake);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_rwlock_destroy(&s->gate);
fail_env:
    mdb_env_close(s->env);
fail_alloc:
    log_error("rio.open", "raft store %s: %s", dir, rc > 0 ? mdb_strerror(rc) : "thread");
    free(s);
    return rc == ENOMEM ? HERALD_ENOMEM : HERALD_ESTORAGE;
}

void rio_store_close(rio_store *s)
{
    if (!s)
        return;
    pthread_mutex_lock(&s->mu);
    q_splice(&s->in, &s->staged);
    s->stop = true;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (s->thread_started)
        pthread_join(s->thread, NULL);
    drain_out(s);
    ev_idle_stop(s->loop, &s->kick);
    ev_prepare_stop(s->loop, &s->prep);
    ev_async_stop(s->loop, &s->wake);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    pthread_rwlock_destroy(&s->gate);
    mdb_env_close(s->env);
    free(s);
}

/* ---- asynchronous requests ---------------------------------------------- */

static sop *sop_new(sop_kind kind, uint32_t gid, raft_index index, rio_store_cb cb, void *arg)
{
    sop *o = calloc(1, sizeof *o);
    if (!o)
        return NULL;
    o->kind = kind;
    o->gid = gid;
    o->index = index;
    o->cb = cb;
    o->arg = arg;
    return o;
}

static void stage(rio_store *s, sop *o)
{
    q_push(&s->staged, o);
    s->pending++;
    ev_idle_start(s->loop, &s->kick);
}

void rio_store_inject_fail(rio_store *s, unsigned n)
{
    s->inject_fail = n;
}

int rio_store_append(rio_store *s, uint32_t gid, raft_index first,
                     const struct raft_entry *ents, unsigned n, rio_store_cb cb, void *arg)
{
    sop *o;

    if (s->inject_fail > 0) {
        s->inject_fail--;
        return RAFT_NOMEM;
    }
    o = sop_new(SOP_APPEND, gid, first, cb, arg);
    if (!o)
        return RAFT_NOMEM;
    if (n > 0) {
        o->ents = malloc(n * sizeof *o->ents);
        if (!o->ents) {
            sop_free(o);
            return RAFT_NOMEM;
        }
        memcpy(o->ents, ents, n * sizeof *o->ents);
    }
    o->n = n;
    stage(s, o);
    return 0;
}

int rio_store_truncate(rio_store *s, uint32_t gid, raft_index index)
{
    sop *o = sop_new(SOP_TRUNCATE, gid, index, NULL, NULL);
    if (!o)
        return RAFT_NOMEM;
    stage(s, o);
    return 0;
}

int rio_store_snapshot_put(rio_store *s, uint32_t gid, unsigned trailing,
                           const struct raft_snapshot *snap, rio_store_cb cb, void *arg)
{
    sop *o = sop_new(SOP_SNAPSHOT, gid, snap->index, cb, arg);

    if (!o)
        return RAFT_NOMEM;
    o->trailing = trailing;
    o->term = snap->term;
    o->conf_index = snap->configuration_index;
    if (rio_conf_encode(&o->conf, &snap->configuration) != 0)
        goto fail_op;
    if (snap->n_bufs > 0) {
        o->bufs = malloc(snap->n_bufs * sizeof *o->bufs);
        if (!o->bufs)
            goto fail_op;
        memcpy(o->bufs, snap->bufs, snap->n_bufs * sizeof *o->bufs);
    }
    o->n_bufs = snap->n_bufs;
    stage(s, o);
    return 0;

fail_op:
    sop_free(o);
    return RAFT_NOMEM;
}

size_t rio_store_pending(const rio_store *s)
{
    return s->pending;
}

void rio_store_observe(rio_store *s, void (*fn)(void *arg, uint64_t ns), void *arg)
{
    pthread_mutex_lock(&s->mu);
    s->observe = fn;
    s->observe_arg = arg;
    pthread_mutex_unlock(&s->mu);
}

void rio_store_stats(const rio_store *s, rio_stats *st)
{
    pthread_mutex_lock((pthread_mutex_t *)&s->mu);
    st->txns = s->txns;
    st->appends = s->appends;
    st->entries = s->entries;
    st->store_errs = s->errs;
    pthread_mutex_unlock((pthread_mutex_t *)&s->mu);
    st->sync_txns = s->sync_txns;
    pthread_rwlock_rdlock((pthread_rwlock_t *)&s->gate);
    st->map_grows = s->grows;
    st->map_size = s->map_size;
    pthread_rwlock_unlock((pthread_rwlock_t *)&s->gate);
}

/* ---- synchronous requests (loop thread) ---------------------------------- */

/* Arguments of a synchronous write (the txn_fns below). */
typedef struct sync_arg {
    uint32_t gid;                         /* group */
    raft_term term;                       /* set_term */
    raft_id vote;                         /* set_vote */
    const struct raft_configuration *conf; /* bootstrap, recover */
    bool not_pristine;                    /* bootstrap: the group has state (out) */
} sync_arg;

/* Runs a synchronous write on the loop thread (grown and retried like the
 * writer's); RAFT_* code. */
static int sync_write(rio_store *s, txn_fn fn, sync_arg *a)
{
    int rc = write_txn(s, fn, a);
    if (rc != 0)
        return rio_lmdb_to_raft(rc);
    s->sync_txns++;
    return 0;
}

static int fill_term(rio_store *s, MDB_txn *txn, void *arg)
{
    sync_arg *a = arg;
    return rio_tables_put_state(txn, &s->t, a->gid, a->term, 0);
}

int rio_store_set_term(rio_store *s, uint32_t gid, raft_term term)
{
    sync_arg a = {.gid = gid, .term = term};
    return sync_write(s, fill_term, &a);
}

static int fill_vote(rio_store *s, MDB_txn *txn, void *arg)
{
    sync_arg *a = arg;
    raft_term term;
    raft_id old;
    int rc = rio_tables_get_state(txn, &s->t, a->gid, &term, &old);
    return rc ? rc : rio_tables_put_state(txn, &s->t, a->gid, term, a->vote);
}

int rio_store_set_vote(rio_store *s, uint32_t gid, raft_id vote)
{
    sync_arg a = {.gid = gid, .vote = vote};
    return sync_write(s, fill_vote, &a);
}

/* Not pristine → a->not_pristine and an error so nothing is committed. */
static int fill_bootstrap(rio_store *s, MDB_txn *txn, void *arg)
{
    sync_arg *a = arg;
    raft_term term, last_term;
    raft_id vote;
    raft_index last;
    bool snap;
    int rc;

    if ((rc = rio_tables_get_state(txn, &s->t, a->gid, &term, &vote)) != 0 ||
        (rc = rio_tables_last_entry(txn, &s->t, a->gid, &last, &last_term)) != 0 ||
        (rc = rio_tables_has_snapshot(txn, &s->t, a->gid, &snap)) != 0)
        return rc;
    if (term != 0 || last != 0 || snap) {
        a->not_pristine = true;
        return MDB_KEYEXIST;
    }
    if ((rc = rio_tables_put_state(txn, &s->t, a->gid, 1, 0)) != 0)
        return rc;
    return rio_tables_put_conf_entry(txn, &s->t, a->gid, 1, 1, a->conf);
}

int rio_store_bootstrap(rio_store *s, uint32_t gid, const struct raft_configuration *c)
{
    sync_arg a = {.gid = gid, .conf = c};
    int rc = sync_write(s, fill_bootstrap, &a);
    return a.not_pristine ? RAFT_CANTBOOTSTRAP : rc;
}

static int fill_recover(rio_store *s, MDB_txn *txn, void *arg)
{
    sync_arg *a = arg;
    raft_term term, last_term;
    raft_id vote;
    raft_index last;
    int rc;

    if ((rc = rio_tables_get_state(txn, &s->t, a->gid, &term, &vote)) != 0 ||
        (rc = rio_tables_last_entry(txn, &s->t, a->gid, &last, &last_term)) != 0)
        return rc;
    return rio_tables_put_conf_entry(txn, &s->t, a->gid, last + 1, term ? term : 1, a->conf);
}

int rio_store_recover(rio_store *s, uint32_t gid, const struct raft_configuration *c)
{
    sync_arg a = {.gid = gid, .conf = c};
    return sync_write(s, fill_recover, &a);
}

int rio_store_snapshot_get(rio_store *s, uint32_t gid, struct raft_snapshot **out)
{
    MDB_txn *txn;
    int rc;

    if ((rc = txn_begin(s, MDB_RDONLY, &txn, NULL)) != 0)
        return rio_lmdb_to_raft(rc);
    rc = rio_tables_get_snapshot(txn, &s->t, gid, out);
    read_end(s, txn);
    return rc;
}

int rio_store_load(rio_store *s, uint32_t gid, raft_term *term, raft_id *vote,
                   struct raft_snapshot **snap, raft_index *start,
                   struct raft_entry **ents, size_t *n)
{
    MDB_txn *txn;
    raft_index first;
    int rc;

    *snap = NULL;
    *ents = NULL;
    *n = 0;
    if ((rc = txn_begin(s, MDB_RDONLY, &txn, NULL)) != 0)
        return rio_lmdb_to_raft(rc);
    if ((rc = rio_tables_get_state(txn, &s->t, gid, term, vote)) != 0) {
        rc = rc == MDB_CORRUPTED ? RAFT_CORRUPT : rio_lmdb_to_raft(rc);
        goto fail_txn;
    }
    if ((rc = rio_tables_get_snapshot(txn, &s->t, gid, snap)) != 0)
        goto fail_txn;
    if ((rc = rio_tables_get_entries(txn, &s->t, gid, &first, ents, n)) != 0)
        goto fail_snapshot;
    read_end(s, txn);
    if (*n > 0)
        *start = first;
    else
        *start = *snap ? (*snap)->index + 1 : 1;
    /* The log must continue the snapshot, or start at 1 without one. */
    if (*n > 0 && ((*snap && first > (*snap)->index + 1) || (!*snap && first != 1))) {
        log_error("rio.load", "group %u: log starts at %llu, snapshot at %llu", gid, first,
                  *snap ? (*snap)->index : 0ULL);
        raft_free((*ents)[0].batch);
        raft_free(*ents);
        *ents = NULL;
        *n = 0;
        rio_snapshot_free(*snap);
        *snap = NULL;
        return RAFT_CORRUPT;
    }
    return 0;

fail_snapshot:
    rio_snapshot_free(*snap);
    *snap = NULL;
fail_txn:
    read_end(s, txn);
    return rc;
}
