/*
 * drivers.c — the table of compiled-in systems (peer drivers are optional:
 * CMake option HERALD_BENCH_PEERS and the client libraries found).
 */
#include <string.h>

#include "bench.h"

extern const bench_driver bench_drv_herald;
#ifdef HERALD_BENCH_NATS
extern const bench_driver bench_drv_nats;
extern const bench_driver bench_drv_jetstream;
#endif
#ifdef HERALD_BENCH_MQTT
extern const bench_driver bench_drv_mqtt;
#endif
#ifdef HERALD_BENCH_REDIS
extern const bench_driver bench_drv_redis;
#endif
#ifdef HERALD_BENCH_XMPP
extern const bench_driver bench_drv_xmpp;
#endif

const bench_driver *const bench_drivers[] = {
    &bench_drv_herald,
#ifdef HERALD_BENCH_NATS
    &bench_drv_nats,
    &bench_drv_jetstream,
#endif
#ifdef HERALD_BENCH_MQTT
    &bench_drv_mqtt,
#endif
#ifdef HERALD_BENCH_REDIS
    &bench_drv_redis,
#endif
#ifdef HERALD_BENCH_XMPP
    &bench_drv_xmpp,
#endif
    NULL,
};

const bench_driver *bench_driver_find(const char *name)
{
    for (int i = 0; bench_drivers[i]; i++)
        if (strcmp(bench_drivers[i]->name, name) == 0)
            return bench_drivers[i];
    return NULL;
}
