/*
 * checker_verify.c — `herald-checker verify --log FILE`: reads every
 * conversation named in the ack log back through HISTORY (as the run's
 * reader, a member of each) and checks, per conversation:
 *
 *   lost        an acknowledged cmid is absent, or present at a seq other
 *               than the acknowledged one
 *   duplicated  a cmid (acknowledged or not) is stored more than once; or
 *               the log acknowledged one cmid at two different seqs
 *   gaps        the seqs are not exactly 1..max (every stored message counts,
 *               system messages such as "create" included); max is the
 *               conversation's max_seq from CONV info. Each missing range,
 *               and each out-of-order seq, is one gap.
 *
 * and prints exactly "N acked, L lost, D duplicated, G gaps" on stdout (N =
 * distinct acknowledged cmids), details on stderr. Exit 0 only when
 * L = D = G = 0; 1 when the check failed; 2 when it could not be carried out
 * (unreadable log, broker unreachable past the deadline).
 *
 * A conversation that fails is read again up to --settle times, 2 s apart
 * (a gateway may answer a read from a replica that has not applied the
 * latest entries yet); a result that changed is reported on stderr, and the
 * last reading is the one judged.
 */
#include "checker.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define V_PAGE 1000u              /* history page (the server's maximum) */
#define V_DETAILS_MAX 20u         /* detail lines per kind of finding */
#define V_SETTLE_PAUSE_MS 2000u   /* between two readings of a failing conversation */
#define V_LINE_MAX 1024           /* longest log line */

static const char usage[] =
    "usage: herald-checker verify --log FILE [--settle N (3)] [--deadline S (300)]\n"
    "         [--timeout-ms MS (10000)] [--env FILE]\n";

/* One logged SEND outcome, or one stored message. */
typedef struct v_rec {
    uint32_t conv;  /* index into v_log.convs */
    uint64_t seq;   /* acked / stored seq (0 for unacked) */
    char *cmid;     /* owned */
} v_rec;

typedef struct v_log {
    char reader[CK_ID_MAX + 1]; /* user to read as */
    char **convs;               /* conversation ids, owned */
    uint32_t n_convs;
    v_rec *acks;                /* acknowledged sends */
    size_t n_acks, cap_acks;
    uint64_t unacked;           /* unacked + failed records */
} v_log;

/* Findings of one reading of one conversation. */
typedef struct v_result {
    uint64_t lost, dups, gaps;
    uint64_t stored;            /* messages read */
    uint64_t foreign;           /* text messages whose body is no cmid of this run */
} v_result;

/* Verbosity budget for details, shared by all conversations. */
typedef struct v_details {
    unsigned lost, dups, gaps;
    bool quiet;                 /* a reading that may be retried: no details */
} v_details;

static int rec_push(v_rec **v, size_t *n, size_t *cap, uint32_t conv, uint64_t seq,
                    const char *cmid, size_t len)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 1024;
        v_rec *nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[*n].conv = conv;
    (*v)[*n].seq = seq;
    (*v)[*n].cmid = strndup(cmid, len);
    if (!(*v)[*n].cmid)
        return -1;
    (*n)++;
    return 0;
}

static void recs_free(v_rec *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i].cmid);
    free(v);
}

/* By conversation, then cmid, then seq. */
static int rec_cmp(const void *a, const void *b)
{
    const v_rec *x = a, *y = b;
    int c;
    if (x->conv != y->conv)
        return x->conv < y->conv ? -1 : 1;
    c = strcmp(x->cmid, y->cmid);
    if (c)
        return c;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int conv_index(const v_log *l, const char *id)
{
    for (uint32_t i = 0; i < l->n_convs; i++)
        if (strcmp(l->convs[i], id) == 0)
            return (int)i;
    return -1;
}

/* Parses the log. 0, or 2 (printed). */
static int load_log(const char *path, v_log *l)
{
    char line[V_LINE_MAX + 2];
    unsigned long lineno = 0;
    FILE *f = fopen(path, "r");
    int rc = 2;

    if (!f) {
        perror(path);
        return 2;
    }
    while (fgets(line, sizeof line, f)) {
        char a[V_LINE_MAX + 1], b[V_LINE_MAX + 1], c[V_LINE_MAX + 1];
        unsigned long long seq;
        int ci;
        lineno++;
        if (!strchr(line, '\n')) {
            /* The writer died mid-line: only the last line may be torn. */
            if (fgetc(f) == EOF) {
                fprintf(stderr, "verify: %s:%lu: torn last line ignored\n", path, lineno);
                break;
            }
            fprintf(stderr, "verify: %s:%lu: line too long\n", path, lineno);
            goto out;
        }
        if (sscanf(line, "run %1024s", a) == 1) {
            continue;
        } else if (sscanf(line, "reader %1024s", a) == 1) {
            if (strlen(a) > CK_ID_MAX) {
                fprintf(stderr, "verify: %s:%lu: reader id too long\n", path, lineno);
                goto out;
            }
            memcpy(l->reader, a, strlen(a) + 1);
        } else if (sscanf(line, "conv %1024s", a) == 1) {
            char **nv;
            if (conv_index(l, a) >= 0)
                continue;
            nv = realloc(l->convs, (l->n_convs + 1) * sizeof *nv);
            if (!nv || !(nv[l->n_convs] = strdup(a))) {
                if (nv)
                    l->convs = nv;
                fprintf(stderr, "verify: out of memory\n");
                goto out;
            }
            l->convs = nv;
            l->n_convs++;
        } else if (sscanf(line, "ack %1024s %llu %1024s", a, &seq, c) == 3) {
            ci = conv_index(l, a);
            if (ci < 0 || seq == 0) {
                fprintf(stderr, "verify: %s:%lu: ack for an unknown conversation or seq 0\n",
                        path, lineno);
                goto out;
            }
            if (rec_push(&l->acks, &l->n_acks, &l->cap_acks, (uint32_t)ci, seq, c,
                         strlen(c)) != 0) {
                fprintf(stderr, "verify: out of memory\n");
                goto out;
            }
        } else if (sscanf(line, "unacked %1024s %1024s", a, b) == 2 ||
                   sscanf(line, "failed %1024s %1024s %1024s", a, b, c) == 3) {
            l->unacked++;
        } else if (line[0] != '\n') {
            fprintf(stderr, "verify: %s:%lu: unknown record: %s", path, lineno, line);
            goto out;
        }
    }
    if (ferror(f)) {
        perror(path);
        goto out;
    }
    if (!l->reader[0] || l->n_convs == 0) {
        fprintf(stderr, "verify: %s names no reader or no conversation: not a checker log\n",
                path);
        goto out;
    }
    qsort(l->acks, l->n_acks, sizeof *l->acks, rec_cmp);
    rc = 0;
out:
    fclose(f);
    return rc;
}

/* Reads conversation ci completely: its stored text messages go to *seen
 * (sorted), the seq checks are done on the way. 0, or a herald_err (the
 * connection may be broken). */
static int read_conv(herald_client *c, const v_log *l, uint32_t ci, uint64_t deadline,
                     v_rec **seen, size_t *n_seen, v_result *res, v_details *d)
{
    const char *conv = l->convs[ci];
    herald_conv_info info = {0};
    uint64_t expect = 1, max_seq, pages = 0;
    size_t cap = 0;
    int rc;

    *seen = NULL;
    *n_seen = 0;
    rc = herald_client_conv_info(c, conv, &info);
    if (rc == HERALD_ENOT_FOUND || rc == HERALD_ENOT_MEMBER) {
        /* Its creation was acknowledged: the whole conversation is missing. */
        res->gaps++;
        if (!d->quiet && d->gaps++ < V_DETAILS_MAX)
            fprintf(stderr, "verify: gap: %s: conversation missing (%s)\n", conv,
                    herald_err_name(rc));
        return 0;
    }
    if (rc)
        return rc;
    max_seq = info.max_seq;
    herald_conv_info_free(&info);
    for (;;) {
        herald_msglist page = {0};
        if (ck_now_ms() >= deadline || pages++ > max_seq / V_PAGE + 1000)
            return HERALD_ETIMEOUT;
        rc = herald_client_history(c, conv, expect - 1, V_PAGE, &page);
        if (rc)
            return rc;
        for (uint32_t i = 0; i < page.n; i++) {
            const herald_msg *m = &page.v[i];
            if (m->seq != expect) {
                res->gaps++;
                if (!d->quiet && d->gaps++ < V_DETAILS_MAX)
                    fprintf(stderr, "verify: gap: %s: expected seq %" PRIu64 ", got %" PRIu64
                                    "\n", conv, expect, m->seq);
            }
            if (m->seq >= expect)
                expect = m->seq + 1;
            res->stored++;
            if (m->kind == HERALD_MK_SYSTEM)
                continue;
            if (m->body.len == 0 || m->body.len > CK_ID_MAX) {
                res->foreign++;
                continue;
            }
            if (rec_push(seen, n_seen, &cap, ci, m->seq, m->body.ptr, m->body.len) != 0) {
                herald_msglist_free(&page);
                return HERALD_ENOMEM;
            }
        }
        /* A page must make progress, else the loop would never end. */
        if (page.more && page.n == 0) {
            herald_msglist_free(&page);
            return HERALD_EPROTOCOL;
        }
        bool more = page.more;
        herald_msglist_free(&page);
        if (!more)
            break;
    }
    if (expect - 1 < max_seq) {
        res->gaps++;
        if (!d->quiet && d->gaps++ < V_DETAILS_MAX)
            fprintf(stderr, "verify: gap: %s: history ends at %" PRIu64 ", max_seq %" PRIu64
                            "\n", conv, expect - 1, max_seq);
    }
    qsort(*seen, *n_seen, sizeof **seen, rec_cmp);
    return 0;
}

/* Judges one reading of conversation ci against its acks. */
static void judge_conv(const v_log *l, uint32_t ci, const v_rec *seen, size_t n_seen,
                       v_result *res, v_details *d)
{
    const char *conv = l->convs[ci];
    size_t a = 0, s = 0;

    /* The conversation's slice of the (sorted) acks. */
    while (a < l->n_acks && l->acks[a].conv < ci)
        a++;
    /* Stored duplicates: equal neighbours. */
    for (size_t i = 1; i < n_seen; i++) {
        if (strcmp(seen[i].cmid, seen[i - 1].cmid) == 0) {
            res->dups++;
            if (!d->quiet && d->dups++ < V_DETAILS_MAX)
                fprintf(stderr, "verify: duplicated: %s: %s at seq %" PRIu64 " and %" PRIu64
                                "\n", conv, seen[i].cmid, seen[i - 1].seq, seen[i].seq);
        }
    }
    /* Merge: every ack must meet its stored message at the same seq. */
    for (; a < l->n_acks && l->acks[a].conv == ci; a++) {
        const v_rec *ack = &l->acks[a];
        int cmp = 1;
        if (a > 0 && l->acks[a - 1].conv == ci && strcmp(l->acks[a - 1].cmid, ack->cmid) == 0) {
            if (l->acks[a - 1].seq != ack->seq) {
                res->dups++;
                if (!d->quiet && d->dups++ < V_DETAILS_MAX)
                    fprintf(stderr, "verify: duplicated: %s: %s acked at seq %" PRIu64
                                    " and %" PRIu64 "\n",
                            conv, ack->cmid, l->acks[a - 1].seq, ack->seq);
            }
            continue;
        }
        while (s < n_seen && (cmp = strcmp(seen[s].cmid, ack->cmid)) < 0)
            s++;
        if (s < n_seen && cmp == 0) {
            bool at = false;
            for (size_t k = s; k < n_seen && strcmp(seen[k].cmid, ack->cmid) == 0; k++)
                at = at || seen[k].seq == ack->seq;
            if (at)
                continue;
            res->lost++;
            if (!d->quiet && d->lost++ < V_DETAILS_MAX)
                fprintf(stderr, "verify: lost: %s: %s acked at seq %" PRIu64
                                " but stored at seq %" PRIu64 "\n",
                        conv, ack->cmid, ack->seq, seen[s].seq);
            continue;
        }
        res->lost++;
        if (!d->quiet && d->lost++ < V_DETAILS_MAX)
            fprintf(stderr, "verify: lost: %s: %s acked at seq %" PRIu64 " is not stored\n", conv,
                    ack->cmid, ack->seq);
    }
}

/* Reads and judges conversation ci, re-reading up to settle times while it
 * fails. Connects (again) as needed. 0, or 2 (printed) when it could not be
 * read before the deadline. */
static int check_conv(ck_env *e, herald_client **c, const v_log *l, uint32_t ci,
                      uint32_t settle, uint64_t deadline, v_result *total, v_details *d)
{
    v_result first = {0};
    bool have_first = false;
    uint64_t backoff = 0;

    for (uint32_t attempt = 0;;) {
        v_result res = {0};
        v_rec *seen = NULL;
        size_t n_seen = 0;
        int rc;

        if (!*c && ck_connect_retry(e, l->reader, deadline, "verify", c) != 0)
            return 2;
        d->quiet = attempt < settle; /* details only for the reading judged */
        rc = read_conv(*c, l, ci, deadline, &seen, &n_seen, &res, d);
        if (rc == 0)
            judge_conv(l, ci, seen, n_seen, &res, d);
        recs_free(seen, n_seen);
        if (rc) {
            fprintf(stderr, "verify: reading %s: %s: %s\n", l->convs[ci], herald_err_name(rc),
                    herald_client_last_error(*c));
            if (herald_client_fd(*c) < 0) {
                herald_client_close(*c);
                *c = NULL;
            } else if (!ck_retryable(rc)) {
                return 2;
            }
            if (ck_now_ms() >= deadline) {
                fprintf(stderr, "verify: deadline passed reading %s\n", l->convs[ci]);
                return 2;
            }
            ck_sleep_ms(ck_backoff_next(&backoff));
            continue;
        }
        if (!have_first) {
            first = res;
            have_first = true;
        }
        if ((res.lost == 0 && res.dups == 0 && res.gaps == 0) || attempt >= settle) {
            if (attempt > 0 && (res.lost != first.lost || res.gaps != first.gaps ||
                                res.dups != first.dups))
                fprintf(stderr, "verify: note: %s changed between readings (first: %" PRIu64
                                " lost, %" PRIu64 " duplicated, %" PRIu64 " gaps): a stale "
                                "read was served\n",
                        l->convs[ci], first.lost, first.dups, first.gaps);
            total->lost += res.lost;
            total->dups += res.dups;
            total->gaps += res.gaps;
            total->stored += res.stored;
            total->foreign += res.foreign;
            return 0;
        }
        attempt++;
        if (attempt == settle) /* the last reading is judged: print its details */
            d->quiet = false;
        ck_sleep_ms(V_SETTLE_PAUSE_MS);
    }
}

int ck_verify_main(int argc, char **argv)
{
    const char *o_log = NULL, *o_settle = "3", *o_deadline = "300", *o_timeout = "10000",
               *o_env = NULL;
    ck_opt opts[] = {{"--log", &o_log},           {"--settle", &o_settle},
                     {"--deadline", &o_deadline}, {"--timeout-ms", &o_timeout},
                     {"--env", &o_env},           {NULL, NULL}};
    uint64_t settle, dl, tmo, deadline, distinct = 0;
    v_log l = {0};
    v_result total = {0};
    v_details d = {0};
    ck_env e = {0};
    herald_client *c = NULL;
    char err[512];
    int rc = 2;

    if (ck_parse_opts(argc, argv, opts, usage))
        return 2;
    if (!o_log) {
        fprintf(stderr, "herald-checker: verify needs --log\n%s", usage);
        return 2;
    }
    if (ck_parse_num("--settle", o_settle, 0, 100, &settle) ||
        ck_parse_num("--deadline", o_deadline, 1, 86400, &dl) ||
        ck_parse_num("--timeout-ms", o_timeout, 100, 600000, &tmo))
        return 2;
    deadline = ck_now_ms() + dl * 1000u;
    e.timeout_ms = (int)tmo;
    snprintf(e.file, sizeof e.file, "%s", o_env ? o_env : "");
    if (ck_env_load(&e, err, sizeof err) != 0) {
        fprintf(stderr, "herald-checker: %s\n", err);
        return 2;
    }
    if (load_log(o_log, &l) != 0)
        goto out;
    for (size_t i = 0; i < l.n_acks; i++)
        distinct += i == 0 || l.acks[i].conv != l.acks[i - 1].conv ||
                    strcmp(l.acks[i].cmid, l.acks[i - 1].cmid) != 0;
    for (uint32_t ci = 0; ci < l.n_convs; ci++) {
        if (check_conv(&e, &c, &l, ci, (uint32_t)settle, deadline, &total, &d) != 0)
            goto out;
    }
    fprintf(stderr, "verify: %u conversations, %" PRIu64 " messages stored, %" PRIu64
                    " unacked sends in the log, %" PRIu64 " foreign messages\n",
            l.n_convs, total.stored, l.unacked, total.foreign);
    printf("%" PRIu64 " acked, %" PRIu64 " lost, %" PRIu64 " duplicated, %" PRIu64 " gaps\n",
           distinct, total.lost, total.dups, total.gaps);
    rc = total.lost || total.dups || total.gaps ? 1 : 0;
out:
    herald_client_close(c);
    for (uint32_t i = 0; i < l.n_convs; i++)
        free(l.convs[i]);
    free(l.convs);
    recs_free(l.acks, l.n_acks);
    return rc;
}
