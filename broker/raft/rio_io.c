/*
 * rio_io.c — struct raft_io for one group of a hub (io->impl is a rio_gio).
 *
 * Every callback is fired later, on the loop thread, never inside the
 * method call: appends and snapshot puts when the writer has committed them
 * (submission order), sends after the end-of-iteration flush, snapshot gets
 * and async work through the hub's deferred queue. close waits until every
 * request of the group has called back, then fires its callback last.
 *
 * Floor: above the hub (rio_hub.c), below the driver (rio_group.c). The hub
 * reaches a group io only through the rio_port the io attaches (deliver,
 * tick), never by name.
 */
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "rio_int.h"

typedef struct rio_gio rio_gio;

struct rio_gio {
    rio_hub *hub;             /* owning hub */
    rio_port port;            /* what the hub calls (attached to it while open) */
    uint32_t gid;             /* group id */
    struct raft_io *io;       /* the io we implement */
    raft_id id;               /* from init */
    char *address;            /* from init (owned) */
    raft_io_tick_cb tick;     /* from start */
    raft_io_recv_cb recv;     /* from start */
    bool started;             /* start called, close not yet */
    bool closing;             /* close called */
    bool close_queued;        /* the close completion is deferred */
    raft_index next_index;    /* index the next appended entry gets */
    unsigned inflight;        /* requests not yet called back */
    raft_io_close_cb close_cb; /* from close */
    rio_expand_fn expand;     /* rio_io_set_expand, or NULL */
    struct raft_fsm *expand_fsm; /* its argument */
};

/* A request waiting for its completion. */
typedef struct greq {
    rio_gio *g;                    /* group */
    void *req;                     /* raft's request */
    struct raft_snapshot *snap;    /* snapshot_get result */
    int status;                    /* snapshot_get / async_work status */
} greq;

static rio_gio *impl(struct raft_io *io)
{
    return io->impl;
}

static void close_done(void *arg)
{
    rio_gio *g = arg;
    struct raft_io *io = g->io;
    raft_io_close_cb cb = g->close_cb;

    free(g->address);
    free(g);
    io->impl = NULL;
    if (cb)
        cb(io);
}

static void maybe_closed(rio_gio *g)
{
    if (!g->closing || g->inflight > 0 || g->close_queued)
        return;
    g->close_queued = true;
    if (rio_defer(g->hub, close_done, g) != 0)
        close_done(g); /* out of memory: better late than never */
}

static greq *greq_new(rio_gio *g, void *req)
{
    greq *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->g = g;
    r->req = req;
    g->inflight++;
    return r;
}

/* Finishes a request: the caller has fired raft's callback. */
static void greq_done(greq *r)
{
    rio_gio *g = r->g;
    free(r);
    g->inflight--;
    maybe_closed(g);
}

/* ---- lifecycle ---------------------------------------------------------- */

static int io_init(struct raft_io *io, raft_id id, const char *address)
{
    rio_gio *g = impl(io);
    char *a = strdup(address);

    if (!a)
        return RAFT_NOMEM;
    free(g->address);
    g->address = a;
    g->id = id;
    return 0;
}

static void io_close(struct raft_io *io, raft_io_close_cb cb)
{
    rio_gio *g = impl(io);

    g->started = false;
    g->closing = true;
    g->close_cb = cb;
    rio_hub_detach(g->hub, g->gid);
    rio_net_cancel(rio_hub_net(g->hub), g->gid); /* snapshot streams call back soon */
    maybe_closed(g);
}

static int io_load(struct raft_io *io, raft_term *term, raft_id *voted_for,
                   struct raft_snapshot **snapshot, raft_index *start_index,
                   struct raft_entry *entries[], size_t *n_entries)
{
    rio_gio *g = impl(io);
    int rc;

    rc = rio_store_load(rio_hub_store(g->hub), g->gid, term, voted_for, snapshot, start_index,
                        entries, n_entries);
    if (rc != 0)
        return rc;
    g->next_index = *start_index + *n_entries;
    return 0;
}

static int io_start(struct raft_io *io, unsigned msecs, raft_io_tick_cb tick,
                    raft_io_recv_cb recv)
{
    rio_gio *g = impl(io);

    (void)msecs; /* the hub ticks every group at its own period */
    g->tick = tick;
    g->recv = recv;
    g->started = true;
    return 0;
}

static int io_bootstrap(struct raft_io *io, const struct raft_configuration *conf)
{
    rio_gio *g = impl(io);
    int rc = rio_store_bootstrap(rio_hub_store(g->hub), g->gid, conf);

    if (rc == 0)
        g->next_index = 2;
    return rc;
}

static int io_recover(struct raft_io *io, const struct raft_configuration *conf)
{
    rio_gio *g = impl(io);
    return rio_store_recover(rio_hub_store(g->hub), g->gid, conf);
}

static int io_set_term(struct raft_io *io, raft_term term)
{
    rio_gio *g = impl(io);
    return rio_store_set_term(rio_hub_store(g->hub), g->gid, term);
}

static int io_set_vote(struct raft_io *io, raft_id server_id)
{
    rio_gio *g = impl(io);
    return rio_store_set_vote(rio_hub_store(g->hub), g->gid, server_id);
}

/* ---- log ------------------------------------------------------------------ */

static void append_done(void *arg, int status)
{
    greq *r = arg;
    struct raft_io_append *req = r->req;
    req->cb(req, status);
    greq_done(r);
}

static int io_append(struct raft_io *io, struct raft_io_append *req,
                     const struct raft_entry entries[], unsigned n, raft_io_append_cb cb)
{
    rio_gio *g = impl(io);
    greq *r = greq_new(g, req);
    int rc;

    if (!r)
        return RAFT_NOMEM;
    req->cb = cb;
    rc = rio_store_append(rio_hub_store(g->hub), g->gid, g->next_index, entries, n, append_done,
                          r);
    if (rc != 0) {
        greq_done(r);
        return rc;
    }
    g->next_index += n;
    return 0;
}

static int io_truncate(struct raft_io *io, raft_index index)
{
    rio_gio *g = impl(io);
    int rc;

    if (index == 0)
        return RAFT_INVALID;
    rc = rio_store_truncate(rio_hub_store(g->hub), g->gid, index);
    if (rc == 0 && index < g->next_index)
        g->next_index = index;
    return rc;
}

/* ---- snapshots ------------------------------------------------------------ */

static void snapshot_put_done(void *arg, int status)
{
    greq *r = arg;
    struct raft_io_snapshot_put *req = r->req;
    req->cb(req, status);
    greq_done(r);
}

static int io_snapshot_put(struct raft_io *io, unsigned trailing,
                           struct raft_io_snapshot_put *req,
                           const struct raft_snapshot *snapshot, raft_io_snapshot_put_cb cb)
{
    rio_gio *g = impl(io);
    greq *r = greq_new(g, req);
    int rc;

    if (!r)
        return RAFT_NOMEM;
    req->cb = cb;
    rc = rio_store_snapshot_put(rio_hub_store(g->hub), g->gid, trailing, snapshot,
                                snapshot_put_done, r);
    if (rc != 0) {
        greq_done(r);
        return rc;
    }
    if (trailing == 0) /* an installed snapshot replaces the log */
        g->next_index = snapshot->index + 1;
    return 0;
}

static void snapshot_get_done(void *arg)
{
    greq *r = arg;
    struct raft_io_snapshot_get *req = r->req;
    req->cb(req, r->snap, r->status);
    greq_done(r);
}

static int io_snapshot_get(struct raft_io *io, struct raft_io_snapshot_get *req,
                           raft_io_snapshot_get_cb cb)
{
    rio_gio *g = impl(io);
    greq *r = greq_new(g, req);

    if (!r)
        return RAFT_NOMEM;
    req->cb = cb;
    /* A short read transaction now; the callback later. Nothing queued in
     * the writer can change the snapshot raft asks for here: raft only
     * reads the snapshot it has already been told is stored. */
    r->status = rio_store_snapshot_get(rio_hub_store(g->hub), g->gid, &r->snap);
    if (r->status == 0 && r->snap && g->expand && r->snap->n_bufs == 1 &&
        g->expand(g->expand_fsm, &r->snap->bufs[0]) != 0)
        r->status = RAFT_IOERR; /* the send fails; raft sends a snapshot again later */
    if (rio_defer(g->hub, snapshot_get_done, r) != 0) {
        if (r->snap) {
            raft_configuration_close(&r->snap->configuration);
            raft_free(r->snap->bufs[0].base);
            raft_free(r->snap->bufs);
            raft_free(r->snap);
        }
        greq_done(r);
        return RAFT_NOMEM;
    }
    return 0;
}

/* ---- network ------------------------------------------------------------- */

static void send_done(void *arg, int status)
{
    greq *r = arg;
    struct raft_io_send *req = r->req;
    req->cb(req, status);
    greq_done(r);
}

static int io_send(struct raft_io *io, struct raft_io_send *req,
                   const struct raft_message *message, raft_io_send_cb cb)
{
    rio_gio *g = impl(io);
    greq *r = greq_new(g, req);
    int rc;

    if (!r)
        return RAFT_NOMEM;
    req->cb = cb;
    rc = rio_net_send(rio_hub_net(g->hub), g->gid, message, send_done, r);
    if (rc != 0) {
        greq_done(r);
        return rc;
    }
    return 0;
}

/* ---- misc ----------------------------------------------------------------- */

static raft_time io_time(struct raft_io *io)
{
    return rio_hub_time(impl(io)->hub);
}

static int io_random(struct raft_io *io, int min, int max)
{
    return rio_hub_random(impl(io)->hub, min, max);
}

static void async_work_run(void *arg)
{
    greq *r = arg;
    struct raft_io_async_work *req = r->req;
    /* Runs on the loop thread: our FSMs do not use asynchronous snapshots. */
    int status = req->work(req);
    req->cb(req, status);
    greq_done(r);
}

static int io_async_work(struct raft_io *io, struct raft_io_async_work *req,
                         raft_io_async_work_cb cb)
{
    rio_gio *g = impl(io);
    greq *r = greq_new(g, req);

    if (!r)
        return RAFT_NOMEM;
    req->cb = cb;
    if (rio_defer(g->hub, async_work_run, r) != 0) {
        greq_done(r);
        return RAFT_NOMEM;
    }
    return 0;
}

/* ---- the port the hub calls --------------------------------------------- */

/* rio_port.deliver: hands a received message to the group's raft. */
static bool port_deliver(void *arg, struct raft_message *m)
{
    rio_gio *g = arg;

    if (!g->started || !g->recv)
        return false;
    g->recv(g->io, m);
    return true;
}

/* rio_port.tick: raft's tick, when started. */
static void port_tick(void *arg)
{
    rio_gio *g = arg;

    if (g->started && g->tick)
        g->tick(g->io);
}

int rio_io_init(struct raft_io *io, rio_hub *h, uint32_t gid)
{
    rio_gio *g = calloc(1, sizeof *g);
    int rc;

    if (!g)
        return HERALD_ENOMEM;
    g->hub = h;
    g->gid = gid;
    g->io = io;
    g->next_index = 1;
    g->port.deliver = port_deliver;
    g->port.tick = port_tick;
    g->port.arg = g;
    if ((rc = rio_hub_attach(h, gid, &g->port)) != 0) {
        free(g);
        return rc;
    }
    memset(io, 0, sizeof *io);
    io->version = 2;
    io->impl = g;
    io->init = io_init;
    io->close = io_close;
    io->load = io_load;
    io->start = io_start;
    io->bootstrap = io_bootstrap;
    io->recover = io_recover;
    io->set_term = io_set_term;
    io->set_vote = io_set_vote;
    io->send = io_send;
    io->append = io_append;
    io->truncate = io_truncate;
    io->snapshot_put = io_snapshot_put;
    io->snapshot_get = io_snapshot_get;
    io->time = io_time;
    io->random = io_random;
    io->async_work = io_async_work;
    return 0;
}

void rio_io_set_expand(struct raft_io *io, rio_expand_fn fn, struct raft_fsm *fsm)
{
    rio_gio *g = io->impl;
    if (g) {
        g->expand = fn;
        g->expand_fsm = fsm;
    }
}

void rio_io_fini(struct raft_io *io)
{
    rio_gio *g = io->impl;

    if (!g || g->closing) /* a closing io frees itself */
        return;
    if (g->inflight > 0)
        log_error("rio.fini", "group %u: io released with %u requests in flight", g->gid,
                  g->inflight);
    rio_hub_detach(g->hub, g->gid);
    free(g->address);
    free(g);
    io->impl = NULL;
}
