/* devcfg.c — see devcfg.h. */
#include "devcfg.h"

#define K(name, type, member, min, max, def, help)                                   \
    {name, type, offsetof(dev_config, member), sizeof(((dev_config *)0)->member), min, max, \
     def, help}

const cfg_key devcfg_keys[] = {
    K("store.data", CFG_STR, data, 1, 0, "", "LMDB data directory (--data)"),
    K("store.map_size", CFG_U64, map_size, 1u << 20, 1ull << 40, "1G",
      "initial LMDB map size; grows by doubling when full"),
    K("store.no_sync", CFG_BOOL, no_sync, 0, 0, "false",
      "skip fsync: acks are no longer durable (benchmarks of the CPU path only)"),
    K("store.queue_bytes", CFG_U64, queue_bytes, 1u << 20, 1ull << 36, "64M",
      "bytes of commands one group's writer may have queued; past it requests are refused "
      "with BUSY (not applied, retry later)"),
    K("store.groups", CFG_U32, groups, 1, 64, "4",
      "shard groups, each its own LMDB env and group-commit writer thread; fixed once "
      "data exists"),
    GWLIMITS_KEYS(dev_config, gw, SHAREDCFG_FLAG),
    K("dev.tenants", CFG_STR, tenants, 1, 0, "demo",
      "tenants created on first start, comma-separated (up to 16); each gets "
      "DIR/tenant-NAME.env, the first also DIR/dev.env (--tenants)"),
    TENANTCFG_KEYS(dev_config, tenant),
    CALLBACKCFG_KEYS(dev_config, cb),
    K("log.level", CFG_STR, log_level, 1, 0, "info", "debug | info | warn | error (--log-level)"),
};
#undef K

const size_t devcfg_nkeys = sizeof devcfg_keys / sizeof devcfg_keys[0];

void devcfg_gateway(dev_config *d, gw_config *g)
{
    gwlimits_config(&d->gw, g);
    g->queue_bytes = (size_t)d->queue_bytes;
}
