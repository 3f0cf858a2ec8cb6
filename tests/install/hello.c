/* hello.c — libherald from the outside: mint a token for alice, connect,
 * create a conversation, send to it and wait for the push.
 *   cc hello.c $(pkg-config --cflags --libs herald) -o hello
 *   HERALD_GATEWAY=… HERALD_TENANT=… HERALD_SECRET=… ./hello */
#include <herald/client.h>
#include <herald/token.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what, int rc, herald_client *c)
{
    fprintf(stderr, "%s: %s: %s\n", what, herald_err_name(rc),
            c && *herald_client_last_error(c) ? herald_client_last_error(c)
                                              : herald_strerror(rc));
    return 1;
}

int main(void)
{
    const char *gateway = getenv("HERALD_GATEWAY"), *tenant = getenv("HERALD_TENANT");
    const char *members[] = {"alice"};
    uint8_t secret[HERALD_TOKEN_SECRET_LEN];
    char token[HERALD_TOKEN_MAX];
    herald_client *c = NULL;
    herald_conv_info conv = {0};
    herald_ack ack = {0};
    herald_event *ev = NULL;
    int rc, status = 1;

    if (!gateway || !tenant) {
        fprintf(stderr, "set HERALD_GATEWAY, HERALD_TENANT and HERALD_SECRET\n");
        return 2;
    }
    /* An app server mints a token for each user it has logged in. */
    rc = herald_token_secret_from_hex(getenv("HERALD_SECRET"), secret);
    if (rc == 0)
        rc = herald_token_mint(secret, sizeof secret, tenant, "alice", 3600, false,
                               token, sizeof token);
    explicit_bzero(secret, sizeof secret);
    if (rc)
        return fail("token", rc, NULL);

    rc = herald_client_connect(gateway, token, NULL, &c);
    if (rc)
        return fail("connect", rc, NULL);
    printf("connected as %s@%s\n", herald_client_user(c), herald_client_tenant(c));

    rc = herald_client_conv_create(c, "group", NULL, members, 1, &conv);
    if (rc) {
        status = fail("conv create", rc, c);
        goto out_client;
    }
    rc = herald_client_send(c, conv.id, NULL, "hello", 5, 0, &ack);
    if (rc) {
        status = fail("send", rc, c);
        goto out_conv;
    }
    printf("ack %s seq %" PRIu64 "\n", conv.id, ack.seq);

    /* The push of our own message (every connection of a member gets it). */
    while ((rc = herald_client_next_event(c, 5000, &ev)) == 0) {
        bool mine = ev->type == HERALD_EV_MSG && herald_str_eq(ev->msg.conv, conv.id) &&
                    ev->msg.seq == ack.seq;
        if (mine)
            printf("push %s seq %" PRIu64 " from %.*s: %s\n", conv.id, ev->msg.seq,
                   (int)ev->msg.from.len, ev->msg.from.ptr, ev->msg.body.ptr);
        herald_event_free(ev);
        if (mine)
            break;
    }
    status = rc ? fail("next event", rc, c) : 0;

out_conv:
    herald_conv_info_free(&conv);
out_client:
    herald_client_close(c);
    return status;
}
