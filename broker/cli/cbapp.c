/* cbapp.c — the herald CLI's event-callback verbs: app callback (set or
 * remove an app's callback URL, and which events it gets; prints the
 * token and secret), app events
 * (its pending, delivered and failed events), app redeliver (failed events
 * again). Each prints the JSON answer. See cli.h. */
#include "cli.h"

#include <stdio.h>
#include <string.h>

int app_callbacks(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *url = NULL, *all = NULL, *failed = NULL, *limit = NULL, *after = NULL,
               *id = NULL, *events = NULL, *pos[2];
    cli_opt opts[] = {{"--url", false, &url, NULL, NULL},   {"--all", true, &all, NULL, NULL},
                      {"--events", false, &events, NULL, NULL},
                      {"--failed", true, &failed, NULL, NULL},
                      {"--limit", false, &limit, NULL, NULL},
                      {"--after", false, &after, NULL, NULL}, {"--id", false, &id, NULL, NULL},
                      {0}};
    herald_buf b = {0};
    uint64_t n = 0;
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);
    const char *op = npos ? pos[0] : "";

    if (rc)
        return rc;
    if (npos != 2)
        return cli_usage("app callback|events|redeliver needs an APP id", line);
    if ((rc = cli_id("app", pos[1], line)) != 0)
        return rc;
    json_init(&w, &b);
    json_obj(&w);
    if (strcmp(op, "callback") == 0) {
        if (!url || failed || limit || after || id) {
            herald_buf_free(&b);
            return cli_usage("app callback APP --url URL [--all] [--events TYPE,…] "
                             "(--url \"\" removes it)",
                             line);
        }
        json_key(&w, "url");
        json_strz(&w, url);
        json_key(&w, "all");
        json_bool(&w, all != NULL);
        if (events) { /* the broker checks the names (and lists the types) */
            const char *p = events;
            json_key(&w, "events");
            json_arr(&w);
            while (*p) {
                const char *e = strchr(p, ',');
                size_t len = e ? (size_t)(e - p) : strlen(p);
                if (len == 0) {
                    herald_buf_free(&b);
                    return cli_usage("--events: event types separated by commas "
                                     "(message,message.offline,…)",
                                     line);
                }
                json_str(&w, p, len);
                p += len + (e != NULL);
            }
            json_arr_end(&w);
        }
    } else if (strcmp(op, "events") == 0) {
        if (url || all || id || events ||
            (limit && (rc = cli_num("--limit", limit, &n, line)) != 0)) {
            herald_buf_free(&b);
            return rc ? rc : cli_usage("app events APP [--failed] [--limit N] [--after ID]",
                                       line);
        }
        if (limit && (n < 1 || n > 200)) {
            herald_buf_free(&b);
            return cli_usage("--limit is 1 to 200", line);
        }
        json_key(&w, "failed");
        json_bool(&w, failed != NULL);
        if (limit) {
            json_key(&w, "limit");
            json_u64(&w, n);
        }
        if (after) {
            json_key(&w, "after");
            json_strz(&w, after);
        }
    } else if (strcmp(op, "redeliver") == 0) {
        if (url || all || limit || after || events || (id != NULL) == (failed != NULL)) {
            herald_buf_free(&b);
            return cli_usage("app redeliver APP (--id ID | --failed)", line);
        }
        if (id) {
            json_key(&w, "id");
            json_strz(&w, id);
        } else {
            json_key(&w, "failed");
            json_bool(&w, true);
        }
    } else {
        herald_buf_free(&b);
        return cli_usage("app callback|events|redeliver APP …", line);
    }
    json_obj_end(&w);
    return app_call(g, op, pos[1], &b);
}
