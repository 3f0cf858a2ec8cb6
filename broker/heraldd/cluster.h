/*
 * cluster.h — the cluster processes of heraldd.
 *
 * node_run:  `heraldd node --config FILE` — one raft replica of the meta
 *            group and every shard group (rio over nng + LMDB), the
 *            request service running what gateways forward, committed
 *            events published to gateways.
 * front_run: `heraldd gateway --config FILE` — client connections (the
 *            session tier and its limits), each frame forwarded to the
 *            leader of its group, pushes from the nodes' events.
 * digest_run: `heraldd digest --data DIR` — applied index and SHA-256 of
 *            every group store of a stopped node (replicas must match).
 * upgrade_run: `heraldd upgrade-data --data DIR` — group stores of a
 *            stopped dev or node data dir from store format 1 to 2.
 *
 * Each returns a process exit code; runs on the default libev loop until
 * SIGTERM/SIGINT.
 */
#ifndef HERALD_HERALDD_CLUSTER_H
#define HERALD_HERALDD_CLUSTER_H

#include <stdint.h>

#include "nodecfg.h"

int node_run(node_config *cfg);
int front_run(gateway_config *cfg);
int digest_run(int argc, char **argv);
int upgrade_run(int argc, char **argv);

#endif
