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
#include "gw.h"

typedef struct dev_config {
    char data[1024];       /* store.data: LMDB data directory */
    uint64_t map_size;     /* store.map_size: initial LMDB map size */
    bool no_sync;          /* store.no_sync: skip fsync (benchmarks only) */
    uint32_t groups;       /* store.groups: shard groups (one LMDB env + writer each) */
    char listen[256];      /* gateway.listen */
    uint32_t max_frame;    /* gateway.max_frame */
    uint32_t rate;         /* gateway.rate: requests/s per connection */
    uint64_t out_cap;      /* gateway.out_cap */
    uint32_t hello_ms;     /* gateway.hello_ms */
    uint32_t idle_ms;      /* gateway.idle_ms */
    uint32_t max_conns;    /* gateway.max_conns */
    char log_level[16];    /* log.level */
    char tenants[512];     /* dev.tenants: tenants to create, first = dev.env */
    uint64_t recall_window;  /* tenant.recall_window_s (new tenants) */
    uint32_t urgent_interval; /* tenant.urgent_interval_s (new tenants) */
    uint32_t urgent_max;    /* tenant.urgent_max_reminders (new tenants) */
    bool receipts;          /* tenant.receipts (new tenants) */
    uint32_t app_dedup;     /* tenant.app_dedup_s (new tenants) */
    uint32_t app_freq;      /* tenant.app_freq_per_min (new tenants) */
    uint32_t customer_limit; /* tenant.customer_limit (new tenants) */
    uint32_t transfer_wait; /* tenant.transfer_wait_s (new tenants) */
} dev_config;

extern const cfg_key devcfg_keys[];
extern const size_t devcfg_nkeys;

/* Gateway settings from the config. */
void devcfg_gateway(const dev_config *d, gw_config *g);

#endif
