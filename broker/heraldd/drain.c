/* drain.c — see drain.h. */
#include "drain.h"

#include <signal.h>
#include <stdio.h>

#include "log.h"
#include "shutdown.h"

static void stop_now(drain *d, const char *why)
{
    log_info("drain.stop", "%s: %s: shutting down (budget %u s)", d->who, why,
             SHUTDOWN_BUDGET_S_DEFAULT);
    shutdown_begin(SHUTDOWN_BUDGET_S_DEFAULT, d->who);
    ev_break(d->loop, EVBREAK_ALL);
}

static void on_signal(struct ev_loop *loop, ev_signal *w, int revents)
{
    drain *d = w->data;
    char why[48];
    (void)loop;
    (void)revents;
    snprintf(why, sizeof why, "signal %d", w->signum);
    if (d->on || d->secs <= 0) {
        stop_now(d, why);
        return;
    }
    d->on = true;
    log_info("drain.begin", "%s: %s: draining for %.1f s (/readyz answers 503), then stopping",
             d->who, why, d->secs);
    ev_timer_set(&d->timer, d->secs, 0.0);
    ev_timer_start(d->loop, &d->timer);
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)revents;
    stop_now(w->data, "drained");
}

void drain_start(drain *d, struct ev_loop *loop, uint32_t ms, const char *who)
{
    *d = (drain){.loop = loop, .secs = ms / 1000.0};
    snprintf(d->who, sizeof d->who, "%s", who);
    ev_signal_init(&d->term, on_signal, SIGTERM);
    ev_signal_init(&d->intr, on_signal, SIGINT);
    ev_timer_init(&d->timer, on_timer, 0.0, 0.0);
    d->term.data = d->intr.data = d->timer.data = d;
    ev_signal_start(loop, &d->term);
    ev_signal_start(loop, &d->intr);
}

void drain_stop(drain *d)
{
    ev_signal_stop(d->loop, &d->term);
    ev_signal_stop(d->loop, &d->intr);
    ev_timer_stop(d->loop, &d->timer);
}

bool drain_active(const drain *d) { return d->on; }
