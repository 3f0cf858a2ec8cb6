/* app.c — the herald CLI's app-message and customer-transfer verbs. See cli.h. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define APP_USERS_MAX 1000   /* users in one app message (the server's cap) */
#define APP_LISTS_MAX 100    /* departments / tags in one app message */
#define XFER_MAX 100         /* customers / groups in one transfer */

/* herald app create APP [--scopes s1,…] [--name N] | app list [--after APP]
 * [--limit N] | app user-token USER [--ttl S] [--admin-role]. */
static int app_manage(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *scopes = NULL, *name = NULL, *after = NULL, *limit = NULL, *ttl = NULL,
               *adminr = NULL, *pos[2];
    cli_opt opts[] = {{"--scopes", false, &scopes, NULL, NULL},
                      {"--name", false, &name, NULL, NULL},
                      {"--after", false, &after, "app", NULL},
                      {"--limit", false, &limit, NULL, NULL},
                      {"--ttl", false, &ttl, NULL, NULL},
                      {"--admin-role", true, &adminr, NULL, NULL},
                      {0}};
    herald_buf b = {0};
    uint64_t n = 0;
    json_w w;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);
    const char *op = npos ? pos[0] : "";

    if (rc)
        return rc;
    json_init(&w, &b);
    json_obj(&w);
    if (strcmp(op, "create") == 0) {
        if (npos != 2 || (rc = cli_id("app", pos[1], line)) != 0) {
            herald_buf_free(&b);
            return rc ? rc : cli_usage("app create needs an APP id", line);
        }
        if (scopes) {
            char *copy = NULL;
            const char **v = NULL;
            uint32_t k = 0;
            rc = cli_split_list(scopes, 16, "scopes", line, &copy, &v, &k);
            if (rc) {
                herald_buf_free(&b);
                return rc;
            }
            json_key(&w, "scopes");
            json_arr(&w);
            for (uint32_t i = 0; i < k; i++)
                json_strz(&w, v[i]);
            json_arr_end(&w);
            free(copy);
            free(v);
        }
        if (name) {
            json_key(&w, "name");
            json_strz(&w, name);
        }
        json_obj_end(&w);
        return app_call(g, "create", pos[1], &b);
    }
    if (strcmp(op, "list") == 0 && npos == 1) {
        if (limit && (rc = cli_num("--limit", limit, &n, line)) != 0) {
            herald_buf_free(&b);
            return rc;
        }
        if (after) {
            json_key(&w, "after");
            json_strz(&w, after);
        }
        if (limit) {
            json_key(&w, "limit");
            json_u64(&w, n);
        }
        json_obj_end(&w);
        return app_call(g, "list", NULL, &b);
    }
    if (strcmp(op, "user-token") == 0 && npos == 2) {
        if ((rc = cli_id("user", pos[1], line)) != 0 ||
            (ttl && (rc = cli_num("--ttl", ttl, &n, line)) != 0)) {
            herald_buf_free(&b);
            return rc;
        }
        json_key(&w, "userid");
        json_strz(&w, pos[1]);
        if (ttl) {
            json_key(&w, "ttl");
            json_u64(&w, n);
        }
        if (adminr) {
            json_key(&w, "admin");
            json_bool(&w, true);
        }
        json_obj_end(&w);
        return app_call(g, "user_token", NULL, &b);
    }
    herald_buf_free(&b);
    return cli_usage("app needs create APP, list or user-token USER", line);
}

int v_app(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *app = NULL, *users = NULL, *depts = NULL, *tags = NULL, *id = NULL,
               *window = NULL, *pos[2];
    cli_opt opts[] = {{"--app", false, &app, "app", NULL},   {"--users", false, &users, NULL, NULL},
                      {"--depts", false, &depts, NULL, NULL}, {"--tags", false, &tags, NULL, NULL},
                      {"--id", false, &id, "message", NULL}, {"--window", false, &window, NULL, NULL},
                      {0}};
    static const char *const app_ops[] = {"send", "announce", NULL};
    char *copies[3] = {NULL, NULL, NULL};
    const char **lists[3] = {NULL, NULL, NULL};
    uint32_t counts[3] = {0, 0, 0};
    herald_app_msg m = {0};
    herald_app_result r = {0};
    herald_client *c = NULL;
    herald_buf b = {0};
    uint64_t win = 0;
    json_w w;
    int npos, rc;

    if (argc >= 1 && (strcmp(argv[0], "create") == 0 || strcmp(argv[0], "list") == 0 ||
                      strcmp(argv[0], "user-token") == 0))
        return app_manage(g, line, argc, argv);
    if (argc >= 1 && (strcmp(argv[0], "callback") == 0 || strcmp(argv[0], "events") == 0 ||
                      strcmp(argv[0], "redeliver") == 0))
        return app_callbacks(g, line, argc, argv); /* cbapp.c */
    rc = cli_parse_opts(argc, argv, opts, pos, 2, &npos, line);
    if (rc)
        return rc;
    if (npos >= 1 && (rc = cli_choice("app operation", pos[0], app_ops, line)) != 0)
        return rc;
    if (npos != 2)
        return cli_usage("app needs send|announce and a TEXT", line);
    if (!app)
        return cli_usage("app needs --app APP", line);
    if (!users && !depts && !tags)
        return cli_usage("app needs recipients: --users (or @all), --depts or --tags", line);
    if (window && ((rc = cli_num("--window", window, &win, line)) != 0))
        return rc;
    if (win > 14400)
        return cli_usage("--window is at most 14400 seconds", line);
    {
        const char *src[3] = {users, depts, tags};
        const uint32_t max[3] = {APP_USERS_MAX, APP_LISTS_MAX, APP_LISTS_MAX};
        const char *what[3] = {"users", "departments", "tags"};
        for (int i = 0; i < 3 && rc == 0; i++)
            if (src[i])
                rc = cli_split_list(src[i], max[i], what[i], line, &copies[i], &lists[i],
                                    &counts[i]);
        if (rc)
            goto out;
    }
    m = (herald_app_msg){.app = app, .announce = strcmp(pos[0], "announce") == 0,
                         .users = lists[0], .n_users = counts[0], .depts = lists[1],
                         .n_depts = counts[1], .tags = lists[2], .n_tags = counts[2],
                         .text = pos[1], .id = id, .window_s = (uint32_t)win};
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        goto out;
    rc = herald_client_app_send(c, &m, &r);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "id");
    json_strz(&w, r.id);
    json_key(&w, "app");
    json_strz(&w, app);
    if (r.conv) {
        json_key(&w, "conv");
        json_strz(&w, r.conv);
    }
    json_key(&w, "dup");
    json_bool(&w, r.dup);
    json_key(&w, "stored");
    json_u64(&w, r.stored);
    json_key(&w, "reached");
    cli_json_strlist(&w, &r.reached);
    json_key(&w, "limited");
    cli_json_strlist(&w, &r.limited);
    json_key(&w, "invaliduser");
    cli_json_strlist(&w, &r.bad_users);
    json_key(&w, "invalidparty");
    cli_json_strlist(&w, &r.bad_depts);
    json_key(&w, "invalidtag");
    cli_json_strlist(&w, &r.bad_tags);
    json_key(&w, "unreached");
    cli_json_strlist(&w, &r.unreached);
    json_obj_end(&w);
    cli_emit(&b);
    if (r.stored == 0 && !r.dup && r.unreached.n) {
        /* Nothing stored at all: the result says who and why; fail loudly. */
        fprintf(stderr, "herald: the message reached nobody: %s%s\n", r.unreached.v[0],
                r.unreached.n > 1 ? " (and more, see \"unreached\")" : "");
        rc = 1;
    }
out:
    for (int i = 0; i < 3; i++) {
        free(copies[i]);
        free(lists[i]);
    }
    herald_app_result_free(&r);
    herald_buf_free(&b);
    herald_client_close(c);
    return rc;
}

/* One line per customer / group of a transfer. */
static void print_transfer(const herald_transfer_result *r)
{
    herald_buf b = {0};
    json_w w;
    for (uint32_t i = 0; i < r->n; i++) {
        const herald_transfer_item *it = &r->v[i];
        json_init(&w, &b);
        json_obj(&w);
        json_key(&w, it->group ? "group" : "customer");
        json_strz(&w, it->id);
        json_key(&w, "status");
        json_strz(&w, it->status);
        if (it->takeover_ms) {
            char when[32];
            time_t t = (time_t)(it->takeover_ms / 1000);
            struct tm tm;
            gmtime_r(&t, &tm);
            strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            json_key(&w, "takeover_ms");
            json_u64(&w, it->takeover_ms);
            json_key(&w, "takeover");
            json_strz(&w, when);
        }
        if (it->reason && *it->reason) {
            json_key(&w, "reason");
            json_strz(&w, it->reason);
            json_key(&w, "text");
            json_strz(&w, it->text ? it->text : "");
        }
        json_obj_end(&w);
        cli_emit(&b);
    }
    herald_buf_free(&b);
}

int v_transfer(const cli_globals *g, const char *line, int argc, char **argv)
{
    const char *from = NULL, *to = NULL, *customers = NULL, *groups = NULL, *resigned = NULL,
               *refuse = NULL, *pos[1];
    cli_opt opts[] = {{"--from", false, &from, "employee", NULL}, {"--to", false, &to, "employee", NULL},
                      {"--customers", false, &customers, NULL, NULL}, {"--groups", false, &groups, NULL, NULL},
                      {"--resigned", true, &resigned, NULL, NULL},  {"--refuse", true, &refuse, NULL, NULL},
                      {0}};
    char *ccopy = NULL, *gcopy = NULL;
    const char **cv = NULL, **gv = NULL;
    uint32_t nc = 0, ng = 0;
    herald_transfer_result r = {0};
    herald_client *c = NULL;
    int npos, rc = cli_parse_opts(argc, argv, opts, pos, 0, &npos, line);

    if (rc)
        return rc;
    if (refuse && (from || to || customers || groups || resigned))
        return cli_usage("--refuse takes no other option", line);
    if (!refuse && (!from || !to))
        return cli_usage("transfer needs --from and --to", line);
    if (!refuse && !customers && !groups)
        return cli_usage("transfer needs --customers and/or --groups", line);
    if (customers && (rc = cli_split_list(customers, XFER_MAX, "customers", line, &ccopy, &cv,
                                          &nc)) != 0)
        goto out;
    if (groups &&
        (rc = cli_split_list(groups, XFER_MAX, "groups", line, &gcopy, &gv, &ng)) != 0)
        goto out;
    rc = cli_open(g, NULL, 0, &c);
    if (rc)
        goto out;
    rc = refuse ? herald_client_transfer_refuse(c, &r)
                : herald_client_transfer(c, from, to, cv, nc, gv, ng, resigned != NULL, &r);
    if (rc) {
        rc = cli_fail(c, rc, NULL);
        goto out;
    }
    print_transfer(&r);
out:
    free(ccopy);
    free(cv);
    free(gcopy);
    free(gv);
    herald_transfer_result_free(&r);
    herald_client_close(c);
    return rc;
}
