/*
 * checker_quorum.c — `herald-checker quorum`: one session that stays
 * connected while the cluster loses its majority, timing a read per line of
 * stdin.
 *
 *   herald-checker quorum --user U --conv C [--env FILE]
 *
 * Connects as U (retrying up to 30 s), prints "ready"; then for every line
 * read from stdin reads the history of C and prints one line
 *   {"err":"NAME","ms":N,"text":"…"}
 * (err "OK" when the read succeeded; text the server's ERROR text). Ends at
 * the end of stdin (0), or when the connection breaks (1).
 */
#include "checker.h"

#include <stdio.h>
#include <string.h>

static const char usage[] = "usage: herald-checker quorum --user U --conv C [--env FILE]\n";

int ck_quorum_main(int argc, char **argv)
{
    const char *user = NULL, *conv = NULL, *envf = NULL;
    ck_opt opts[] = {{"--user", &user}, {"--conv", &conv}, {"--env", &envf}, {NULL, NULL}};
    ck_env env = {.timeout_ms = 20000};
    herald_client *c = NULL;
    char line[64];
    int rc = ck_parse_opts(argc, argv, opts, usage);

    if (rc)
        return rc;
    if (!user || !conv) {
        fputs(usage, stderr);
        return 2;
    }
    if (envf)
        snprintf(env.file, sizeof env.file, "%s", envf);
    if (ck_connect_retry(&env, user, ck_now_ms() + 30000, "quorum", &c) != 0)
        return 1;
    printf("ready\n");
    fflush(stdout);
    while (fgets(line, sizeof line, stdin)) {
        herald_msglist l = {0};
        uint64_t t0 = ck_now_ms();
        int e = herald_client_history(c, conv, 0, 10, &l);
        const char *text = e ? herald_client_last_error(c) : "";
        printf("{\"err\":\"%s\",\"ms\":%llu,\"text\":\"", herald_err_name(e),
               (unsigned long long)(ck_now_ms() - t0));
        for (const char *p = text; *p; p++) /* server text: no quotes or controls expected */
            if (*p != '"' && *p != '\\' && (unsigned char)*p >= 0x20)
                putchar(*p);
        printf("\"}\n");
        fflush(stdout);
        herald_msglist_free(&l);
        if (herald_client_fd(c) < 0) {
            herald_client_close(c);
            return 1;
        }
    }
    herald_client_close(c);
    return 0;
}
