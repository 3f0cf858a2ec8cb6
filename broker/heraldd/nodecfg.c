/* nodecfg.c — see nodecfg.h. */
#include "nodecfg.h"

#include <ctype.h>
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "token.h"

#define NODECFG_TENANTS_MAX 16  /* cluster.tenants entries */
#define NODECFG_ID_MAX 64       /* node ids are 1..64 */

/* The links' keys, the same in the node and the gateway table (each
 * expands it with its own K). */
#define LINK_KEYS                                                                            \
    K("cluster.tls_ca", CFG_STR, tls_ca, 0, 0, "",                                           \
      "the cluster CA (PEM file) every link's peer must be signed by; make one with "        \
      "deploy/cluster-certs.sh init DIR"),                                                   \
    K("cluster.tls_cert", CFG_STR, tls_cert, 0, 0, "",                                       \
      "this process's certificate followed by its private key (PEM file; CN node-N or "    \
      "gateway-N): deploy/cluster-certs.sh issue DIR NAME"),                                 \
    K("cluster.plaintext", CFG_BOOL, plaintext, 0, 1, "false",                              \
      "links without TLS: refused unless every cluster.members address is loopback")

#define K(name, type, member, min, max, def, help)                                     \
    {name, type, offsetof(node_config, member), sizeof(((node_config *)0)->member), min, \
     max, def, help}

const cfg_key nodecfg_keys[] = {
    K("node.id", CFG_U32, id, 0, NODECFG_ID_MAX, "0",
      "this node's id, one of the ids in cluster.members (required; 0 = unset)"),
    K("node.data", CFG_STR, data, 1, 0, "",
      "data directory: the raft log and one LMDB store per group"),
    K("cluster.members", CFG_STR, members, 1, 0, "",
      "every node as ID=HOST:PORT, comma-separated, e.g. "
      "1=127.0.0.1:7410,2=127.0.0.1:7420,3=127.0.0.1:7430; a node uses PORT (raft), "
      "PORT+1 (requests) and PORT+2 (events); same value on every node and gateway"),
    K("cluster.replication", CFG_U32, replication, 1, NODECFG_MAX_MEMBERS, "3",
      "replicas of each group; must equal the number of members in this version"),
    K("cluster.groups", CFG_U32, groups, 1, 64, "8",
      "shard groups for conversations (the meta group 0 comes on top); same value on "
      "every node and gateway; fixed once data exists"),
    K("cluster.tenants", CFG_STR, tenants, 1, 0, "demo",
      "tenants the meta-group leader creates if missing, comma-separated (up to 16); each "
      "node writes node.data/tenant-NAME.env once it exists"),
    K("raft.election_ms", CFG_U32, election_ms, 100, 600000, "1000",
      "raft election timeout; must exceed raft.heartbeat_ms"),
    K("raft.heartbeat_ms", CFG_U32, heartbeat_ms, 10, 60000, "100",
      "raft heartbeat interval of a leader"),
    K("raft.snapshot_threshold", CFG_U32, snapshot_threshold, 16, 1u << 30, "4096",
      "log entries applied between two snapshots of a group"),
    K("raft.snapshot_trailing", CFG_U32, snapshot_trailing, 0, 1u << 30, "1024",
      "log entries kept after a snapshot for lagging followers; below "
      "raft.snapshot_threshold"),
    K("raft.log_bytes", CFG_U64, raft_log_bytes, 1u << 20, 1ull << 40, "64M",
      "about this many bytes of a group's recent log entries stay in memory: with big "
      "entries, snapshots (an fsync of the group's store) come sooner than "
      "raft.snapshot_threshold entries"),
    K("raft.map_size", CFG_U64, raft_map_size, 1u << 20, 1ull << 40, "1G",
      "LMDB map size of the raft log (all groups)"),
    K("store.map_size", CFG_U64, map_size, 1u << 20, 1ull << 40, "1G",
      "initial LMDB map size of each group store; grows by doubling when full"),
    K("node.request_timeout_ms", CFG_U32, request_timeout_ms, 100, 600000, "5000",
      "how long a proposal forwarded to the group leader may take"),
    K("node.shutdown_s", CFG_U32, shutdown_s, 1, 3600, "5",
      "after SIGTERM the node closes its groups and stores; if that has not finished in this "
      "many seconds it exits at once (as safe as kill -9)"),
    K("node.http_listen", CFG_STR, http_listen, 0, 0, "",
      "HTTP address HOST:PORT of GET /metrics (Prometheus), /healthz and /readyz; plain "
      "HTTP unless node.http_tls; port 0 picks a free one; empty = off"),
    K("node.http_tls", CFG_BOOL, http_tls, 0, 1, "false",
      "node.http_listen speaks HTTPS only, with the node's cluster certificate "
      "(cluster.tls_cert, issued by the cluster CA for node-ID: a scraper checks it with "
      "cluster.tls_ca and that name)"),
    K("node.queue_bytes", CFG_U64, queue_bytes, 1u << 20, 1ull << 36, "32M",
      "bytes of commands a group may have proposed on this node and not committed yet; past it "
      "requests are refused with BUSY (not applied, retry later)"),
    K("node.reach_wait_ms", CFG_U32, reach_wait_ms, 10, 60000, "1000",
      "how long a HELLO or SYNC waits for this node's replicas to apply what a gateway has "
      "already pushed; then the client is told to retry (UNAVAILABLE)"),
    K("events.chain_users", CFG_U32, chain_users, 1000, 100000000, "1000000",
      "recipients a group leader remembers the last push of (~60 bytes each); past it the "
      "memory is cleared and each recipient's next push makes its client SYNC once"),
    K("gateway.max_frame", CFG_U32, max_frame, 1024, 64u << 20, "1048576",
      "frame payload cap in bytes; use the gateways' value (answers are paged to fit)"),
    K("events.sendbuf", CFG_U32, events_sendbuf, 1, 8192, "8192",
      "nng queue per subscribed gateway, in event batches; when full nng drops the oldest "
      "and gateways repair the gap from events.ring"),
    K("events.ring", CFG_U32, events_ring, 16, 1u << 24, "65536",
      "committed events kept (up to 64 MiB) so gateways can pull what they missed"),
    LINK_KEYS,
    K("log.level", CFG_STR, log_level, 1, 0, "info", "debug | info | warn | error"),
    TENANTCFG_KEYS(node_config, tenant),
    CALLBACKCFG_KEYS(node_config, cb),
};
#undef K

const size_t nodecfg_nkeys = sizeof nodecfg_keys / sizeof nodecfg_keys[0];

#define K(name, type, member, min, max, def, help)                                           \
    {name, type, offsetof(gateway_config, member), sizeof(((gateway_config *)0)->member), min, \
     max, def, help}

const cfg_key gwcfg_keys[] = {
    K("gateway.id", CFG_U32, id, 1, 1000000, "1", "this gateway's id in logs and status"),
    K("cluster.members", CFG_STR, members, 1, 0, "",
      "every node as ID=HOST:PORT, comma-separated; the same value as the nodes'"),
    K("cluster.groups", CFG_U32, groups, 1, 64, "8",
      "shard groups for conversations; the same value as the nodes'"),
    GWLIMITS_KEYS(gateway_config, gw, SHAREDCFG_NOFLAG),
    K("gateway.request_timeout_ms", CFG_U32, request_timeout_ms, 100, 600000, "2000",
      "one try of a request at one node before the next node is asked"),
    K("gateway.retry_ms", CFG_U32, retry_ms, 100, 3600000, "10000",
      "total time a request may be retried (leader changes, node loss) before UNAVAILABLE"),
    K("gateway.forward_bytes", CFG_U32, forward_bytes, 1048576, 4294967295u, "16777216",
      "bytes of writes this gateway may have forwarded and not answered yet; more get BUSY "
      "(not applied)"),
    K("events.recvbuf", CFG_U32, events_recvbuf, 1, 8192, "8192",
      "nng receive queue for the nodes' event batches; missed batches are pulled again"),
    K("events.repair_ms", CFG_U32, events_repair_ms, 10, 600000, "2000",
      "how long events behind a gap wait for the missing ones to be pulled from the node"),
    LINK_KEYS,
    K("log.level", CFG_STR, log_level, 1, 0, "info", "debug | info | warn | error"),
};
#undef K

const size_t gwcfg_nkeys = sizeof gwcfg_keys / sizeof gwcfg_keys[0];

/* Copies [p, p+len) into out (cap bytes) trimmed of blanks. False when it
 * does not fit. */
static bool copy_trimmed(const char *p, size_t len, char *out, size_t cap)
{
    while (len && isspace((unsigned char)*p)) {
        p++;
        len--;
    }
    while (len && isspace((unsigned char)p[len - 1]))
        len--;
    if (len >= cap)
        return false;
    memcpy(out, p, len);
    out[len] = '\0';
    return true;
}

/* Strict decimal in [lo, hi]. */
static bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out)
{
    char *end;
    unsigned long v;
    if (!isdigit((unsigned char)*s) || strlen(s) > 10)
        return false;
    v = strtoul(s, &end, 10);
    if (*end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

/* Builds "tcp://HOST:PORT" (IPv6 literals in brackets). */
static void make_url(char *out, size_t cap, const char *host, unsigned port)
{
    if (strchr(host, ':'))
        snprintf(out, cap, "tcp://[%s]:%u", host, port);
    else
        snprintf(out, cap, "tcp://%s:%u", host, port);
}

/* Parses one "ID=HOST:PORT" entry (already trimmed) into m. */
static int parse_member(const char *entry, node_member *m, char *err, size_t errlen)
{
    char idtext[16], hostport[sizeof m->host + 16];
    const char *eq = strchr(entry, '='), *colon, *host;
    size_t hostlen;
    unsigned long id, port;

    if (!eq || !copy_trimmed(entry, (size_t)(eq - entry), idtext, sizeof idtext) ||
        !copy_trimmed(eq + 1, strlen(eq + 1), hostport, sizeof hostport)) {
        snprintf(err, errlen, "cluster.members: bad entry '%s': expected ID=HOST:PORT", entry);
        return HERALD_EINVAL;
    }
    if (!parse_uint(idtext, 1, NODECFG_ID_MAX, &id)) {
        snprintf(err, errlen, "cluster.members: bad entry '%s': node id must be 1..%d", entry,
                 NODECFG_ID_MAX);
        return HERALD_EINVAL;
    }
    host = hostport;
    if (hostport[0] == '[') {
        /* "[::1]:7410" */
        const char *rb = strchr(hostport, ']');
        if (!rb || rb[1] != ':') {
            snprintf(err, errlen, "cluster.members: bad entry '%s': expected ID=[ADDR]:PORT",
                     entry);
            return HERALD_EINVAL;
        }
        host = hostport + 1;
        hostlen = (size_t)(rb - host);
        colon = rb + 1;
    } else {
        colon = strrchr(hostport, ':');
        hostlen = colon ? (size_t)(colon - hostport) : 0;
        if (colon && memchr(hostport, ':', hostlen)) {
            snprintf(err, errlen,
                     "cluster.members: bad entry '%s': IPv6 addresses go in brackets, "
                     "ID=[ADDR]:PORT",
                     entry);
            return HERALD_EINVAL;
        }
    }
    if (!colon || hostlen == 0 || hostlen >= sizeof m->host) {
        snprintf(err, errlen, "cluster.members: bad entry '%s': expected ID=HOST:PORT", entry);
        return HERALD_EINVAL;
    }
    for (size_t i = 0; i < hostlen; i++) {
        if (isspace((unsigned char)host[i]) || host[i] == '/') {
            snprintf(err, errlen, "cluster.members: bad entry '%s': bad host", entry);
            return HERALD_EINVAL;
        }
    }
    if (!parse_uint(colon + 1, 1, 65533, &port)) {
        snprintf(err, errlen,
                 "cluster.members: bad entry '%s': port must be 1..65533 (the node also "
                 "listens on PORT+1 and PORT+2)",
                 entry);
        return HERALD_EINVAL;
    }
    memset(m, 0, sizeof *m);
    m->id = (uint32_t)id;
    memcpy(m->host, host, hostlen);
    m->host[hostlen] = '\0';
    m->port = (uint16_t)port;
    make_url(m->raft_url, sizeof m->raft_url, m->host, m->port);
    make_url(m->req_url, sizeof m->req_url, m->host, m->port + 1u);
    make_url(m->pub_url, sizeof m->pub_url, m->host, m->port + 2u);
    return 0;
}

int nodecfg_parse_members(const char *text, node_member *out, uint32_t *n, char *err,
                          size_t errlen)
{
    const char *p = text;
    uint32_t count = 0;
    char entry[sizeof out->host + 32];

    *n = 0;
    while (isspace((unsigned char)*p))
        p++;
    if (!*p) {
        snprintf(err, errlen, "cluster.members: required (ID=HOST:PORT, comma-separated)");
        return HERALD_EINVAL;
    }
    p = text;
    for (;;) {
        size_t len = strcspn(p, ",");
        node_member m;
        int rc;

        if (!copy_trimmed(p, len, entry, sizeof entry)) {
            snprintf(err, errlen, "cluster.members: entry '%.40s...' is too long", p);
            return HERALD_EINVAL;
        }
        if (!entry[0]) {
            snprintf(err, errlen, "cluster.members: empty entry (entry %u)", count + 1);
            return HERALD_EINVAL;
        }
        rc = parse_member(entry, &m, err, errlen);
        if (rc)
            return rc;
        if (count == NODECFG_MAX_MEMBERS) {
            snprintf(err, errlen, "cluster.members: more than %d members", NODECFG_MAX_MEMBERS);
            return HERALD_EINVAL;
        }
        for (uint32_t i = 0; i < count; i++) {
            if (out[i].id == m.id) {
                snprintf(err, errlen, "cluster.members: node id %u listed twice ('%s')", m.id,
                         entry);
                return HERALD_EINVAL;
            }
            /* Each node takes PORT..PORT+2 on its host. */
            if (strcmp(out[i].host, m.host) == 0 &&
                (m.port > out[i].port ? m.port - out[i].port : out[i].port - m.port) < 3) {
                snprintf(err, errlen,
                         "cluster.members: '%s' overlaps node %u on %s:%u (each node uses "
                         "PORT..PORT+2)",
                         entry, out[i].id, out[i].host, out[i].port);
                return HERALD_EINVAL;
            }
        }
        out[count++] = m;
        p += len;
        if (!*p)
            break;
        p++; /* the comma */
    }
    *n = count;
    return 0;
}

static int check_log_level(const char *level, char *err, size_t errlen)
{
    log_level lvl;
    if (log_level_parse(level, &lvl) != 0) {
        snprintf(err, errlen, "log.level: must be debug, info, warn or error, not '%s'", level);
        return HERALD_EINVAL;
    }
    return 0;
}

/* cluster.tenants: 1..NODECFG_TENANTS_MAX valid tenant ids. */
static int check_tenants(const char *list, char *err, size_t errlen)
{
    const char *p = list;
    int n = 0;
    if (!*p) {
        snprintf(err, errlen, "cluster.tenants: required (comma-separated tenant ids)");
        return HERALD_EINVAL;
    }
    for (;;) {
        size_t len = strcspn(p, ",");
        if (!token_id_valid(p, len)) {
            snprintf(err, errlen,
                     "cluster.tenants: '%.*s' is not a tenant id (1..%u of A-Z a-z 0-9 . _ @ : "
                     "-)",
                     (int)(len > 64 ? 64 : len), p, TOKEN_ID_MAX);
            return HERALD_EINVAL;
        }
        if (++n > NODECFG_TENANTS_MAX) {
            snprintf(err, errlen, "cluster.tenants: more than %d tenants", NODECFG_TENANTS_MAX);
            return HERALD_EINVAL;
        }
        p += len;
        if (!*p)
            break;
        p++;
    }
    return 0;
}

/* True for a loopback host: localhost, 127.0.0.0/8, ::1. */
static bool loopback_host(const char *h)
{
    return strcmp(h, "localhost") == 0 || strncmp(h, "127.", 4) == 0 || strcmp(h, "::1") == 0 ||
           strcmp(h, "[::1]") == 0;
}

/* The links' security: TLS files given, or plaintext on loopback only. */
static int check_links(const node_member *m, uint32_t n, const char *ca, const char *cert,
                       bool plaintext, char *err, size_t errlen)
{
    if (plaintext) {
        for (uint32_t i = 0; i < n; i++)
            if (!loopback_host(m[i].host)) {
                snprintf(err, errlen,
                         "cluster.plaintext: links without TLS are only for loopback clusters, "
                         "and member %u is %s: set cluster.tls_ca and cluster.tls_cert instead",
                         m[i].id, m[i].host);
                return HERALD_EINVAL;
            }
        if (ca[0] || cert[0]) {
            snprintf(err, errlen, "cluster.plaintext: true, but cluster.tls_ca / cluster.tls_cert "
                     "are set: choose one");
            return HERALD_EINVAL;
        }
        return 0;
    }
    if (!ca[0] || !cert[0]) {
        snprintf(err, errlen,
                 "%s: required: the cluster's links use mutual TLS (make a CA and certificates "
                 "with deploy/cluster-certs.sh), or set cluster.plaintext = true on a "
                 "loopback-only cluster", !ca[0] ? "cluster.tls_ca" : "cluster.tls_cert");
        return HERALD_EINVAL;
    }
    return 0;
}

/* "" (off) or HOST:PORT. */
static int check_http_listen(const char *key, const char *v, char *err, size_t errlen)
{
    const char *colon = strrchr(v, ':');
    unsigned long port;
    if (v[0] && (!colon || colon == v || !parse_uint(colon + 1, 0, 65535, &port))) {
        snprintf(err, errlen, "%s: expected HOST:PORT or empty (off), not '%s'", key, v);
        return HERALD_EINVAL;
    }
    return 0;
}

int nodecfg_validate(node_config *c, char *err, size_t errlen)
{
    int rc;

    c->n_members = 0;
    c->self = 0;
    if (!c->data[0]) {
        snprintf(err, errlen, "node.data: required");
        return HERALD_EINVAL;
    }
    if (check_http_listen("node.http_listen", c->http_listen, err, errlen) != 0)
        return HERALD_EINVAL;
    if (c->http_tls && (!c->tls_cert[0] || c->plaintext)) {
        snprintf(err, errlen, "node.http_tls: needs the node's certificate (cluster.tls_cert; "
                              "not with cluster.plaintext)");
        return HERALD_EINVAL;
    }
    rc = nodecfg_parse_members(c->members, c->member, &c->n_members, err, errlen);
    if (rc)
        return rc;
    if (c->id == 0) {
        snprintf(err, errlen, "node.id: required (this node's id in cluster.members)");
        goto fail;
    }
    for (c->self = 0; c->self < c->n_members; c->self++)
        if (c->member[c->self].id == c->id)
            break;
    if (c->self == c->n_members) {
        snprintf(err, errlen, "node.id: %u is not in cluster.members", c->id);
        goto fail;
    }
    if (c->replication != c->n_members) {
        snprintf(err, errlen,
                 "cluster.replication: must equal the number of cluster.members (%u, not %u): "
                 "in this version every node holds a replica of every group",
                 c->n_members, c->replication);
        goto fail;
    }
    if (c->groups < 1 || c->groups > 64) {
        snprintf(err, errlen, "cluster.groups: must be between 1 and 64, not %u", c->groups);
        goto fail;
    }
    if (c->heartbeat_ms >= c->election_ms) {
        snprintf(err, errlen,
                 "raft.heartbeat_ms: must be less than raft.election_ms (%u), not %u",
                 c->election_ms, c->heartbeat_ms);
        goto fail;
    }
    if (c->snapshot_trailing >= c->snapshot_threshold) {
        snprintf(err, errlen,
                 "raft.snapshot_trailing: must be less than raft.snapshot_threshold (%u), not %u",
                 c->snapshot_threshold, c->snapshot_trailing);
        goto fail;
    }
    rc = check_tenants(c->tenants, err, errlen);
    if (rc)
        goto fail;
    rc = check_log_level(c->log_level, err, errlen);
    if (rc)
        goto fail;
    rc = check_links(c->member, c->n_members, c->tls_ca, c->tls_cert, c->plaintext, err, errlen);
    if (rc)
        goto fail;
    return 0;
fail:
    c->n_members = 0;
    c->self = 0;
    return HERALD_EINVAL;
}

int nodecfg_gateway_validate(gateway_config *c, char *err, size_t errlen)
{
    const char *colon = strrchr(c->gw.listen, ':');
    unsigned long port;
    int rc;

    c->n_members = 0;
    if (!colon || colon == c->gw.listen || !parse_uint(colon + 1, 0, 65535, &port)) {
        snprintf(err, errlen, "gateway.listen: expected HOST:PORT, not '%s'", c->gw.listen);
        return HERALD_EINVAL;
    }
    colon = strrchr(c->gw.ws_listen, ':');
    if (c->gw.ws_listen[0] &&
        (!colon || colon == c->gw.ws_listen || !parse_uint(colon + 1, 0, 65535, &port))) {
        snprintf(err, errlen, "gateway.ws_listen: expected HOST:PORT or empty (off), not '%s'",
                 c->gw.ws_listen);
        return HERALD_EINVAL;
    }
    colon = strrchr(c->gw.mqtt_listen, ':');
    if (c->gw.mqtt_listen[0] &&
        (!colon || colon == c->gw.mqtt_listen || !parse_uint(colon + 1, 0, 65535, &port))) {
        snprintf(err, errlen, "gateway.mqtt_listen: expected HOST:PORT or empty (off), not '%s'",
                 c->gw.mqtt_listen);
        return HERALD_EINVAL;
    }
    if (check_http_listen("gateway.http_listen", c->gw.http_listen, err, errlen) != 0)
        return HERALD_EINVAL;
    rc = nodecfg_parse_members(c->members, c->member, &c->n_members, err, errlen);
    if (rc)
        return rc;
    if (c->groups < 1 || c->groups > 64) {
        snprintf(err, errlen, "cluster.groups: must be between 1 and 64, not %u", c->groups);
        goto fail;
    }
    if (c->request_timeout_ms > c->retry_ms) {
        snprintf(err, errlen,
                 "gateway.request_timeout_ms: must not exceed gateway.retry_ms (%u), not %u",
                 c->retry_ms, c->request_timeout_ms);
        goto fail;
    }
    rc = check_log_level(c->log_level, err, errlen);
    if (rc)
        goto fail;
    rc = check_links(c->member, c->n_members, c->tls_ca, c->tls_cert, c->plaintext, err, errlen);
    if (rc)
        goto fail;
    return 0;
fail:
    c->n_members = 0;
    return HERALD_EINVAL;
}
