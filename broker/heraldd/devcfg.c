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
    K("store.groups", CFG_U32, groups, 1, 64, "4",
      "shard groups, each its own LMDB env and group-commit writer thread; fixed once "
      "data exists"),
    K("gateway.listen", CFG_STR, listen, 1, 0, "127.0.0.1:7400",
      "client TCP address HOST:PORT, port 0 picks a free one (--listen)"),
    K("gateway.max_frame", CFG_U32, max_frame, 1024, 64u << 20, "1048576",
      "frame payload cap in bytes, checked before allocating (--max-frame)"),
    K("gateway.rate", CFG_U32, rate, 1, 10000000, "2000",
      "sustained requests/s per connection, burst twice that (--rate)"),
    K("gateway.out_cap", CFG_U64, out_cap, 4096, 1ull << 32, "8M",
      "output backlog per connection before SLOW_CONSUMER (--out-cap)"),
    K("gateway.hello_ms", CFG_U32, hello_ms, 100, 600000, "10000",
      "time from accept to HELLO"),
    K("gateway.idle_ms", CFG_U32, idle_ms, 100, 86400000, "90000",
      "close a connection silent this long; clients ping every third of it (--idle-ms)"),
    K("gateway.max_conns", CFG_U32, max_conns, 1, 1000000, "10000",
      "connection cap; more are refused with BUSY"),
    K("dev.tenants", CFG_STR, tenants, 1, 0, "demo",
      "tenants created on first start, comma-separated (up to 16); each gets "
      "DIR/tenant-NAME.env, the first also DIR/dev.env (--tenants)"),
    K("tenant.recall_window_s", CFG_U64, recall_window, 1, 14u * 86400, "86400",
      "how long a sender may recall a message (tenants created from now on)"),
    K("tenant.urgent_interval_s", CFG_U32, urgent_interval, 1, 86400, "300",
      "seconds between reminders of an unconfirmed urgent (DING) message"),
    K("tenant.urgent_max_reminders", CFG_U32, urgent_max, 1, 100, "3",
      "reminders before the sender is told to escalate (SMS / phone hook)"),
    K("tenant.receipts", CFG_BOOL, receipts, 0, 0, "true",
      "read receipts (who has read) for tenants created from now on"),
    K("tenant.app_dedup_s", CFG_U32, app_dedup, 1, 14400, "1800",
      "app messages: the same app and message id again within this many seconds is a "
      "duplicate (a request may ask for up to 14400)"),
    K("tenant.app_freq_per_min", CFG_U32, app_freq, 1, 100000, "30",
      "app messages one member may get from one app per minute; more are refused"),
    K("tenant.customer_limit", CFG_U32, customer_limit, 1, 1000000, "50000",
      "customers one employee may own; a transfer to an employee at it is refused"),
    K("tenant.transfer_wait_s", CFG_U32, transfer_wait, 1, 30u * 86400, "86400",
      "in-service customer transfer: seconds the customer may object before the takeover"),
    K("log.level", CFG_STR, log_level, 1, 0, "info", "debug | info | warn | error (--log-level)"),
};
#undef K

const size_t devcfg_nkeys = sizeof devcfg_keys / sizeof devcfg_keys[0];

void devcfg_gateway(const dev_config *d, gw_config *g)
{
    gw_config_defaults(g);
    g->listen = d->listen;
    g->max_frame = d->max_frame;
    g->rate = d->rate;
    g->burst = d->rate * 2;
    g->out_cap = d->out_cap;
    g->hello_ms = d->hello_ms;
    g->idle_ms = d->idle_ms;
    g->max_conns = d->max_conns;
}
