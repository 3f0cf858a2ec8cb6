/*
 * nats_ev.c — the libev adapter of nats_ev.h.
 */
#include <stdlib.h>

#include "nats_ev.h"

/* The libev side of one connection, created by the attach callback. */
typedef struct nev {
    struct ev_loop *loop;    /* the bench loop */
    natsConnection *nc;      /* the connection whose socket this is */
    ev_io rio;               /* read interest */
    ev_io wio;               /* write interest */
} nev;

static void nev_on_read(struct ev_loop *loop, ev_io *w, int revents)
{
    nev *e = w->data;
    (void)loop;
    (void)revents;
    natsConnection_ProcessReadEvent(e->nc);
}

static void nev_on_write(struct ev_loop *loop, ev_io *w, int revents)
{
    nev *e = w->data;
    (void)loop;
    (void)revents;
    natsConnection_ProcessWriteEvent(e->nc);
}

static natsStatus nev_attach(void **user, void *loop, natsConnection *nc, natsSock sock)
{
    nev *e = *user;

    if (e) /* a reconnect; reconnects are disabled */
        return NATS_ILLEGAL_STATE;
    e = calloc(1, sizeof *e);
    if (!e)
        return NATS_NO_MEMORY;
    e->loop = loop;
    e->nc = nc;
    ev_io_init(&e->rio, nev_on_read, sock, EV_READ);
    ev_io_init(&e->wio, nev_on_write, sock, EV_WRITE);
    e->rio.data = e->wio.data = e;
    ev_io_start(e->loop, &e->rio); /* attach starts read polling (nats.h) */
    *user = e;
    return NATS_OK;
}

static natsStatus nev_read(void *user, bool add)
{
    nev *e = user;
    if (add)
        ev_io_start(e->loop, &e->rio);
    else
        ev_io_stop(e->loop, &e->rio);
    return NATS_OK;
}

static natsStatus nev_write(void *user, bool add)
{
    nev *e = user;
    if (add)
        ev_io_start(e->loop, &e->wio);
    else
        ev_io_stop(e->loop, &e->wio);
    return NATS_OK;
}

static natsStatus nev_detach(void *user)
{
    nev *e = user;
    ev_io_stop(e->loop, &e->rio);
    ev_io_stop(e->loop, &e->wio);
    free(e);
    return NATS_OK;
}

natsStatus nats_ev_options(natsOptions **out, struct ev_loop *loop, const char *url,
                           natsErrHandler err_cb, void *err_closure)
{
    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);

    if (s == NATS_OK)
        s = natsOptions_SetURL(o, url);
    if (s == NATS_OK)
        s = natsOptions_SetEventLoop(o, loop, nev_attach, nev_read, nev_write, nev_detach);
    if (s == NATS_OK)
        s = natsOptions_UseGlobalMessageDelivery(o, true);
    if (s == NATS_OK) /* flush on the caller's (loop) thread, not the flusher thread */
        s = natsOptions_SetSendAsap(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, false);
    if (s == NATS_OK) /* PINGs would ask for write events from the timer thread */
        s = natsOptions_SetPingInterval(o, 24 * 3600 * 1000);
    if (s == NATS_OK && err_cb)
        s = natsOptions_SetErrorHandler(o, err_cb, err_closure);
    if (s != NATS_OK) {
        natsOptions_Destroy(o);
        return s;
    }
    *out = o;
    return NATS_OK;
}
