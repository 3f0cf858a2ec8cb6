/* msg.c — the herald CLI's messaging verbs. See cli.h. */
#include "cli.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int v_send(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *cmid = NULL, *silent = NULL, *urgent = NULL, *pos[2];
    cli_opt opts[] = {{"--cmid", false, &cmid, NULL, NULL}, {"--silent", true, &silent, NULL, NULL},
                  {"--urgent", true, &urgent, NULL, NULL}, {0}};
    herald_client *c = NULL;
    herald_ack ack;
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return cli_usage("send needs CONV and TEXT", line);
    if ((rc = cli_id("conversation", pos[0], line)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_send(c, pos[0], cmid, pos[1], strlen(pos[1]),
                            (silent ? HERALD_MSGF_SILENT : 0) | (urgent ? HERALD_MSGF_URGENT : 0),
                            &ack);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_strz(&w, pos[0]);
    json_key(&w, "seq");
    json_u64(&w, ack.seq);
    json_key(&w, "ts");
    json_u64(&w, ack.ts);
    json_key(&w, "dup");
    json_bool(&w, ack.dup);
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

/* Loads a saved sync key (missing file: none). */
static int load_state(const char *path, herald_buf *key)
{
    FILE *f = fopen(path, "rb");
    uint8_t chunk[4096];
    size_t n;
    if (!f)
        return errno == ENOENT ? 0 : -1;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        if (key->len + n > (1u << 20) || herald_buf_append(key, chunk, n) != 0) {
            fclose(f);
            return -1;
        }
    }
    fclose(f);
    return 0;
}

/* Writes the client's key to path atomically (tmp + rename). */
static int save_state(herald_client *c, const char *path)
{
    char tmp[4096];
    herald_buf key = {0};
    FILE *f;
    int rc = herald_client_sync_key(c, &key);
    if (rc)
        return rc;
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp", path) >= sizeof tmp) {
        herald_buf_free(&key);
        return HERALD_EINVAL;
    }
    f = fopen(tmp, "wb");
    if (!f || fwrite(key.data, 1, key.len, f) != key.len || fflush(f) != 0 ||
        fsync(fileno(f)) != 0) {
        if (f)
            fclose(f);
        rc = HERALD_EIO;
        goto remove_tmp;
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        rc = HERALD_EIO;
        goto remove_tmp;
    }
    herald_buf_free(&key);
    return 0;
remove_tmp:
    unlink(tmp);
    herald_buf_free(&key);
    return rc;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Set by SIGINT/SIGTERM while `sub` waits: the only process-wide state,
 * because a signal handler can reach nothing else. */
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
}

int v_sub(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *count_s = NULL, *timeout_s = NULL, *state = NULL, *pos[1];
    cli_opt opts[] = {{"--count", false, &count_s, NULL, NULL}, {"--timeout", false, &timeout_s, NULL, NULL},
                  {"--state", false, &state, NULL, NULL}, {0}};
    uint64_t count = 0, timeout = 0, seen = 0, deadline = 0;
    herald_buf key = {0}, b = {0};
    herald_client *c = NULL;
    struct sigaction sa = {.sa_handler = on_signal};
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 0, &npos, line);

    if (rc)
        return rc;
    if (count_s && (rc = cli_num("--count", count_s, &count, line)) != 0)
        return rc;
    if (timeout_s && (rc = cli_num("--timeout", timeout_s, &timeout, line)) != 0)
        return rc;
    if (state && load_state(state, &key) != 0) {
        fprintf(stderr, "herald: cannot read state file %s\n", state);
        return EXIT_OP;
    }
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    rc = cli_open(g, key.len ? key.data : NULL, key.len, &c);
    if (rc == 0 && state)
        rc = save_state(c, state) ? cli_fail(c, HERALD_EIO, "saving the state file") : 0;
    if (rc)
        goto out;
    if (timeout)
        deadline = mono_ms() + timeout * 1000u;
    while (!g_stop && (!count || seen < count)) {
        herald_event *ev;
        json_w w;
        int wait = 200;
        if (deadline) {
            uint64_t now = mono_ms();
            if (now >= deadline)
                break;
            if (deadline - now < (uint64_t)wait)
                wait = (int)(deadline - now);
        }
        rc = herald_client_next_event(c, wait, &ev);
        if (rc == HERALD_ETIMEOUT) {
            rc = 0;
            continue;
        }
        if (rc) {
            rc = cli_fail(c, rc, NULL);
            goto out;
        }
        json_init(&w, &b);
        if (ev->type == HERALD_EV_MSG) {
            cli_json_msg(&w, &ev->msg, true);
        } else if (ev->type == HERALD_EV_REMIND || ev->type == HERALD_EV_ESCALATE) {
            json_obj(&w);
            json_key(&w, "type");
            json_strz(&w, ev->type == HERALD_EV_REMIND ? "remind" : "escalate");
            json_key(&w, "conv");
            json_strz(&w, ev->conv);
            json_key(&w, "seq");
            json_u64(&w, ev->seq);
            json_key(&w, "count");
            json_u64(&w, ev->count);
            if (ev->type == HERALD_EV_ESCALATE) {
                /* An array, like urgent-status. */
                json_key(&w, "pending");
                json_arr(&w);
                for (uint32_t i = 0; i < ev->n_pending; i++)
                    json_strz(&w, ev->pending[i]);
                json_arr_end(&w);
            }
            json_obj_end(&w);
        } else if (ev->type == HERALD_EV_GAP) {
            /* Still being fetched; printed so an operator sees it. */
            json_obj(&w);
            json_key(&w, "type");
            json_strz(&w, "gap");
            if (ev->conv[0]) {
                json_key(&w, "conv");
                json_strz(&w, ev->conv);
            } else {
                json_key(&w, "group");
                json_u64(&w, ev->group);
            }
            json_key(&w, "upto");
            json_u64(&w, ev->seq);
            json_obj_end(&w);
        } else {
            json_obj(&w);
            json_key(&w, "type");
            json_strz(&w, "receipt");
            json_key(&w, "conv");
            json_strz(&w, ev->conv);
            json_key(&w, "user");
            json_strz(&w, ev->user);
            json_key(&w, "seq");
            json_u64(&w, ev->seq);
            json_obj_end(&w);
        }
        herald_event_free(ev);
        cli_emit(&b);
        seen++;
        if (state && save_state(c, state) != 0) {
            rc = cli_fail(c, HERALD_EIO, "saving the state file");
            goto out;
        }
    }
    /* At exit too (the key only moves when an event is taken, so this
     * repeats the last save; it keeps the file right if that one failed). */
    if (state && save_state(c, state) != 0) {
        rc = cli_fail(c, HERALD_EIO, "saving the state file");
        goto out;
    }
    if (count && seen < count && !g_stop) {
        fprintf(stderr, "herald: TIMEOUT: %llu of %llu events before the timeout\n",
                (unsigned long long)seen, (unsigned long long)count);
        rc = EXIT_OP;
    }
out:
    herald_buf_free(&key);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_history(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *after_s = NULL, *limit_s = NULL, *pos[1];
    cli_opt opts[] = {{"--after", false, &after_s, NULL, NULL}, {"--limit", false, &limit_s, NULL, NULL}, {0}};
    uint64_t after = 0, limit = UINT64_MAX, printed = 0;
    herald_client *c = NULL;
    herald_buf b = {0};
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 1, &npos, line);

    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage("history needs CONV", line);
    if ((rc = cli_id("conversation", pos[0], line)) != 0)
        return rc;
    if (after_s && (rc = cli_num("--after", after_s, &after, line)) != 0)
        return rc;
    if (limit_s && (rc = cli_num("--limit", limit_s, &limit, line)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    while (printed < limit) {
        herald_msglist l;
        uint64_t want = limit - printed;
        bool more;
        rc = herald_client_history(c, pos[0], after, want > 1000 ? 1000 : (uint32_t)want, &l);
        if (rc) {
            rc = cli_fail(c, rc, NULL);
            break;
        }
        for (uint32_t i = 0; i < l.n && printed < limit; i++, printed++) {
            json_w w;
            json_init(&w, &b);
            cli_json_msg(&w, &l.v[i], false);
            cli_emit(&b);
            after = l.v[i].seq;
        }
        more = l.more && l.n > 0;
        herald_msglist_free(&l);
        if (!more)
            break;
    }
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

/* convs: one JSON line per conversation, newest activity first; when more
 * remain past --limit, a last line {"cursor": C} for --after C. */
int v_convs(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *after_s = NULL, *limit_s = NULL, *pos[1];
    cli_opt opts[] = {{"--after", false, &after_s, NULL, NULL}, {"--limit", false, &limit_s, NULL, NULL}, {0}};
    uint64_t limit = 50, printed = 0;
    herald_client *c = NULL;
    herald_buf b = {0};
    char *cursor = NULL;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 0, &npos, line);

    if (rc)
        return rc;
    if (npos != 0)
        return cli_usage("convs takes no CONV", line);
    if (limit_s && (rc = cli_num("--limit", limit_s, &limit, line)) != 0)
        return rc;
    if (limit == 0)
        return cli_usage("--limit must be at least 1", line);
    if (after_s && !(cursor = strdup(after_s)))
        return cli_fail(NULL, HERALD_ENOMEM, NULL);
    rc = cli_open(g, NULL, 0, &c);
    if (rc) {
        free(cursor);
        return rc;
    }
    while (printed < limit) {
        herald_convlist l;
        uint64_t want = limit - printed;
        rc = herald_client_conv_list(c, cursor, want > 200 ? 200 : (uint32_t)want, &l);
        if (rc) {
            rc = cli_fail(c, rc, NULL);
            break;
        }
        for (uint32_t i = 0; i < l.n; i++, printed++) {
            const herald_msg *m = &l.last.v[i];
            json_w w;
            json_init(&w, &b);
            json_obj(&w);
            json_key(&w, "conv");
            json_str(&w, m->conv.ptr, m->conv.len);
            json_key(&w, "kind");
            json_strz(&w, l.kinds[i]);
            json_key(&w, "members");
            json_u64(&w, l.counts[i]);
            json_key(&w, "last_seq");
            json_u64(&w, m->seq);
            json_key(&w, "unread");
            json_u64(&w, l.unread[i]);
            if (m->seq) {
                json_key(&w, "last");
                cli_json_msg(&w, m, false);
            }
            json_obj_end(&w);
            cli_emit(&b);
        }
        free(cursor);
        cursor = l.cursor; /* taken */
        l.cursor = NULL;
        herald_convlist_free(&l);
        if (!cursor)
            break;
    }
    if (rc == 0 && cursor) {
        json_w w;
        json_init(&w, &b);
        json_obj(&w);
        json_key(&w, "cursor");
        json_strz(&w, cursor);
        json_obj_end(&w);
        cli_emit(&b);
    }
    free(cursor);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

/* Verbs of the shape "VERB CONV SEQ" printing {"conv","seq"}: read, recall. */
typedef int (*conv_seq_fn)(herald_client *c, const char *conv, uint64_t seq, uint64_t *out);

static int run_conv_seq(const cli_globals *g, int argc, char **argv, const char *line,
                        conv_seq_fn op)
{
    const char *pos[2];
    uint64_t seq, result = 0;
    herald_client *c = NULL;
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, NULL, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return cli_usage("needs CONV and SEQ", line);
    if ((rc = cli_id("conversation", pos[0], line)) != 0)
        return rc;
    if ((rc = cli_num("SEQ", pos[1], &seq, line)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = op(c, pos[0], seq, &result);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_strz(&w, pos[0]);
    json_key(&w, "seq");
    json_u64(&w, result);
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_read(const cli_globals *g, const char *line, int argc, char **argv)
{
    return run_conv_seq(g, argc, argv, line, herald_client_read);
}

/* Prints {"conv","seq"} with seq = the system message announcing the recall. */
int v_recall(const cli_globals *g, const char *line, int argc, char **argv)
{
    return run_conv_seq(g, argc, argv, line, herald_client_recall);
}

int v_receipts(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *after = NULL, *limit_s = NULL, *pos[2];
    cli_opt opts[] = {{"--after", false, &after, "member", NULL}, {"--limit", false, &limit_s, NULL, NULL}, {0}};
    uint64_t seq, limit = 0;
    herald_client *c = NULL;
    herald_receipts r = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return cli_usage("receipts needs CONV and SEQ", line);
    if ((rc = cli_id("conversation", pos[0], line)) != 0)
        return rc;
    if ((rc = cli_num("SEQ", pos[1], &seq, line)) != 0)
        return rc;
    if (limit_s && ((rc = cli_num("--limit", limit_s, &limit, line)) != 0))
        return rc;
    if (limit > 1000)
        return cli_usage("--limit is at most 1000", line);
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_receipts_page(c, pos[0], seq, after, (uint32_t)limit, &r);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "read");
    cli_json_strlist(&w, &r.read);
    json_key(&w, "unread");
    cli_json_strlist(&w, &r.unread);
    json_key(&w, "read_count");
    json_u64(&w, r.n_read);
    json_key(&w, "unread_count");
    json_u64(&w, r.n_unread);
    if (r.more) {
        json_key(&w, "next");
        json_strz(&w, r.next);
    }
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_receipts_free(&r);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_ping(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *pos[1];
    uint64_t rtt;
    herald_client *c = NULL;
    int npos, rc = cli_parse_opts(argc, argv, NULL, pos, 0, &npos, line);
    if (rc)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_ping(c, &rtt);
    if (rc)
        rc = cli_fail(c, rc, NULL);
    else
        printf("{\"rtt_us\":%llu}\n", (unsigned long long)rtt);
    herald_client_close(c);
    return rc;
}

/* TIME for --until: "+30s" / "+15m" / "+2h" / "+1d" from now, Unix seconds,
 * or "YYYY-MM-DDTHH:MM[:SS]Z". Returns ms since the epoch, 0 when invalid. */
static uint64_t parse_time(const char *s)
{
    uint64_t v;
    if (s[0] == '+') {
        char unit;
        size_t n = strlen(s);
        static const struct {
            char u;         /* suffix */
            uint64_t secs;  /* seconds per unit */
        } units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
        char digits[32];
        if (n < 3 || n - 2 >= sizeof digits)
            return 0;
        unit = s[n - 1];
        memcpy(digits, s + 1, n - 2);
        digits[n - 2] = '\0';
        if (!cli_parse_u64(digits, &v))
            return 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (units[i].u == unit && v <= UINT32_MAX)
                return ((uint64_t)time(NULL) + v * units[i].secs) * 1000u;
        return 0;
    }
    if (cli_parse_u64(s, &v))
        return v <= UINT32_MAX * 4ull ? v * 1000u : 0;
    {
        struct tm tm = {0};
        const char *end = strptime(s, "%Y-%m-%dT%H:%M", &tm);
        if (end && *end == ':')
            end = strptime(end, ":%S", &tm);
        if (!end || strcmp(end, "Z") != 0)
            return 0;
        return (uint64_t)timegm(&tm) * 1000u;
    }
}

int v_dnd(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *until_s = NULL, *pos[1];
    cli_opt opts[] = {{"--until", false, &until_s, NULL, NULL}, {0}};
    static const char *const dnd_ops[] = {"on", "off", "status", NULL};
    uint64_t until = 0, state;
    herald_client *c = NULL;
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 1, &npos, line);

    if (rc)
        return rc;
    if (npos != 1)
        return cli_usage("dnd needs on, off or status", line);
    if ((rc = cli_choice("dnd operation", pos[0], dnd_ops, line)) != 0)
        return rc;
    if (until_s) {
        if (strcmp(pos[0], "on") != 0)
            return cli_usage("--until goes with dnd on", line);
        until = parse_time(until_s);
        if (!until)
            return cli_usage("--until: not a time", line);
    }
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_dnd(c, pos[0], until, &state);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "dnd");
    json_bool(&w, state != 0);
    if (state && state != UINT64_MAX) {
        json_key(&w, "until");
        json_u64(&w, state);
    }
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

int v_confirm(const cli_globals *g, const char *line, int argc, char **argv)
{
    return run_conv_seq(g, argc, argv, line, herald_client_confirm);
}

int v_urgent_status(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *pos[2];
    uint64_t seq;
    herald_client *c = NULL;
    herald_strlist ok = {0}, pend = {0};
    herald_buf b = {0};
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, NULL, pos, 2, &npos, line);

    if (rc)
        return rc;
    if (npos != 2)
        return cli_usage("urgent-status needs CONV and SEQ", line);
    if ((rc = cli_id("conversation", pos[0], line)) != 0)
        return rc;
    if ((rc = cli_num("SEQ", pos[1], &seq, line)) != 0)
        return rc;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        return rc;
    rc = herald_client_urgent_status(c, pos[0], seq, &ok, &pend);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "confirmed");
    cli_json_strlist(&w, &ok);
    json_key(&w, "pending");
    cli_json_strlist(&w, &pend);
    json_obj_end(&w);
    cli_emit(&b);
out:
    herald_strlist_free(&ok);
    herald_strlist_free(&pend);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}
