/*
 * herald-bench — open-loop fan-out and throughput benchmark for Herald and,
 * with the same harness and measurement, for peer brokers.
 *
 * One process, one libev loop: M member connections, one of which sends.
 * Sends are scheduled at a fixed rate (open loop: a late loop never lowers
 * the offered load); each message body carries its scheduled send time, and
 * latency is measured from that time to each delivery (so coordinated
 * omission is not hidden). Results go to stdout as one JSON object.
 *
 *   herald-bench [--system herald] --env var/dev.env --scenario fanout
 *                [--members 500] [--rate 100] [--payload 256] [--duration 10]
 *                [--drain 5]
 *   herald-bench --env var/dev.env --scenario throughput [--window 256]
 *                [--duration 10]
 *   herald-bench --env DIR/cluster.env --scenario durable [--window 256]
 *   herald-bench --env DIR/cluster.env --scenario fanout --members 10000
 *                --kind announce --rate 5
 *   herald-bench --env DIR/cluster.env --scenario failover --conv NAME
 *                [--rate 100] [--duration 20] [--retry-after 5]
 *   herald-bench --system nats|mqtt|redis|jetstream|xmpp --url HOST:PORT
 *   herald-bench --system mqtt --env FILE   Herald's MQTT listener (HERALD_MQTT)
 *                [--label NAME] --scenario fanout [...]
 *   herald-bench --system jetstream --url HOST:PORT --scenario durable
 *                [--window 256]
 *   herald-bench --env FILE --scenario conns [--members 10000] [--duration 5]
 *                [--transport tcp|ws: ws dials the env file's HERALD_WS]
 *                [--window 256: handshakes in flight]
 *                --rss-pid PID
 *
 * fanout: a group of M members (herald: a conversation of --kind, by
 *   default group up to 200 members, customer_group up to 500, announce
 *   beyond; NATS: a subject; MQTT: a topic, QoS 0; Redis: a pub/sub
 *   channel); p50/p99/p999/max over every delivery, last_* over the latency
 *   to the last member of each message (the number a user of a big group
 *   feels). Every run reports expected, delivered and lost.
 * throughput (drivers with acks: herald, jetstream): acked sends/s from one
 *   connection with W requests in flight to a 2-member group (herald: acks
 *   come only after the group commit's fsync; JetStream: after the stream's
 *   raft quorum stored the message).
 * durable: throughput against a replicated target: herald refuses a target
 *   whose STATUS does not say "mode":"cluster" (acks only after the raft
 *   entry is committed on a majority and applied); jetstream publishes to a
 *   stream with 3 replicas.
 * conns (herald): --members idle connections, each authenticated, at most
 *   --window handshakes at a time
 *   (HELLO/WELCOME), held open for --duration s; --rss-pid names the server
 *   process whose VmRSS is read before set-up and at the end of the hold
 *   (connections still open): rss_before_kb, rss_after_kb and
 *   rss_per_conn_bytes in the JSON.
 * Every run reports "durability" (what an ack or a delivery means for the
 *   data; --durability overrides the driver's statement) and, with
 *   --rss-pid, the server's VmRSS before and after.
 * failover (herald only): a 2-member conversation, sends at a fixed rate,
 *   each with a message id (cmid) from its index; a send with no ack after
 *   --retry-after s or answered with an error is sent again with the same
 *   cmid. Meant to run while a script kills the leader of the conversation's
 *   shard group (--conv names it, so the script can find the group). Reports
 *   max_ack_gap_us (longest time between two consecutive first acks: leader
 *   gone → writes accepted again) and checks exactly-once from the acks and
 *   from the stored history (exactly_once). expected/delivered/lost count
 *   the pushes to the receiving member.
 */
#include <sys/resource.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "bench.h"

static double num_arg(const char *name, const char *v, double min, double max)
{
    char *end;
    double d = v ? strtod(v, &end) : 0;
    if (!v || *end || d < min || d > max) {
        fprintf(stderr, "herald-bench: %s must be a number in [%g, %g]\n", name, min, max);
        exit(2);
    }
    return d;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: herald-bench [--system herald] --env FILE\n"
            "         [--scenario fanout|throughput|durable|failover|conns] [--kind KIND]\n"
            "         [--conv NAME] [--retry-after S] [--transport tcp|ws]\n"
            "       herald-bench --system nats|mqtt|redis|jetstream|xmpp --url HOST:PORT\n"
            "       herald-bench --system mqtt --env FILE [--url HOST:PORT]   (Herald's MQTT listener)\n"
            "         [--label NAME]\n"
            "       common: [--members M] [--rate R] [--payload BYTES] [--duration S]\n"
            "         [--drain S] [--window W] [--setup-timeout S] [--rss-pid PID]\n"
            "         [--durability TEXT]\n"
            "systems compiled in:");
    for (int i = 0; bench_drivers[i]; i++)
        fprintf(stderr, " %s", bench_drivers[i]->name);
    fprintf(stderr, "\n");
    exit(2);
}

/* One descriptor per member plus a margin: raise the soft limit up to the
 * hard one when that is needed. */
static void raise_fd_limit(int members)
{
    struct rlimit rl;
    rlim_t need = (rlim_t)members + 64;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= need)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need) {
        fprintf(stderr, "herald-bench: %d members need %llu descriptors; the hard limit is %llu\n",
                members, (unsigned long long)need, (unsigned long long)rl.rlim_max);
        exit(2);
    }
    rl.rlim_cur = need;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        bench_die("setrlimit(RLIMIT_NOFILE)");
}

/* Splits HOST:PORT into cfg->host / cfg->port. */
static int parse_url(bench_config *cfg, const char *url)
{
    const char *colon = strrchr(url, ':');
    char *end;
    long port;

    if (!colon || colon == url || (size_t)(colon - url) >= sizeof cfg->host)
        return -1;
    port = strtol(colon + 1, &end, 10);
    if (*end || port < 1 || port > 65535)
        return -1;
    memcpy(cfg->host, url, (size_t)(colon - url));
    cfg->host[colon - url] = '\0';
    cfg->port = (uint16_t)port;
    return 0;
}

int main(int argc, char **argv)
{
    bench_config cfg = {
        .system = "herald",
        .scenario = "fanout",
        .members = 500,
        .rate = 100,
        .payload = 256,
        .duration = 10,
        .drain = 5,
        .window = 256,
        .setup_timeout = 30,
        .retry_after = 5,
    };
    const char *url = NULL, *conv = NULL;
    bool drain_set = false, members_set = false;
    const bench_driver *drv;
    uint8_t rnd[6];

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--env") == 0 && v)
            cfg.env = v;
        else if (strcmp(a, "--system") == 0 && v)
            cfg.system = v;
        else if (strcmp(a, "--label") == 0 && v)
            cfg.label = v;
        else if (strcmp(a, "--url") == 0 && v)
            url = v;
        else if (strcmp(a, "--scenario") == 0 && v)
            cfg.scenario = v;
        else if (strcmp(a, "--kind") == 0 && v)
            cfg.kind = v;
        else if (strcmp(a, "--transport") == 0 && v && (!strcmp(v, "tcp") || !strcmp(v, "ws")))
            cfg.ws = strcmp(v, "ws") == 0;
        else if (strcmp(a, "--conv") == 0 && v)
            conv = v;
        else if (strcmp(a, "--retry-after") == 0)
            cfg.retry_after = num_arg(a, v, 0.1, 600);
        else if (strcmp(a, "--members") == 0)
            cfg.members = (int)num_arg(a, v, 2, 100000), members_set = true;
        else if (strcmp(a, "--rss-pid") == 0)
            cfg.rss_pid = (int)num_arg(a, v, 1, 1 << 30);
        else if (strcmp(a, "--durability") == 0 && v)
            cfg.durability = v;
        else if (strcmp(a, "--rate") == 0)
            cfg.rate = num_arg(a, v, 1, 1e6);
        else if (strcmp(a, "--payload") == 0)
            cfg.payload = (uint32_t)num_arg(a, v, BENCH_BODY_HDR, 1 << 19);
        else if (strcmp(a, "--duration") == 0)
            cfg.duration = num_arg(a, v, 0.1, 3600);
        else if (strcmp(a, "--drain") == 0)
            cfg.drain = num_arg(a, v, 0.1, 600), drain_set = true;
        else if (strcmp(a, "--window") == 0)
            cfg.window = (uint32_t)num_arg(a, v, 1, 65536);
        else if (strcmp(a, "--setup-timeout") == 0)
            cfg.setup_timeout = num_arg(a, v, 1, 3600);
        else
            usage();
        i++;
    }
    drv = bench_driver_find(cfg.system);
    if (!drv) {
        fprintf(stderr, "herald-bench: system '%s' is not compiled in\n", cfg.system);
        usage();
    }
    if (!cfg.label)
        cfg.label = drv->name;
    if (strcmp(drv->name, "herald") == 0 && !cfg.env)
        bench_die("--env FILE (a dev.env or cluster.env) is required");
    /* mqtt with --env: Herald's MQTT listener, HERALD_MQTT from the file
     * unless --url names one. */
    if (strcmp(drv->name, "herald") != 0 && !(strcmp(drv->name, "mqtt") == 0 && cfg.env && !url) &&
        (!url || parse_url(&cfg, url) != 0))
        bench_die("--url HOST:PORT is required for a peer system");
    if (strcmp(cfg.scenario, "fanout") == 0) {
        cfg.mode = BENCH_FANOUT;
    } else if (strcmp(cfg.scenario, "throughput") == 0 ||
               strcmp(cfg.scenario, "durable") == 0) {
        if (!drv->throughput)
            bench_die("the throughput and durable scenarios need a driver with acks (herald, jetstream)");
        cfg.mode = BENCH_THROUGHPUT;
        cfg.need_cluster = strcmp(cfg.scenario, "durable") == 0;
        cfg.members = 2;
        cfg.drain = cfg.drain > 2 ? 2 : cfg.drain;
    } else if (strcmp(cfg.scenario, "failover") == 0) {
        if (!drv->publish_once)
            bench_die("the failover scenario needs exactly-once sends: herald only");
        cfg.mode = BENCH_FAILOVER;
        cfg.members = 2;
        if (!drain_set) /* an upper bound: the run ends once every send is acked */
            cfg.drain = 30;
    } else if (strcmp(cfg.scenario, "conns") == 0) {
        if (!drv->conns)
            bench_die("the conns scenario is for herald only");
        cfg.mode = BENCH_CONNS;
        if (!members_set)
            cfg.members = 10000;
    } else {
        bench_die("--scenario must be fanout, throughput, durable, failover or conns");
    }
    if (cfg.kind && strcmp(drv->name, "herald") != 0)
        bench_die("--kind is for herald only");
    raise_fd_limit(cfg.members);
    signal(SIGPIPE, SIG_IGN);
    if (conv) {
        if (strlen(conv) >= sizeof cfg.group)
            bench_die("--conv is too long");
        snprintf(cfg.group, sizeof cfg.group, "%s", conv);
    } else {
        if (getrandom(rnd, sizeof rnd, 0) != (ssize_t)sizeof rnd)
            bench_die("getrandom");
        snprintf(cfg.group, sizeof cfg.group, "bench-%02x%02x%02x%02x%02x%02x", rnd[0],
                 rnd[1], rnd[2], rnd[3], rnd[4], rnd[5]);
    }
    cfg.loop = EV_DEFAULT;
    return bench_run(&cfg, drv);
}
