/* writer.c — group commit on a writer thread; see writer.h. */
#include "writer.h"

#include <ev.h>
#include <herald/error.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define WRITER_BATCH_MAX 1024u
#define WRITER_BATCH_BYTES ((size_t)4 << 20)

/* One submitted command. */
typedef struct witem {
    struct witem *next;  /* queue link */
    herald_buf cmd;      /* encoded command (owned) */
    void *cookie;        /* caller's */
    apply_result res;    /* filled by the writer */
} witem;

/* A FIFO of items. */
typedef struct wqueue {
    witem *head, *tail;  /* ends */
} wqueue;

struct writer {
    store *st;              /* the store */
    struct ev_loop *loop;   /* loop thread's loop */
    writer_done_fn done;    /* result callback (loop thread) */
    void *arg;              /* its argument */
    pthread_t thread;       /* the writer thread */
    pthread_mutex_t mu;     /* guards in, out, stop */
    pthread_cond_t cv;      /* signals the writer */
    wqueue in;              /* submitted, not yet applied */
    wqueue out;             /* applied, not yet called back */
    bool stop;              /* writer_destroy called */
    ev_async wake;          /* writer → loop: results ready */
    uint64_t next_index;    /* index of the next command (writer thread) */
    uint64_t batches;       /* transactions committed (guarded by mu) */
    size_t pending;         /* submitted − called back (loop thread) */
    size_t queued_bytes;    /* their bytes (loop thread) */
    size_t budget;          /* bound on queued_bytes (0 none; loop thread) */
};

static void q_push(wqueue *q, witem *it)
{
    it->next = NULL;
    if (q->tail)
        q->tail->next = it;
    else
        q->head = it;
    q->tail = it;
}

/* Applies one batch: every item from `batch` (a detached list). */
static void commit_batch(writer *w, witem *batch, size_t n)
{
    const uint8_t *ptrs[WRITER_BATCH_MAX];
    size_t lens[WRITER_BATCH_MAX];
    apply_result *res = calloc(n, sizeof *res);
    witem *it;
    size_t i = 0;
    int rc;

    for (it = batch; it; it = it->next, i++) {
        ptrs[i] = it->cmd.data;
        lens[i] = it->cmd.len;
    }
    rc = res ? apply_batch(w->st, ptrs, lens, n, w->next_index, res) : HERALD_ENOMEM;
    if (rc == 0)
        w->next_index += n;
    else
        log_error("writer.batch", "batch of %zu not committed: %s", n, herald_strerror(rc));
    for (it = batch, i = 0; it; it = it->next, i++) {
        if (rc == 0) {
            it->res = res[i];
        } else {
            memset(&it->res, 0, sizeof it->res);
            it->res.err = rc;
            strcpy(it->res.errmsg, "storage error; not committed");
        }
    }
    free(res);
}

static void *writer_main(void *p)
{
    writer *w = p;
    pthread_mutex_lock(&w->mu);
    for (;;) {
        witem *batch, *last;
        size_t n = 0, bytes = 0;
        while (!w->in.head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->in.head && w->stop)
            break;
        /* Take up to the batch caps from the front of the queue. */
        batch = last = w->in.head;
        n = 1;
        bytes = batch->cmd.len;
        while (last->next && n < WRITER_BATCH_MAX && bytes < WRITER_BATCH_BYTES) {
            last = last->next;
            n++;
            bytes += last->cmd.len;
        }
        w->in.head = last->next;
        if (!w->in.head)
            w->in.tail = NULL;
        last->next = NULL;
        pthread_mutex_unlock(&w->mu);

        commit_batch(w, batch, n);

        pthread_mutex_lock(&w->mu);
        w->batches++;
        while (batch) {
            witem *next = batch->next;
            q_push(&w->out, batch);
            batch = next;
        }
        ev_async_send(w->loop, &w->wake);
    }
    pthread_mutex_unlock(&w->mu);
    return NULL;
}

/* Loop thread: runs the callbacks of everything committed. */
static void drain_out(writer *w)
{
    witem *it;
    pthread_mutex_lock(&w->mu);
    it = w->out.head;
    w->out.head = w->out.tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (it) {
        witem *next = it->next;
        w->queued_bytes -= it->cmd.len;
        w->done(w->arg, it->cookie, it->cmd.data, it->cmd.len, &it->res);
        apply_result_free(&it->res);
        herald_buf_free(&it->cmd);
        free(it);
        w->pending--;
        it = next;
    }
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents)
{
    (void)loop;
    (void)revents;
    drain_out(a->data);
}

int writer_create(store *s, struct ev_loop *loop, writer_done_fn done, void *arg, writer **out)
{
    writer *w = calloc(1, sizeof *w);
    if (!w)
        return HERALD_ENOMEM;
    w->st = s;
    w->loop = loop;
    w->done = done;
    w->arg = arg;
    w->next_index = store_applied(s) + 1;
    if (pthread_mutex_init(&w->mu, NULL) != 0)
        goto fail_alloc;
    if (pthread_cond_init(&w->cv, NULL) != 0)
        goto fail_mutex;
    ev_async_init(&w->wake, on_wake);
    w->wake.data = w;
    ev_async_start(loop, &w->wake);
    if (pthread_create(&w->thread, NULL, writer_main, w) != 0)
        goto fail_async;
    *out = w;
    return 0;

fail_async:
    ev_async_stop(loop, &w->wake);
    pthread_cond_destroy(&w->cv);
fail_mutex:
    pthread_mutex_destroy(&w->mu);
fail_alloc:
    free(w);
    return HERALD_EINTERNAL;
}

int writer_submit(writer *w, herald_buf *cmd, void *cookie)
{
    witem *it;
    if (w->stop)
        return HERALD_ESHUTDOWN;
    if (w->budget && w->pending && w->queued_bytes + cmd->len > w->budget)
        return HERALD_EBUSY;
    it = calloc(1, sizeof *it);
    if (!it)
        return HERALD_ENOMEM;
    it->cmd = *cmd;
    *cmd = (herald_buf){0};
    it->cookie = cookie;
    pthread_mutex_lock(&w->mu);
    q_push(&w->in, it);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    w->pending++;
    w->queued_bytes += it->cmd.len;
    return 0;
}

void writer_set_budget(writer *w, size_t bytes) { w->budget = bytes; }

size_t writer_pending(const writer *w) { return w->pending; }

uint64_t writer_batches(writer *w)
{
    uint64_t n;
    pthread_mutex_lock(&w->mu);
    n = w->batches;
    pthread_mutex_unlock(&w->mu);
    return n;
}

void writer_destroy(writer *w)
{
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    w->stop = true;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    drain_out(w);
    ev_async_stop(w->loop, &w->wake);
    pthread_cond_destroy(&w->cv);
    pthread_mutex_destroy(&w->mu);
    free(w);
}
