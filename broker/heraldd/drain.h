/*
 * drain.h — how a serving heraldd process (dev, gateway) stops on SIGTERM /
 * SIGINT: first it drains — /readyz answers 503 "draining" so a load
 * balancer or orchestrator stops sending it new clients, while everything
 * keeps serving — for gateway.drain_ms; then the loop breaks and the
 * shutdown budget (shutdown.h) starts. A second signal, or drain_ms 0,
 * stops at once.
 *
 * Threads: the loop thread given to drain_start.
 */
#ifndef HERALD_HERALDD_DRAIN_H
#define HERALD_HERALDD_DRAIN_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

typedef struct drain {
    struct ev_loop *loop;
    ev_signal term, intr;
    ev_timer timer;
    double secs;    /* how long to drain */
    bool on;        /* draining */
    char who[32];   /* "gateway 1", "dev": the log lines' */
} drain;

/* Watches SIGTERM and SIGINT on loop. */
void drain_start(drain *d, struct ev_loop *loop, uint32_t ms, const char *who);
/* Stops the watchers (after the loop returned). */
void drain_stop(drain *d);
/* True from the first signal on: not ready. */
bool drain_active(const drain *d);

#endif
