/*
 * linkprobe.c — an outsider at a node's ports, for it_tls.sh.
 *
 *   linkprobe req URL [--ca F --cert F --peer NAME] [--tenant T --user U]
 *                     [--timeout MS]
 *       Sends one NW_CLIENT request carrying a STATUS frame in the name of
 *       tenant T, user U with the admin flag and no token (what a forged
 *       gateway would send) and prints "status CODE" (the reply's status, or
 *       the code of the ERROR frame it carries), or "no reply" when nothing
 *       came back before the timeout (the link refused us).
 *   linkprobe sub URL [--ca F --cert F --peer NAME] [--timeout MS]
 *       Subscribes to a node's events and prints "received N bytes" for the
 *       first batch, or "no reply".
 *
 * Without --ca the link is plaintext (tcp://); with it, tls+tcp with the
 * given CA and (optionally) a client certificate. Exit 0 when something
 * came back, 3 on "no reply", 2 on usage or setup errors.
 */
#include <herald/error.h>
#include <herald/protocol.h>
#include <nng/nng.h>
#include <nng/protocol/pubsub0/sub.h>
#include <nng/protocol/reqrep0/req.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nwire.h"

static int usage(void)
{
    fputs("usage: linkprobe req|sub URL [--ca F --cert F --peer NAME] [--tenant T --user U] "
          "[--timeout MS]\n",
          stderr);
    return 2;
}

int main(int argc, char **argv)
{
    const char *mode, *url, *ca = NULL, *cert = NULL, *peer = NULL, *tenant = "demo",
                            *user = "mallory";
    char turl[512];
    int timeout = 2000, rv;
    nng_socket s;
    nng_dialer d;
    nng_tls_config *tc = NULL;
    nng_msg *m = NULL;

    if (argc < 3)
        return usage();
    mode = argv[1];
    url = argv[2];
    for (int i = 3; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--ca") == 0)
            ca = argv[i + 1];
        else if (strcmp(argv[i], "--cert") == 0)
            cert = argv[i + 1];
        else if (strcmp(argv[i], "--peer") == 0)
            peer = argv[i + 1];
        else if (strcmp(argv[i], "--tenant") == 0)
            tenant = argv[i + 1];
        else if (strcmp(argv[i], "--user") == 0)
            user = argv[i + 1];
        else if (strcmp(argv[i], "--timeout") == 0)
            timeout = atoi(argv[i + 1]);
        else
            return usage();
    }
    if (strcmp(mode, "req") == 0)
        rv = nng_req0_open(&s);
    else if (strcmp(mode, "sub") == 0)
        rv = nng_sub0_open(&s);
    else
        return usage();
    if (rv)
        return 2;
    if (strncmp(url, "tcp://", 6) != 0)
        return usage();
    snprintf(turl, sizeof turl, "%s%s", ca ? "tls+tcp://" : "tcp://", url + 6);
    if (nng_dialer_create(&d, s, turl) != 0)
        return 2;
    if (ca) {
        if (nng_tls_config_alloc(&tc, NNG_TLS_MODE_CLIENT) != 0 ||
            nng_tls_config_auth_mode(tc, NNG_TLS_AUTH_MODE_REQUIRED) != 0 ||
            nng_tls_config_ca_file(tc, ca) != 0 ||
            (cert && nng_tls_config_cert_key_file(tc, cert, NULL) != 0) ||
            (peer && nng_tls_config_server_name(tc, peer) != 0) ||
            nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, tc) != 0) {
            fprintf(stderr, "linkprobe: bad TLS files\n");
            return 2;
        }
    }
    nng_socket_set_ms(s, NNG_OPT_RECVTIMEO, timeout);
    nng_socket_set_ms(s, NNG_OPT_SENDTIMEO, timeout);
    nng_socket_set_ms(s, NNG_OPT_RECONNMINT, 50);
    if (nng_dialer_start(d, NNG_FLAG_NONBLOCK) != 0)
        return 2;
    if (strcmp(mode, "sub") == 0) {
        nng_socket_set(s, NNG_OPT_SUB_SUBSCRIBE, "", 0);
        rv = nng_recvmsg(s, &m, 0);
        if (rv == 0)
            printf("received %zu bytes\n", nng_msg_len(m));
        else
            puts("no reply");
        if (m)
            nng_msg_free(m);
        nng_close(s);
        if (tc)
            nng_tls_config_free(tc);
        return rv ? 3 : 0;
    }
    {
        herald_frame f = {.type = HERALD_FT_STATUS, .rid = 1};
        herald_buf fb = {0}, rb = {0};
        nw_request q = {.kind = NW_CLIENT, .from = 1, .tenant = herald_str_z(tenant),
                        .user = herald_str_z(user), .admin = true};
        nw_reply r;
        int out = 0;
        if (herald_frame_encode(&f, &fb) != 0)
            return 2;
        q.frame = (herald_str){.ptr = (const char *)fb.data + HERALD_FRAME_HEADER,
                               .len = (uint32_t)(fb.len - HERALD_FRAME_HEADER)};
        if (nw_request_encode(&q, &rb) != 0) {
            out = 2;
            goto done;
        }
        rv = nng_send(s, rb.data, rb.len, 0);
        if (rv == 0)
            rv = nng_recvmsg(s, &m, 0);
        if (rv) {
            puts("no reply");
            out = 3;
            goto done;
        }
        if (nw_reply_decode(nng_msg_body(m), nng_msg_len(m), &r) != 0) {
            puts("undecodable reply");
            goto done;
        }
        if (r.status == 0 && r.n_frames > 0) {
            herald_frame e;
            if (herald_frame_decode((const uint8_t *)r.frames[0].ptr + HERALD_FRAME_HEADER,
                                    r.frames[0].len - HERALD_FRAME_HEADER, NULL, &e) == 0) {
                printf("status %s (frame %s)\n",
                       e.type == HERALD_FT_ERROR ? herald_err_name((int)e.code) : "OK",
                       herald_frame_type_name(e.type));
                herald_frame_release(&e);
            }
        } else {
            printf("status %s\n", r.status ? herald_err_name(r.status) : "OK");
        }
        nw_reply_release(&r);
    done:
        if (m)
            nng_msg_free(m);
        herald_buf_free(&fb);
        herald_buf_free(&rb);
        nng_close(s);
        if (tc)
            nng_tls_config_free(tc);
        return out;
    }
}
