/* sockclose.c — nng_close within a deadline (sockclose.h). */
#include "sockclose.h"

#include <errno.h>
#include <herald/error.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "log.h"

/* One close: shared by the caller and the closing thread; whichever of the
 * two finishes last frees it. */
typedef struct closer {
    nng_socket s;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool done;      /* nng_close returned */
    bool abandoned; /* the caller stopped waiting */
} closer;

static atomic_uint_fast64_t g_abandoned; /* a fact about nng's process-wide state */

uint64_t sock_close_abandoned(void) { return atomic_load(&g_abandoned); }

static void closer_free(closer *c)
{
    pthread_cond_destroy(&c->cv);
    pthread_mutex_destroy(&c->mu);
    free(c);
}

static void *closer_main(void *arg)
{
    closer *c = arg;
    bool last;

    nng_close(c->s);
    pthread_mutex_lock(&c->mu);
    c->done = true;
    last = c->abandoned;
    pthread_cond_signal(&c->cv);
    pthread_mutex_unlock(&c->mu);
    if (last)
        closer_free(c);
    return NULL;
}

int sock_close(nng_socket s, const char *what, unsigned ms)
{
    pthread_condattr_t ca;
    pthread_attr_t ta;
    pthread_t th;
    struct timespec until;
    closer *c;
    bool done;
    int rc = 0;

    if (!ms)
        ms = SOCK_CLOSE_MS;
    c = calloc(1, sizeof *c);
    if (!c)
        goto unbounded;
    c->s = s;
    pthread_mutex_init(&c->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_attr_init(&ta);
    pthread_attr_setdetachstate(&ta, PTHREAD_CREATE_DETACHED);
    rc = pthread_create(&th, &ta, closer_main, c);
    pthread_attr_destroy(&ta);
    if (rc != 0) {
        closer_free(c);
        goto unbounded;
    }
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000u;
    until.tv_nsec += (long)(ms % 1000u) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&c->mu);
    while (!c->done && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&c->cv, &c->mu, &until);
    done = c->done;
    if (!done)
        c->abandoned = true;
    pthread_mutex_unlock(&c->mu);
    if (done) {
        closer_free(c);
        return 0;
    }
    atomic_fetch_add(&g_abandoned, 1);
    log_warn("nng.close", "%s: nng_close did not return within %u ms (a receive nng 1.5.2 lost "
             "on a connection closed mid-message); left to its thread", what, ms);
    return HERALD_ETIMEOUT;

unbounded:
    nng_close(s);
    return HERALD_ENOMEM;
}
