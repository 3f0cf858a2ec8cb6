/*
 * nodecfg.h — configuration of `heraldd node` and `heraldd gateway`: one
 * table per process (config.h) drives the file, the defaults, the
 * validation and the generated samples deploy/node.conf and
 * deploy/gateway.conf.
 *
 * cluster.members lists every node as "ID=HOST:PORT" separated by commas.
 * Node ID listens on three consecutive ports of HOST:
 *   PORT     raft traffic between nodes       (nng PULL, tcp://HOST:PORT)
 *   PORT+1   requests from gateways and nodes (nng REP,  tcp://HOST:PORT+1)
 *   PORT+2   committed events for gateways    (nng PUB,  tcp://HOST:PORT+2)
 * In this version every node holds a replica of every group, so
 * cluster.replication must equal the number of members.
 */
#ifndef HERALD_NODECFG_H
#define HERALD_NODECFG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "sharedcfg.h"

#define NODECFG_MAX_MEMBERS 9

/* One member of the cluster, parsed from cluster.members. */
typedef struct node_member {
    uint32_t id;          /* node id, 1..64 */
    char host[128];       /* host name or address */
    uint16_t port;        /* base port (raft); request = +1, publish = +2 */
    char raft_url[160];   /* "tcp://HOST:PORT" */
    char req_url[160];    /* "tcp://HOST:PORT+1" */
    char pub_url[160];    /* "tcp://HOST:PORT+2" */
} node_member;

typedef struct node_config {
    uint32_t id;                 /* node.id: this node (must be in cluster.members) */
    char data[1024];             /* node.data: data directory (raft state + one store per group) */
    char members[2048];          /* cluster.members: "1=127.0.0.1:7410,2=…" */
    uint32_t replication;        /* cluster.replication: replicas per group (= members) */
    uint32_t groups;             /* cluster.groups: shard groups for conversations (≥ 1);
                                    group 0, the meta group, comes on top */
    char tenants[512];           /* cluster.tenants: tenants the meta leader creates if missing */
    uint32_t election_ms;        /* raft.election_ms */
    uint32_t heartbeat_ms;       /* raft.heartbeat_ms */
    uint32_t snapshot_threshold; /* raft.snapshot_threshold: entries between snapshots */
    uint32_t snapshot_trailing;  /* raft.snapshot_trailing: entries kept after one */
    uint64_t raft_map_size;      /* raft.map_size: LMDB map of the raft log */
    uint64_t raft_log_bytes;     /* raft.log_bytes: in-memory log budget per group */
    uint64_t map_size;           /* store.map_size: initial LMDB map of each group store */
    uint32_t request_timeout_ms; /* node.request_timeout_ms: forwarded proposals */
    uint32_t reach_wait_ms;      /* node.reach_wait_ms: HELLO/SYNC wait for replicas */
    callback_limits cb;          /* callback.*: event callback retries */
    uint32_t chain_users;        /* events.chain_users: push chain bound per group */
    uint64_t queue_bytes;        /* node.queue_bytes: proposal bytes in flight per group */
    uint32_t shutdown_s;         /* node.shutdown_s: the shutdown budget */
    char http_listen[256];       /* node.http_listen: /metrics, /healthz, /readyz ("" off) */
    bool http_tls;               /* node.http_tls: that port speaks HTTPS (cluster.tls_cert) */
    uint32_t max_frame;          /* gateway.max_frame: same value as the gateways' */
    char log_level[16];          /* log.level */
    tenant_defaults tenant;      /* tenant.*: settings of the tenants it creates */
    uint32_t events_sendbuf;     /* events.sendbuf: nng queue per gateway, messages */
    uint32_t events_ring;        /* events.ring: events kept for gap repair */
    char tls_ca[1024];           /* cluster.tls_ca: the cluster CA (PEM) */
    char tls_cert[1024];         /* cluster.tls_cert: this process's certificate + key (PEM) */
    bool plaintext;              /* cluster.plaintext: no TLS (loopback clusters only) */
    /* Filled by nodecfg_validate, not keys: */
    uint32_t n_members;
    node_member member[NODECFG_MAX_MEMBERS];
    uint32_t self;               /* index of node.id in member[] */
} node_config;

typedef struct gateway_config {
    uint32_t id;                 /* gateway.id: for logs and status */
    char members[2048];          /* cluster.members: same value as the nodes' */
    uint32_t groups;             /* cluster.groups: same value as the nodes' */
    gw_limits gw;                /* gateway.*: client limits */
    uint32_t request_timeout_ms; /* gateway.request_timeout_ms: one try at one node */
    uint32_t retry_ms;           /* gateway.retry_ms: total time a request may be retried */
    uint32_t forward_bytes;      /* gateway.forward_bytes: writes in flight to the nodes */
    char log_level[16];          /* log.level */
    uint32_t events_recvbuf;     /* events.recvbuf: nng receive queue, messages */
    uint32_t events_repair_ms;   /* events.repair_ms: wait for a missed event this long */
    char tls_ca[1024];           /* cluster.tls_ca: the cluster CA (PEM) */
    char tls_cert[1024];         /* cluster.tls_cert: this process's certificate + key (PEM) */
    bool plaintext;              /* cluster.plaintext: no TLS (loopback clusters only) */
    /* Filled by nodecfg_gateway_validate: */
    uint32_t n_members;
    node_member member[NODECFG_MAX_MEMBERS];
} gateway_config;

extern const cfg_key nodecfg_keys[];
extern const size_t nodecfg_nkeys;
extern const cfg_key gwcfg_keys[];
extern const size_t gwcfg_nkeys;

/* Parses a cluster.members value into out (≤ NODECFG_MAX_MEMBERS entries,
 * ids unique, ports 1..65533, hosts non-empty). 0 or HERALD_EINVAL with a
 * message naming cluster.members in err. */
int nodecfg_parse_members(const char *text, node_member *out, uint32_t *n, char *err,
                          size_t errlen);

/* Cross-key checks after loading; fills the derived fields. 0 or
 * HERALD_EINVAL with "key: problem" in err. */
int nodecfg_validate(node_config *c, char *err, size_t errlen);
int nodecfg_gateway_validate(gateway_config *c, char *err, size_t errlen);

#endif
