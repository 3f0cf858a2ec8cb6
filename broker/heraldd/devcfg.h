/*
 * devcfg.h — configuration of `heraldd dev`: one table (config.h) drives the
 * file, the command-line flags, the defaults and deploy/herald.conf.
 */
#ifndef HERALD_DEVCFG_H
#define HERALD_DEVCFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "tier.h"
#include "sharedcfg.h"

typedef struct dev_config {
    char data[1024];       /* store.data: LMDB data directory */
    uint64_t map_size;     /* store.map_size: initial LMDB map size */
    uint64_t queue_bytes;  /* store.queue_bytes: bound of each writer's queue */
    bool no_sync;          /* store.no_sync: skip fsync (benchmarks only) */
    uint32_t groups;       /* store.groups: shard groups (one LMDB env + writer each) */
    gw_limits gw;          /* gateway.*: client limits */
    char log_level[16];    /* log.level */
    char tenants[512];     /* dev.tenants: tenants to create, first = dev.env */
    tenant_defaults tenant; /* tenant.*: settings of the tenants it creates */
    callback_limits cb;    /* callback.*: event callback retries */
} dev_config;

extern const cfg_key devcfg_keys[];
extern const size_t devcfg_nkeys;

/* Gateway settings from the config. */
void devcfg_gateway(dev_config *d, gw_config *g);

#endif
