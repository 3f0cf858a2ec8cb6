/*
 * cli.h — the herald command-line tool, shared by its files:
 *   main.c   global options, the verb table, dispatch
 *   util.c   the shared option parser, numbers, tokens, connecting, errors, JSON output
 *   msg.c    messaging verbs: send, sub, history, read, recall, receipts, ping,
 *            dnd, confirm, urgent-status
 *   admin.c  management verbs: token, conv, dir, contact, tag, mass, admin
 *   app.c    app messages / announcements (app) and customer transfer (transfer)
 *
 * Contract (scripts rely on it): global options come before the verb; every
 * result is one JSON object per line on stdout; errors go to stderr as
 * "herald: CODE_NAME: message". Exit status: 0 ok; 1 the operation failed
 * (server error); 2 usage; 3 cannot connect or authenticate.
 */
#ifndef HERALD_CLI_H
#define HERALD_CLI_H

#include <herald/client.h>
#include <herald/error.h>
#include <stdbool.h>
#include <stdint.h>

#include "json.h"

#define EXIT_OP 1
#define EXIT_USAGE 2
#define EXIT_CONN 3
#define TOKEN_TTL_DEFAULT 3600   /* seconds: minted tokens */
#define MEMBERS_MAX 100000       /* ids in one --members list */
#define TAGS_MAX 100             /* tags in one call (the server's cap) */

/* Global options. */
typedef struct cli_globals {
    const char *as;      /* --as USER: mint a token for USER */
    bool admin;          /* --admin: mint a tenant-admin token */
    const char *gateway; /* --gateway or HERALD_GATEWAY */
    const char *token;   /* --token or HERALD_TOKEN */
    int timeout_ms;      /* --timeout (0 = the library's default) */
} cli_globals;

/* One option a verb accepts. */
typedef struct cli_opt {
    const char *name;   /* "--count" */
    bool flag;          /* takes no value */
    const char **val;   /* where the value goes ("1" for flags) */
    const char *id;     /* the value is an id (token_id_valid) naming this
                           ("conversation"), checked by the parser; NULL: any */
    const char *const *choices; /* the value is one of these (NULL-terminated),
                                   checked by the parser; NULL: any */
} cli_opt;

/* The kinds of conversation, for --kind. */
extern const char *const cli_conv_kinds[];

/* A verb: `line` is its usage line from the table. Returns the exit status. */
typedef int (*cli_verb_fn)(const cli_globals *g, const char *line, int argc, char **argv);

/* Prints "herald: msg" and the usage line; returns EXIT_USAGE. */
int cli_usage(const char *msg, const char *line);
/* A decimal unsigned integer, wholly consumed, no sign, no overflow. */
bool cli_parse_u64(const char *s, uint64_t *out);
/* Splits argv into the options in opts (NULL-name terminated, may be NULL)
 * and at most max_pos positional arguments. 0 or EXIT_USAGE (printed). */
int cli_parse_opts(int argc, char **argv, cli_opt *opts, const char **pos, int max_pos,
                   int *npos, const char *line);
/* s is an id (1 to 128 of a-z A-Z 0-9 . _ @ : -); otherwise a usage error
 * naming `what` and the rule. 0 or EXIT_USAGE. */
int cli_id(const char *what, const char *s, const char *line);
/* s is one of choices (NULL-terminated); otherwise a usage error naming
 * `what` and listing them. 0 or EXIT_USAGE. */
int cli_choice(const char *what, const char *s, const char *const *choices, const char *line);
/* cli_parse_u64 with a usage error naming `what`. 0 or EXIT_USAGE. */
int cli_num(const char *what, const char *s, uint64_t *out, const char *line);
/* Splits "a,b,c" (empty items skipped) into *v (at most max items), each
 * an id (cli_id, named by `what`). *copy and *v are owned by the caller
 * (free both). 0, or EXIT_USAGE (too many or a bad id, printed) / EXIT_OP
 * (out of memory). */
int cli_split_list(const char *s, uint32_t max, const char *what, const char *line,
                   char **copy, const char ***v, uint32_t *n);
/* Reports a failed call ("herald: NAME: server text or description[ — what]")
 * and returns the exit status for rc. c may be NULL. */
int cli_fail(herald_client *c, int rc, const char *what);
/* Mints a token from HERALD_SECRET / HERALD_TENANT. 0 or an exit status. */
int cli_mint(const char *user, bool admin, long ttl, char *out, size_t outlen);
/* Connects with the globals' token (minted for --as/--admin), resuming from
 * key when given. 0 and *c, or an exit status (error printed). */
int cli_open(const cli_globals *g, const uint8_t *key, size_t keylen, herald_client **c);
/* Prints the JSON in b as one line, flushes stdout, empties b. */
void cli_emit(herald_buf *b);
/* A message as a JSON object (typed: with "type":"msg"). */
void cli_json_msg(json_w *w, const herald_msg *m, bool typed);
/* A string list as a JSON array. */
void cli_json_strlist(json_w *w, const herald_strlist *l);

/* Verbs (msg.c, admin.c). */
int v_token(const cli_globals *g, const char *line, int argc, char **argv);
int v_conv(const cli_globals *g, const char *line, int argc, char **argv);
int v_send(const cli_globals *g, const char *line, int argc, char **argv);
int v_confirm(const cli_globals *g, const char *line, int argc, char **argv);
int v_urgent_status(const cli_globals *g, const char *line, int argc, char **argv);
int v_sub(const cli_globals *g, const char *line, int argc, char **argv);
int v_history(const cli_globals *g, const char *line, int argc, char **argv);
int v_convs(const cli_globals *g, const char *line, int argc, char **argv);
int v_read(const cli_globals *g, const char *line, int argc, char **argv);
int v_recall(const cli_globals *g, const char *line, int argc, char **argv);
int v_dnd(const cli_globals *g, const char *line, int argc, char **argv);
int v_contact(const cli_globals *g, const char *line, int argc, char **argv);
int v_dir(const cli_globals *g, const char *line, int argc, char **argv);
int v_receipts(const cli_globals *g, const char *line, int argc, char **argv);
int v_tag(const cli_globals *g, const char *line, int argc, char **argv);
int v_mass(const cli_globals *g, const char *line, int argc, char **argv);
int v_admin(const cli_globals *g, const char *line, int argc, char **argv);
int v_app(const cli_globals *g, const char *line, int argc, char **argv);
int v_transfer(const cli_globals *g, const char *line, int argc, char **argv);
int v_ping(const cli_globals *g, const char *line, int argc, char **argv);

/* util.c: APP op with the JSON object args (taken), the answer's JSON
 * printed. The exit status. */
int app_call(const cli_globals *g, const char *op, const char *app, herald_buf *args);
/* cbapp.c: app callback | events | redeliver (event callbacks). */
int app_callbacks(const cli_globals *g, const char *line, int argc, char **argv);

#endif
