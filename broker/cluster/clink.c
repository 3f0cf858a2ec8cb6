/* clink.c — see clink.h. */
#include "clink.h"

#include <errno.h>
#include <herald/error.h>
#include <nng/supplemental/tls/tls.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLINK_URL_MAX 300

struct clink {
    char ca[1024];    /* CA file */
    char cert[1024];  /* certificate + key file */
    nng_tls_config *server; /* for listeners (client certificate required) */
};

/* A configuration in mode with the CA and our certificate. */
static int make_config(const clink *t, nng_tls_mode mode, const char *peer,
                       nng_tls_config **out)
{
    nng_tls_config *c;
    int rv = nng_tls_config_alloc(&c, mode);
    if (rv)
        return rv;
    if ((rv = nng_tls_config_auth_mode(c, NNG_TLS_AUTH_MODE_REQUIRED)) != 0 ||
        (rv = nng_tls_config_ca_file(c, t->ca)) != 0 ||
        (rv = nng_tls_config_cert_key_file(c, t->cert, NULL)) != 0 ||
        (peer && (rv = nng_tls_config_server_name(c, peer)) != 0)) {
        nng_tls_config_free(c);
        return rv;
    }
    *out = c;
    return 0;
}

int clink_create(const char *ca_file, const char *cert_file, clink **out, char *err,
                 size_t errlen)
{
    clink *t;
    FILE *f;
    int rv;

    *out = NULL;
    err[0] = '\0';
    if (!ca_file || !*ca_file || !cert_file || !*cert_file) {
        snprintf(err, errlen, "a CA file and a certificate file are both needed");
        return HERALD_EINVAL;
    }
    for (int i = 0; i < 2; i++) {
        const char *p = i ? cert_file : ca_file;
        if (!(f = fopen(p, "r"))) {
            snprintf(err, errlen, "%s: %s", p, strerror(errno));
            return HERALD_EINVAL;
        }
        fclose(f);
    }
    t = calloc(1, sizeof *t);
    if (!t)
        return HERALD_ENOMEM;
    if (snprintf(t->ca, sizeof t->ca, "%s", ca_file) >= (int)sizeof t->ca ||
        snprintf(t->cert, sizeof t->cert, "%s", cert_file) >= (int)sizeof t->cert) {
        snprintf(err, errlen, "path too long");
        free(t);
        return HERALD_EINVAL;
    }
    rv = make_config(t, NNG_TLS_MODE_SERVER, NULL, &t->server);
    if (rv) {
        snprintf(err, errlen, "%s / %s: %s (PEM files: the CA; the certificate followed by "
                 "its private key)", ca_file, cert_file, nng_strerror(rv));
        free(t);
        return HERALD_EINVAL;
    }
    *out = t;
    return 0;
}

void clink_destroy(clink *t)
{
    if (!t)
        return;
    nng_tls_config_free(t->server);
    free(t);
}

/* "tcp://…" → "tls+tcp://…" when t is set. */
static int link_url(const char *url, const clink *t, char *out, size_t cap)
{
    const char *rest = strncmp(url, "tcp://", 6) == 0 ? url + 6 : NULL;
    int n = t && rest ? snprintf(out, cap, "tls+tcp://%s", rest) : snprintf(out, cap, "%s", url);
    return n > 0 && (size_t)n < cap ? 0 : NNG_EINVAL;
}

int clink_listen(nng_socket s, const char *url, const clink *t, int *port_out)
{
    char u[CLINK_URL_MAX];
    nng_listener l;
    int rv = link_url(url, t, u, sizeof u);

    if (rv == 0)
        rv = nng_listener_create(&l, s, u);
    if (rv)
        return rv;
    if (t && (rv = nng_listener_set_ptr(l, NNG_OPT_TLS_CONFIG, t->server)) != 0) {
        nng_listener_close(l);
        return rv;
    }
    rv = nng_listener_start(l, 0);
    if (rv) {
        nng_listener_close(l);
        return rv;
    }
    if (port_out)
        nng_listener_get_int(l, NNG_OPT_TCP_BOUND_PORT, port_out);
    return 0;
}

int clink_dial(nng_socket s, const char *url, const clink *t, const char *peer)
{
    char u[CLINK_URL_MAX];
    nng_dialer d;
    nng_tls_config *c = NULL;
    int rv = link_url(url, t, u, sizeof u);

    if (rv == 0)
        rv = nng_dialer_create(&d, s, u);
    if (rv)
        return rv;
    if (t) {
        rv = make_config(t, NNG_TLS_MODE_CLIENT, peer, &c);
        if (rv == 0)
            rv = nng_dialer_set_ptr(d, NNG_OPT_TLS_CONFIG, c);
        nng_tls_config_free(c); /* the dialer holds its own reference */
        if (rv) {
            nng_dialer_close(d);
            return rv;
        }
    }
    rv = nng_dialer_start(d, NNG_FLAG_NONBLOCK);
    if (rv)
        nng_dialer_close(d);
    return rv;
}
