/*
 * bench.h — the herald-bench core and its driver interface.
 *
 * The core (bench.c) owns the run: it paces sends at a fixed rate (open loop:
 * latency counts from each message's *scheduled* send time), stamps every
 * body with that time and the message index, records every delivery in
 * log-linear histograms, counts losses (expected vs delivered) and prints one
 * JSON object. A driver (drv_*.c) only moves bytes: it connects the members
 * of a group to one system, subscribes the receivers, publishes a body when
 * asked, and hands every received body back with bench_deliver().
 *
 * Group shape, the same for every system: `members` connections in all;
 * member 0 publishes, members 1..members-1 receive (herald: the sender is a
 * member of the conversation and its own echo is not counted; peers: one
 * publisher connection plus members-1 subscriber connections). So
 * expected = sent × (members − 1) everywhere.
 *
 * Threads: the core and every driver callback run on the loop thread
 * (cfg->loop). A driver whose library delivers on its own threads (libnats)
 * may call bench_deliver() from any thread: recording takes a mutex. Every
 * other bench_* call is loop-thread only.
 */
#ifndef HERALD_BENCH_H
#define HERALD_BENCH_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Body header written by the core: scheduled send time in ns (8, big endian)
 * then the message index (8, big endian). Bodies are at least this long. */
#define BENCH_BODY_HDR 16u
/* Message index of a readiness probe (see bench_subscribed()). */
#define BENCH_PROBE_IDX UINT64_MAX
/* Index passed to bench_error() for a reply not tied to a send. */
#define BENCH_NO_IDX (UINT64_MAX - 1)

/* What a run measures (bench_config.mode). */
typedef enum bench_mode {
    BENCH_FANOUT = 1,     /* fixed rate to a group: delivery latency to every member */
    BENCH_THROUGHPUT = 2, /* a window of sends in flight: acked sends/s */
    BENCH_FAILOVER = 3,   /* fixed rate with exactly-once retries: the longest gap
                             between consecutive acks, every send stored once */
    BENCH_CONNS = 4,      /* members idle authenticated connections, held open
                             for --duration s: the server's RSS before and after */
} bench_mode;

typedef struct bench bench;

/* What a run is asked to do; parsed by main.c, read-only for drivers. */
typedef struct bench_config {
    struct ev_loop *loop;   /* the one event loop */
    const char *system;     /* --system: driver name */
    const char *label;      /* --label: "system" in the JSON (default: driver name) */
    const char *scenario;   /* the name recorded in the JSON: fanout | throughput |
                               durable | failover | conns */
    int mode;               /* bench_mode of the scenario */
    bool need_cluster;      /* durable: the target must say "mode":"cluster" in STATUS */
    const char *kind;       /* --kind: herald conversation kind (NULL: by size) */
    const char *env;        /* --env FILE (herald) */
    bool ws;                /* --transport ws (herald): WebSocket to the env file's
                               HERALD_WS instead of TCP to HERALD_GATEWAY */
    char host[256];         /* --url HOST part (peers) */
    uint16_t port;          /* --url PORT part (peers) */
    char group[129];        /* group / conversation / topic name of this run
                               (--conv, else a random one) */
    int members;            /* connections in the group (1 sender + members-1 receivers) */
    double rate;            /* fanout: messages/s */
    uint32_t payload;       /* body bytes (≥ BENCH_BODY_HDR) */
    double duration;        /* seconds of sending */
    double drain;           /* seconds to wait for stragglers after the last send */
    uint32_t window;        /* throughput: requests in flight */
    double setup_timeout;   /* seconds allowed for set-up (and for verify) */
    double retry_after;     /* failover: seconds without an answer before a send is
                               sent again (same message id) */
    int rss_pid;            /* --rss-pid: the server process whose VmRSS is read
                               before set-up and at the end of the run (0: none) */
    const char *durability; /* --durability: "durability" in the JSON (NULL: the
                               driver's own statement) */
} bench_config;

/* One system under test. Every callback runs on the loop thread. */
typedef struct bench_driver {
    const char *name;       /* --system value */
    bool throughput;        /* supports the throughput scenario (acks) */
    bool conns;             /* supports the conns scenario: in BENCH_CONNS, set-up
                               only connects and authenticates every member and
                               calls bench_ready() once all of them are in */
    const char *durability; /* what an ack (or a delivery) means for the data: the
                               "durability" of the JSON, e.g. "memory only" */
    /* May be NULL: the durability once connected, when it depends on the
     * target (herald: dev or cluster); NULL return: the static one. */
    const char *(*durability_of)(void *drv);
    /* Starts connecting cfg->members connections and subscribing the
     * receivers; returns 0 and the driver state in *out, or -1 (message on
     * stderr). Later, on the loop thread, the driver calls bench_ready() or
     * bench_subscribed() exactly once. */
    int (*setup)(bench *b, const bench_config *cfg, void **out);
    /* Sends one body (owned by the caller, valid for the call only) from
     * member 0. idx is the message index (herald uses it as request id - 1).
     * Returns 0, or -1 when the message could not even be queued (counted as
     * a send error; the run goes on). */
    int (*publish)(void *drv, const uint8_t *body, size_t len, uint64_t idx);
    /* Failover (NULL when the system has no exactly-once sends): sends body
     * from member 0 with a client message id derived from the group and idx
     * only, the same for every attempt, so that retries are stored at most
     * once. The answer comes back as bench_ack() / bench_error() with idx and
     * attempt. Returns as publish. */
    int (*publish_once)(void *drv, const uint8_t *body, size_t len, uint64_t idx,
                        uint32_t attempt);
    /* Failover (may be NULL): reads back everything the system stored for the
     * group, calls bench_stored() per message, then bench_verified() once. */
    void (*verify)(void *drv);
    /* Writes a one-line set-up progress note (for the set-up deadline). */
    void (*status)(void *drv, char *buf, size_t size);
    /* May be NULL: writes system-specific JSON members into buf, each one
     * starting with ',' (e.g. ,"target":"cluster"). Called before close. */
    void (*report)(void *drv, char *buf, size_t size);
    /* Disconnects everything and frees drv; no bench_deliver() call may
     * happen after it returns. NULL-safe. */
    void (*close)(void *drv);
} bench_driver;

/* Every member is connected and subscribed (the driver saw the system
 * confirm it): sending starts now. */
void bench_ready(bench *b);

/* Subscriptions were sent but the system does not confirm them on this path:
 * the core publishes readiness probes (index BENCH_PROBE_IDX) every 20 ms
 * until every receiver has seen one, then starts sending. */
void bench_subscribed(bench *b);

/* A receiver got a body. member in 1..members-1; body/len as received (not
 * kept after the call). Thread-safe. Bodies that are not ours are ignored. */
void bench_deliver(bench *b, int member, const void *body, size_t len);

/* Acknowledgement of attempt `attempt` (0 = the first send; more only in
 * failover) of the send with index idx: the message is stored with seq;
 * dup: the system had seen its message id before (nothing new stored). */
void bench_ack(bench *b, uint64_t idx, uint32_t attempt, uint64_t seq, bool dup);

/* An error reply to attempt `attempt` of the send with index idx, or to
 * another request (idx = BENCH_NO_IDX); returns true while set-up is still
 * running (the caller treats that as fatal). In failover the send is retried
 * after a short backoff. */
bool bench_error(bench *b, uint64_t idx, uint32_t attempt);

/* Verify: one stored message of the group (body as sent). */
void bench_stored(bench *b, const void *body, size_t len);

/* Verify is over: complete = every stored message was read back. */
void bench_verified(bench *b, bool complete);

/* Number of error replies so far. */
uint64_t bench_errors(const bench *b);

/* Fatal: prints "herald-bench: what" and exits 1. */
void bench_die(const char *what) __attribute__((noreturn));

/* CLOCK_MONOTONIC in ns. */
uint64_t bench_now_ns(void);

/* Runs one benchmark with drv and prints the JSON object on stdout; returns
 * the process exit code (0 ok, 1 nothing was sent). */
int bench_run(const bench_config *cfg, const bench_driver *drv);

/* The compiled-in drivers (NULL-terminated) and a lookup by name. */
extern const bench_driver *const bench_drivers[];
const bench_driver *bench_driver_find(const char *name);

#endif
