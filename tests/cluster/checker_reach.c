/*
 * checker_reach.c — `herald-checker reach`: every stored message reaches
 * every online member promptly, with no further traffic.
 *
 *   herald-checker reach --users N --groups G --singles S --rate R --secs T
 *                        [--senders K] [--bound-ms B] [--env FILE]
 *
 * N receivers (rc-RUN-uJ), each holding one connection, served by poll
 * threads of 4 receivers each. K sender accounts (rc-RUN-sK), one connection each, create
 * G groups (the sender + 5 random receivers) and S one-to-one
 * conversations (the sender + 1 receiver), spread over the first 3 s,
 * while the receivers connect over the same 3 s and messages already flow
 * to the conversations that exist: R messages/s in all for T s. Halfway, a
 * quarter of the receivers save their sync key, close and reconnect with
 * it (--wave W: W quarters, default 1; --offline-ms: away that long first,
 * so the reconnect SYNC has something to fetch while pushes arrive). Then
 * silence: no more sends, only the receivers keep reading for 3 s.
 *
 * Judged per receiver and conversation: messages arrive in seq order with
 * no duplicate and no hole (the first one seen may be any seq: a receiver
 * that connected after it was sent starts at its WELCOME position), and
 * every message acked after the receiver's first connect completed is
 * there. A message acked while the receiver was online must arrive within
 * B ms (default 1000) of its ack; those acked while it was reconnecting
 * come with its SYNC. Prints
 *   "U users, C conversations over G groups, M messages acked,
 *    E deliveries expected, L lost, X duplicated, O out of order,
 *    late L2 (> B ms), max delivery latency D ms, p99 P ms"
 * and the libherald counters (gaps, SYNC retries, unfilled gaps); exits 0
 * only when nothing is lost, duplicated, out of order or late.
 */
#include "checker.h"

#include <poll.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RC_USERS_MAX 5000u
#define RC_CONVS_MAX 5000u
#define RC_SENDERS_MAX 32u
#define RC_GROUP_RECEIVERS 5u
#define RC_SEQ_MAX 4096u        /* messages per conversation the judge keeps */
#define RC_SETUP_MS 3000u       /* creations and first connects spread over this */
#define RC_SILENCE_MS 3000u     /* reading after the last send */
#define RC_POLL_USERS 4u       /* receivers per poll thread (a connect blocks its thread) */
#define RC_POLL_THREADS_MAX 1024u

static const char usage[] =
    "usage: herald-checker reach --users N --groups G --singles S --rate R --secs T\n"
    "                            [--senders K] [--bound-ms B] [--wave W] [--offline-ms O]\n"
    "                            [--env FILE]\n";

typedef struct rc_conv {
    char id[64];
    uint32_t sender;            /* sender index */
    uint32_t n_members;         /* receivers */
    uint32_t members[RC_GROUP_RECEIVERS];
    uint32_t group;             /* shard group (from the create answer) */
    _Atomic uint64_t created_ms;/* 0 until created */
    uint64_t *ack_ms;           /* [seq]: when SEND was acked (0 not acked) */
    uint64_t *sent_ms;          /* [seq]: when that SEND was first sent */
    _Atomic uint64_t last_seq;  /* highest acked seq */
} rc_conv;

typedef struct rc_member {      /* a receiver's view of one conversation */
    uint32_t conv;
    uint64_t *recv_ms;          /* [seq]: first arrival */
    uint64_t last;              /* last seq taken */
    uint64_t dups, reord;
} rc_member;

typedef struct rc_user {
    char id[64];
    herald_client *c;
    uint64_t connect_at;        /* scheduled first connect (ms from start) */
    uint64_t online_ms;         /* first connect completed (absolute) */
    uint64_t reconnect_at;      /* scheduled reconnect (ms from start; 0 none) */
    uint64_t off_from, off_to;  /* offline during the reconnect (absolute) */
    herald_buf key;             /* its sync key while away */
    uint32_t n_mem, cap_mem;
    rc_member *mem;
    herald_client_stats st;     /* counters summed over its connections */
    int failed;                 /* a connection error that ended it */
} rc_user;

typedef struct rc_run {
    ck_env env;
    char run[32];
    uint32_t n_users, n_groups, n_singles, n_convs, n_senders;
    uint64_t rate, secs, bound_ms;
    uint64_t wave;              /* quarters of the receivers that reconnect halfway */
    uint64_t offline_ms;        /* how long they stay away before reconnecting */
    uint64_t start;             /* absolute ms */
    _Atomic uint64_t send_end;  /* absolute ms: when sending stopped */
    rc_user *users;
    rc_conv *convs;
    _Atomic int stop_send;
    int setup_failed;
} rc_run;

static uint64_t rnd_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 7;
    rnd_state ^= rnd_state << 17;
    return rnd_state;
}

static rc_member *member_of(rc_user *u, uint32_t conv)
{
    for (uint32_t i = 0; i < u->n_mem; i++)
        if (u->mem[i].conv == conv)
            return &u->mem[i];
    return NULL;
}

static int add_member(rc_run *r, uint32_t user, uint32_t conv)
{
    rc_user *u = &r->users[user];
    if (member_of(u, conv))
        return 1; /* already in it */
    if (u->n_mem == u->cap_mem) {
        uint32_t cap = u->cap_mem ? 2 * u->cap_mem : 4;
        rc_member *v = realloc(u->mem, cap * sizeof *v);
        if (!v)
            return -1;
        u->mem = v;
        u->cap_mem = cap;
    }
    u->mem[u->n_mem] = (rc_member){.conv = conv, .recv_ms = calloc(RC_SEQ_MAX + 1, 8)};
    if (!u->mem[u->n_mem].recv_ms)
        return -1;
    u->n_mem++;
    return 0;
}

/* The conversation index encoded in an id "rc-RUN-cI", or -1. */
static int conv_index(const rc_run *r, herald_str id)
{
    size_t pl = strlen(r->run) + 5;
    char buf[16];
    long v;
    char *end;
    if (id.len <= pl || id.len - pl >= sizeof buf || memcmp(id.ptr, "rc-", 3) != 0 ||
        memcmp(id.ptr + 3, r->run, strlen(r->run)) != 0)
        return -1;
    memcpy(buf, id.ptr + pl, id.len - pl);
    buf[id.len - pl] = '\0';
    v = strtol(buf, &end, 10);
    return *end || v < 0 || v >= (long)r->n_convs ? -1 : (int)v;
}

/* ---- receivers -------------------------------------------------------------- */

static void take_event(rc_run *r, rc_user *u, const herald_event *ev)
{
    rc_member *m;
    int ci;
    uint64_t seq;
    if (ev->type == HERALD_EV_GAP) {
        fprintf(stderr, "reach: %s: gap still open (group %u, up to %llu)\n", u->id, ev->group,
                (unsigned long long)ev->seq);
        return;
    }
    if (ev->type != HERALD_EV_MSG || (ci = conv_index(r, ev->msg.conv)) < 0 ||
        !(m = member_of(u, (uint32_t)ci)))
        return;
    seq = ev->msg.seq;
    if (m->last && seq <= m->last) {
        m->dups++;
        return;
    }
    if (m->last && seq != m->last + 1)
        m->reord++;
    m->last = seq;
    if (seq <= RC_SEQ_MAX && !m->recv_ms[seq])
        m->recv_ms[seq] = ck_now_ms();
}

static void add_stats(rc_user *u)
{
    herald_client_stats s;
    herald_client_stats_get(u->c, &s);
    u->st.gaps += s.gaps;
    u->st.syncs += s.syncs;
    u->st.sync_retries += s.sync_retries;
    u->st.gaps_unfilled += s.gaps_unfilled;
}

static void user_connect(rc_run *r, rc_user *u, const herald_buf *key)
{
    char err[512];
    uint64_t backoff = 0, until = ck_now_ms() + 20000;
    int rc;
    do {
        rc = ck_connect_key(&r->env, u->id, key ? key->data : NULL, key ? key->len : 0, &u->c,
                            err, sizeof err);
        if (rc == 0)
            return;
        ck_sleep_ms(ck_backoff_next(&backoff));
    } while (ck_now_ms() < until);
    fprintf(stderr, "reach: %s\n", err);
    u->failed = rc;
}

typedef struct rc_poller {
    rc_run *r;
    uint32_t from, to;          /* users [from, to) */
    pthread_t tid;
} rc_poller;

static void *poller_main(void *arg)
{
    rc_poller *p = arg;
    rc_run *r = p->r;
    uint32_t n = p->to - p->from;
    struct pollfd *pf = calloc(n, sizeof *pf);
    uint64_t end;

    if (!pf)
        return NULL;
    while (ck_now_ms() < r->start) /* the schedule counts from the start */
        ck_sleep_ms(r->start - ck_now_ms());
    for (;;) {
        uint64_t now = ck_now_ms(), rel = now - r->start;
        end = atomic_load(&r->send_end) + RC_SILENCE_MS;
        if (atomic_load(&r->stop_send) && now >= end)
            break;
        for (uint32_t i = 0; i < n; i++) {
            rc_user *u = &r->users[p->from + i];
            if (u->failed) {
                pf[i].fd = -1;
                continue;
            }
            if (!u->c && !u->online_ms && rel >= u->connect_at) {
                user_connect(r, u, NULL);
                if (u->c)
                    u->online_ms = ck_now_ms();
            } else if (u->c && u->reconnect_at && !u->off_from && rel >= u->reconnect_at) {
                /* Away: the key covers what was handed out. */
                if (herald_client_sync_key(u->c, &u->key) != 0) {
                    u->failed = HERALD_ENOMEM;
                } else {
                    add_stats(u);
                    herald_client_close(u->c);
                    u->c = NULL;
                    u->off_from = ck_now_ms();
                }
            } else if (!u->c && u->off_from && !u->off_to &&
                       now >= u->off_from + r->offline_ms) {
                user_connect(r, u, &u->key);
                u->off_to = ck_now_ms();
                herald_buf_free(&u->key);
            }
            pf[i].fd = u->c ? herald_client_fd(u->c) : -1;
            pf[i].events = POLLIN;
        }
        poll(pf, n, 10);
        /* Everyone, readable or not: next_event also runs heartbeats and
         * the SYNC retries of open gaps. */
        for (uint32_t i = 0; i < n; i++) {
            rc_user *u = &r->users[p->from + i];
            for (int k = 0; u->c && !u->failed && k < 256; k++) {
                herald_event *ev = NULL;
                int rc = herald_client_next_event(u->c, 0, &ev);
                if (rc == HERALD_ETIMEOUT)
                    break;
                if (rc) {
                    fprintf(stderr, "reach: receiver %s: %s\n", u->id, herald_err_name(rc));
                    u->failed = rc;
                    break;
                }
                take_event(r, u, ev);
                herald_event_free(ev);
            }
        }
    }
    free(pf);
    return NULL;
}

/* ---- senders ---------------------------------------------------------------- */

typedef struct rc_sender {
    rc_run *r;
    uint32_t idx;
    pthread_t tid;
    uint64_t acked, failed;
} rc_sender;

static int create_conv(rc_run *r, herald_client *c, uint32_t ci)
{
    rc_conv *cv = &r->convs[ci];
    const char *mv[RC_GROUP_RECEIVERS + 1];
    herald_conv_info info;
    int rc;
    /* The sender creates it and joins it as its owner. */
    for (uint32_t k = 0; k < cv->n_members; k++)
        mv[k] = r->users[cv->members[k]].id;
    mv[cv->n_members] = NULL;
    rc = herald_client_conv_create(c, cv->n_members == 1 ? "single" : "group", cv->id, mv,
                                   cv->n_members, &info);
    if (rc == HERALD_EEXISTS)
        rc = herald_client_conv_info(c, cv->id, &info);
    if (rc)
        return rc;
    cv->group = info.group;
    herald_conv_info_free(&info);
    atomic_store(&cv->created_ms, ck_now_ms());
    return 0;
}

static void *sender_main(void *arg)
{
    rc_sender *s = arg;
    rc_run *r = s->r;
    char user[64], cmid[96], body[128];
    herald_client *c = NULL;
    uint32_t mine[RC_CONVS_MAX], n_mine = 0, created = 0, next = 0;
    uint64_t per_thread = r->rate / r->n_senders ? r->rate / r->n_senders : 1;
    uint64_t gap_ms = 1000 / per_thread ? 1000 / per_thread : 1, due;
    uint64_t sent = 0;

    snprintf(user, sizeof user, "rc-%s-s%u", r->run, s->idx);
    for (uint32_t i = 0; i < r->n_convs; i++)
        if (r->convs[i].sender == s->idx)
            mine[n_mine++] = i;
    if (ck_connect_retry(&r->env, user, ck_now_ms() + 30000, "reach", &c) != 0) {
        r->setup_failed = 1;
        return NULL;
    }
    due = r->start;
    while (!atomic_load(&r->stop_send)) {
        uint64_t now = ck_now_ms();
        int rc;
        /* Creations spread over the set-up window, sends meanwhile. */
        while (created < n_mine && now >= r->start + (uint64_t)RC_SETUP_MS * created / n_mine) {
            rc = create_conv(r, c, mine[created]);
            if (rc) {
                fprintf(stderr, "reach: creating %s: %s\n", r->convs[mine[created]].id,
                        herald_err_name(rc));
                r->setup_failed = 1;
                atomic_store(&r->stop_send, 1);
                break;
            }
            created++;
        }
        if (now < due) {
            ck_drain_events(c, 256);
            ck_sleep_ms(due - now < 5 ? due - now : 5);
            continue;
        }
        due += gap_ms;
        if (!created)
            continue;
        {
            rc_conv *cv = &r->convs[mine[next++ % created]];
            herald_ack ack;
            uint64_t t_send;
            snprintf(cmid, sizeof cmid, "%s-%llu", cv->id, (unsigned long long)sent++);
            snprintf(body, sizeof body, "reach %s", cmid);
            t_send = ck_now_ms();
            for (uint64_t backoff = 0;;) {
                rc = herald_client_send(c, cv->id, cmid, body, strlen(body), 0, &ack);
                if (rc == 0 || !ck_retryable(rc) || atomic_load(&r->stop_send))
                    break;
                if (herald_client_fd(c) < 0) {
                    herald_client_close(c);
                    c = NULL;
                    if (ck_connect_retry(&r->env, user, ck_now_ms() + 10000, "reach", &c))
                        break;
                }
                ck_sleep_ms(ck_backoff_next(&backoff));
            }
            if (rc == 0 && ack.seq <= RC_SEQ_MAX) {
                if (!cv->ack_ms[ack.seq]) {
                    cv->ack_ms[ack.seq] = ck_now_ms();
                    cv->sent_ms[ack.seq] = t_send;
                }
                if (ack.seq > atomic_load(&cv->last_seq))
                    atomic_store(&cv->last_seq, ack.seq);
                s->acked++;
            } else {
                fprintf(stderr, "reach: send to %s: %s\n", cv->id, herald_err_name(rc));
                s->failed++;
            }
        }
        ck_drain_events(c, 256);
    }
    herald_client_close(c);
    return NULL;
}

/* ---- the run ---------------------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static int setup(rc_run *r)
{
    r->users = calloc(r->n_users, sizeof *r->users);
    r->convs = calloc(r->n_convs, sizeof *r->convs);
    if (!r->users || !r->convs)
        return -1;
    for (uint32_t j = 0; j < r->n_users; j++) {
        rc_user *u = &r->users[j];
        snprintf(u->id, sizeof u->id, "rc-%s-u%u", r->run, j);
        u->connect_at = rnd() % RC_SETUP_MS;
        if (j % 4 < r->wave) /* the reconnect wave: spread over 1 s halfway */
            u->reconnect_at = RC_SETUP_MS + (r->secs * 1000 - RC_SETUP_MS) / 2 + rnd() % 1000;
    }
    for (uint32_t i = 0; i < r->n_convs; i++) {
        rc_conv *cv = &r->convs[i];
        bool single = i >= r->n_groups;
        snprintf(cv->id, sizeof cv->id, "rc-%s-c%u", r->run, i);
        cv->sender = i % r->n_senders;
        cv->ack_ms = calloc(RC_SEQ_MAX + 1, sizeof *cv->ack_ms);
        cv->sent_ms = calloc(RC_SEQ_MAX + 1, sizeof *cv->sent_ms);
        if (!cv->ack_ms || !cv->sent_ms)
            return -1;
        while (cv->n_members < (single ? 1u : RC_GROUP_RECEIVERS)) {
            uint32_t j = (uint32_t)(rnd() % r->n_users);
            int rc = add_member(r, j, i);
            if (rc < 0)
                return -1;
            if (rc == 0)
                cv->members[cv->n_members++] = j;
        }
    }
    return 0;
}

static int judge(rc_run *r)
{
    uint64_t expected = 0, lost = 0, dups = 0, reord = 0, late = 0, acked = 0, maxlat = 0;
    uint64_t *lat = NULL, nlat = 0, lat_cap = 0, gaps = 0, retries = 0, unfilled = 0, syncs = 0;
    uint64_t groups_seen = 0;
    int failed_users = 0;

    for (uint32_t i = 0; i < r->n_convs; i++)
        if (atomic_load(&r->convs[i].created_ms) && r->convs[i].group < 64)
            groups_seen |= 1ull << r->convs[i].group;
    for (uint32_t i = 0; i < r->n_convs; i++)
        for (uint64_t q = 1; q <= RC_SEQ_MAX; q++)
            acked += r->convs[i].ack_ms[q] != 0;
    for (uint32_t j = 0; j < r->n_users; j++) {
        rc_user *u = &r->users[j];
        if (u->c)
            add_stats(u);
        gaps += u->st.gaps;
        retries += u->st.sync_retries;
        unfilled += u->st.gaps_unfilled;
        syncs += u->st.syncs;
        if (u->failed || !u->online_ms) {
            failed_users++;
            continue;
        }
        for (uint32_t k = 0; k < u->n_mem; k++) {
            rc_member *m = &u->mem[k];
            rc_conv *cv = &r->convs[m->conv];
            dups += m->dups;
            reord += m->reord;
            for (uint64_t q = 1; q <= RC_SEQ_MAX; q++) {
                uint64_t a = cv->ack_ms[q], got = m->recv_ms[q];
                bool offline;
                /* Sent before the receiver first came online: it may be in
                 * the position its WELCOME started from (history, not
                 * pushed) — a replica can apply it before the sender's ack
                 * is back — or come after it. */
                if (!a || cv->sent_ms[q] <= u->online_ms)
                    continue;
                expected++;
                if (!got) {
                    lost++;
                    if (lost <= 10)
                        fprintf(stderr, "reach: %s never got %s seq %llu (acked at +%llu ms)\n",
                                u->id, cv->id, (unsigned long long)q,
                                (unsigned long long)(a - r->start));
                    continue;
                }
                /* Excused: it reached the user only after an outage that
                 * began before it was due (acked while away, or acked less
                 * than the bound before leaving and not yet pushed). */
                offline = u->off_from && got >= u->off_from && a <= u->off_to &&
                          (a >= u->off_from || u->off_from - a <= r->bound_ms);
                if (offline)
                    continue;
                {
                    uint64_t d = got > a ? got - a : 0;
                    if (d > maxlat)
                        maxlat = d;
                    if (d > r->bound_ms) {
                        late++;
                        if (late <= 10)
                            fprintf(stderr, "reach: %s got %s seq %llu %llu ms after its ack\n",
                                    u->id, cv->id, (unsigned long long)q,
                                    (unsigned long long)d);
                    }
                    if (nlat == lat_cap) {
                        uint64_t *v = realloc(lat, (lat_cap = lat_cap ? 2 * lat_cap : 4096) * 8);
                        if (!v)
                            return 2;
                        lat = v;
                    }
                    lat[nlat++] = d;
                }
            }
        }
    }
    qsort(lat, nlat, sizeof *lat, cmp_u64);
    printf("%u users, %u conversations over %d groups, %llu messages acked, %llu deliveries "
           "expected, %llu lost, %llu duplicated, %llu out of order, %llu late (> %llu ms), "
           "max delivery latency %llu ms, p99 %llu ms\n",
           r->n_users, r->n_convs, __builtin_popcountll(groups_seen), (unsigned long long)acked,
           (unsigned long long)expected, (unsigned long long)lost, (unsigned long long)dups,
           (unsigned long long)reord, (unsigned long long)late, (unsigned long long)r->bound_ms,
           (unsigned long long)maxlat,
           (unsigned long long)(nlat ? lat[(nlat * 99) / 100] : 0));
    printf("libherald: %llu gaps, %llu SYNC pages, %llu SYNC retries, %llu gaps open past the "
           "timeout; %d receivers failed\n",
           (unsigned long long)gaps, (unsigned long long)syncs, (unsigned long long)retries,
           (unsigned long long)unfilled, failed_users);
    free(lat);
    return lost || dups || reord || late || failed_users || !acked || r->setup_failed ? 1 : 0;
}

int ck_reach_main(int argc, char **argv)
{
    const char *users = NULL, *groups = NULL, *singles = NULL, *rate = NULL, *secs = NULL,
               *senders = "8", *bound = "1000", *env = NULL, *wave = "1", *offline = "0";
    ck_opt opts[] = {{"--users", &users},     {"--groups", &groups}, {"--singles", &singles},
                     {"--rate", &rate},       {"--secs", &secs},     {"--senders", &senders},
                     {"--bound-ms", &bound},  {"--env", &env},       {"--wave", &wave},
                     {"--offline-ms", &offline}, {NULL, NULL}};
    rc_run *r = calloc(1, sizeof *r);
    rc_sender snd[RC_SENDERS_MAX];
    rc_poller pol[RC_POLL_THREADS_MAX];
    uint32_t npol;
    uint64_t v;
    char err[512];
    int rc = 2;

    if (!r)
        return 2;
    if (ck_parse_opts(argc, argv, opts, usage) || !users || !groups || !singles || !rate ||
        !secs) {
        if (!users || !groups || !singles || !rate || !secs)
            fputs(usage, stderr);
        goto out;
    }
    if (ck_parse_num("--users", users, 2, RC_USERS_MAX, &v))
        goto out;
    r->n_users = (uint32_t)v;
    if (ck_parse_num("--groups", groups, 0, RC_CONVS_MAX, &v))
        goto out;
    r->n_groups = (uint32_t)v;
    if (ck_parse_num("--singles", singles, 0, RC_CONVS_MAX, &v))
        goto out;
    r->n_singles = (uint32_t)v;
    r->n_convs = r->n_groups + r->n_singles;
    if (r->n_convs == 0 || r->n_convs > RC_CONVS_MAX || r->n_users < RC_GROUP_RECEIVERS) {
        fprintf(stderr, "reach: 1..%u conversations and at least %u users\n", RC_CONVS_MAX,
                RC_GROUP_RECEIVERS);
        goto out;
    }
    if (ck_parse_num("--rate", rate, 1, 100000, &r->rate) ||
        ck_parse_num("--secs", secs, 4, 3600, &r->secs) ||
        ck_parse_num("--senders", senders, 1, RC_SENDERS_MAX, &v) ||
        ck_parse_num("--bound-ms", bound, 1, 600000, &r->bound_ms) ||
        ck_parse_num("--wave", wave, 0, 4, &r->wave) ||
        ck_parse_num("--offline-ms", offline, 0, 60000, &r->offline_ms))
        goto out;
    r->n_senders = (uint32_t)v;
    if (r->rate * r->secs / r->n_convs >= RC_SEQ_MAX) {
        fprintf(stderr, "reach: at most %u messages per conversation\n", RC_SEQ_MAX - 1);
        goto out;
    }
    r->env.timeout_ms = 10000;
    if (env)
        snprintf(r->env.file, sizeof r->env.file, "%s", env);
    if (ck_env_load(&r->env, err, sizeof err) != 0) {
        fprintf(stderr, "reach: %s\n", err);
        goto out;
    }
    rnd_state ^= (uint64_t)time(NULL) * 0x9e3779b97f4a7c15ull;
    snprintf(r->run, sizeof r->run, "%llx", (unsigned long long)(rnd() & 0xffffffffu));
    if (setup(r) != 0) {
        fprintf(stderr, "reach: out of memory\n");
        goto out;
    }
    r->start = ck_now_ms() + 500;
    atomic_store(&r->send_end, r->start + r->secs * 1000);
    npol = (r->n_users + RC_POLL_USERS - 1) / RC_POLL_USERS;
    if (npol > RC_POLL_THREADS_MAX)
        npol = RC_POLL_THREADS_MAX;
    for (uint32_t t = 0; t < npol; t++) {
        pol[t] = (rc_poller){.r = r, .from = r->n_users * t / npol,
                             .to = r->n_users * (t + 1) / npol};
        pthread_create(&pol[t].tid, NULL, poller_main, &pol[t]);
    }
    for (uint32_t k = 0; k < r->n_senders; k++) {
        snd[k] = (rc_sender){.r = r, .idx = k};
        pthread_create(&snd[k].tid, NULL, sender_main, &snd[k]);
    }
    while (ck_now_ms() < atomic_load(&r->send_end) && !atomic_load(&r->stop_send))
        ck_sleep_ms(50);
    atomic_store(&r->send_end, ck_now_ms());
    atomic_store(&r->stop_send, 1);
    for (uint32_t k = 0; k < r->n_senders; k++)
        pthread_join(snd[k].tid, NULL);
    for (uint32_t t = 0; t < npol; t++)
        pthread_join(pol[t].tid, NULL);
    rc = judge(r);
out:
    if (r->users) {
        for (uint32_t j = 0; j < r->n_users; j++) {
            herald_client_close(r->users[j].c);
            herald_buf_free(&r->users[j].key);
            for (uint32_t k = 0; k < r->users[j].n_mem; k++)
                free(r->users[j].mem[k].recv_ms);
            free(r->users[j].mem);
        }
    }
    if (r->convs)
        for (uint32_t i = 0; i < r->n_convs; i++) {
            free(r->convs[i].ack_ms);
            free(r->convs[i].sent_ms);
        }
    free(r->users);
    free(r->convs);
    free(r);
    return rc;
}
