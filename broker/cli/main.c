/*
 * main.c — herald, the command-line client and admin tool: global options
 * and the verb table. See cli.h for the contract and README.md ("CLI").
 */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

/* One verb of the table. */
typedef struct verb {
    const char *name; /* what follows the global options */
    cli_verb_fn run;  /* handler */
    const char *help; /* usage line (also passed to the handler) */
} verb;

static const verb verbs[] = {
    {"token", v_token, "token --user U [--ttl SECONDS]"},
    {"conv", v_conv, "conv create --kind KIND --members u1,u2,… [--id ID] | add|remove CONV "
                     "--members … | info CONV"},
    {"send", v_send, "send CONV TEXT [--cmid ID] [--silent] [--urgent]"},
    {"confirm", v_confirm, "confirm CONV SEQ"},
    {"urgent-status", v_urgent_status, "urgent-status CONV SEQ"},
    {"sub", v_sub, "sub [--count N] [--timeout SECONDS] [--state FILE]"},
    {"history", v_history, "history CONV [--after SEQ] [--limit N]"},
    {"convs", v_convs, "convs [--limit N] [--after CURSOR]"},
    {"read", v_read, "read CONV SEQ"},
    {"recall", v_recall, "recall CONV SEQ"},
    {"dnd", v_dnd, "dnd on [--until TIME] | off | status"},
    {"contact", v_contact, "contact add EMPLOYEE CUSTOMER | contact list CUSTOMER"},
    {"dir", v_dir, "dir user add USER --kind internal|external [--dept D] [--title T] "
                   "[--name N] | user show USER | dept add DEPT [--name N] [--parent P] | "
                   "dept show DEPT"},
    {"receipts", v_receipts, "receipts CONV SEQ [--after ID] [--limit N]"},
    {"tag", v_tag, "tag add|remove CUSTOMER t1,t2,… | tag list CUSTOMER"},
    {"mass", v_mass, "mass send --tags t1,t2,… [--id ID] TEXT | mass status ID"},
    {"app", v_app, "app send|announce --app APP [--users u1,…|@all] [--depts d1,…] "
                   "[--tags t1,…] [--id ID] [--window SECONDS] TEXT | app create APP "
                   "[--scopes message,directory,contact,transfer,conversation,user_token] "
                   "[--name N] | app list | app user-token USER [--ttl S] [--admin-role] | "
                   "app callback APP --url URL [--all] [--events TYPE,…] | app events APP "
                   "[--failed] [--limit N] [--after ID] | app redeliver APP (--id ID | "
                   "--failed)"},
    {"transfer", v_transfer, "transfer --from E1 --to E2 [--customers c1,…] [--groups g1,…] "
                             "[--resigned] | transfer --refuse"},
    {"admin", v_admin, "admin status"},
    {"ping", v_ping, "ping"},
};

static void help(FILE *f)
{
    fprintf(f, "usage: herald [--as USER] [--admin] [--gateway HOST:PORT] [--token TOK] "
               "[--timeout S] VERB …\n");
    for (size_t i = 0; i < sizeof verbs / sizeof verbs[0]; i++)
        fprintf(f, "  herald %s\n", verbs[i].help);
    fprintf(f, "env: HERALD_GATEWAY (default 127.0.0.1:7400; tls://HOST:PORT for TLS, the "
               "server's certificate checked against HERALD_CA or the system's CAs), "
               "HERALD_TOKEN; HERALD_SECRET and HERALD_TENANT let --as/--admin mint tokens\n");
}

int main(int argc, char **argv)
{
    cli_globals g = {.gateway = getenv("HERALD_GATEWAY"), .token = getenv("HERALD_TOKEN")};
    int i = 1;

    if (herald_token_init() != 0) {
        fprintf(stderr, "herald: libsodium failed to initialise\n");
        return EXIT_OP;
    }
    if (!g.gateway || !*g.gateway)
        g.gateway = "127.0.0.1:7400";
    if (g.token && !*g.token)
        g.token = NULL;
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        uint64_t t;
        if (strcmp(a, "--admin") == 0) {
            g.admin = true;
        } else if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            help(stdout);
            return 0;
        } else if (strcmp(a, "--version") == 0) {
            printf("herald %s (protocol %u)\n", HERALD_VERSION, HERALD_PROTOCOL_VERSION);
            return 0;
        } else if (!v) {
            fprintf(stderr, "herald: %s needs a value\n", a);
            return EXIT_USAGE;
        } else if (strcmp(a, "--as") == 0) {
            g.as = v;
            i++;
        } else if (strcmp(a, "--gateway") == 0) {
            g.gateway = v;
            i++;
        } else if (strcmp(a, "--token") == 0) {
            g.token = v;
            i++;
        } else if (strcmp(a, "--timeout") == 0) {
            if (!cli_parse_u64(v, &t) || t == 0 || t > 3600) {
                fprintf(stderr, "herald: --timeout must be 1..3600 seconds\n");
                return EXIT_USAGE;
            }
            g.timeout_ms = (int)(t * 1000);
            i++;
        } else {
            fprintf(stderr, "herald: unknown option '%s'\n", a);
            help(stderr);
            return EXIT_USAGE;
        }
    }
    /* --as/--admin mint a fresh token; they win over HERALD_TOKEN. */
    if ((g.as || g.admin) && g.token == getenv("HERALD_TOKEN"))
        g.token = NULL;
    if (i >= argc) {
        help(stderr);
        return EXIT_USAGE;
    }
    for (size_t k = 0; k < sizeof verbs / sizeof verbs[0]; k++)
        if (strcmp(argv[i], verbs[k].name) == 0)
            return verbs[k].run(&g, verbs[k].help, argc - i - 1, argv + i + 1);
    fprintf(stderr, "herald: unknown verb '%s'\n", argv[i]);
    help(stderr);
    return EXIT_USAGE;
}
