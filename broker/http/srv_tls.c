/* gw_tls.c — see gw_tls.h. */
#include "srv_tls.h"
#include "tlsio.h"

#include <errno.h>
#include <herald/error.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/pk.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

struct gw_tls {
    mbedtls_ssl_config conf;    /* server, TLS 1.2, no client certificate asked */
    mbedtls_x509_crt chain;     /* our certificate and its chain */
    mbedtls_pk_context key;     /* its key */
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
};

struct gw_tls_session {
    mbedtls_ssl_context ssl;
    int fd;                     /* the connection's socket */
    int last;                   /* last mbedTLS error (0 none) */
    char errtext[96];           /* its text, for logs */
};

int gw_tls_create(const char *cert_file, gw_tls **out, char *err, size_t errlen)
{
    gw_tls *t = calloc(1, sizeof *t);
    int rv;

    *out = NULL;
    if (!t)
        return HERALD_ENOMEM;
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->chain);
    mbedtls_pk_init(&t->key);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    if ((rv = mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                                    (const unsigned char *)"herald-gw", 9)) != 0)
        goto fail;
    if ((rv = mbedtls_x509_crt_parse_file(&t->chain, cert_file)) != 0) {
        char e[96];
        mbedtls_strerror(rv, e, sizeof e);
        snprintf(err, errlen, "%s: no certificate read (%s)", cert_file, e);
        goto fail_quiet;
    }
    if ((rv = mbedtls_pk_parse_keyfile(&t->key, cert_file, NULL)) != 0) {
        char e[96];
        mbedtls_strerror(rv, e, sizeof e);
        snprintf(err, errlen, "%s: no private key read after the certificate (%s)", cert_file,
                 e);
        goto fail_quiet;
    }
    if ((rv = mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_SERVER,
                                          MBEDTLS_SSL_TRANSPORT_STREAM,
                                          MBEDTLS_SSL_PRESET_DEFAULT)) != 0)
        goto fail;
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3); /* TLS 1.2 */
    mbedtls_ssl_conf_renegotiation(&t->conf, MBEDTLS_SSL_RENEGOTIATION_DISABLED);
    if ((rv = mbedtls_ssl_conf_own_cert(&t->conf, &t->chain, &t->key)) != 0) {
        snprintf(err, errlen, "%s: the private key does not match the certificate", cert_file);
        goto fail_quiet;
    }
    *out = t;
    return 0;
fail: {
    char e[96];
    mbedtls_strerror(rv, e, sizeof e);
    snprintf(err, errlen, "%s: %s", cert_file, e);
}
fail_quiet:
    gw_tls_destroy(t);
    return HERALD_EINVAL;
}

void gw_tls_destroy(gw_tls *t)
{
    if (!t)
        return;
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->chain);
    mbedtls_pk_free(&t->key);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

int gw_tls_session_new(gw_tls *t, int fd, gw_tls_session **out)
{
    gw_tls_session *s = calloc(1, sizeof *s);
    *out = NULL;
    if (!s)
        return HERALD_ENOMEM;
    mbedtls_ssl_init(&s->ssl);
    if (mbedtls_ssl_setup(&s->ssl, &t->conf) != 0) {
        mbedtls_ssl_free(&s->ssl);
        free(s);
        return HERALD_ENOMEM;
    }
    s->fd = fd;
    mbedtls_ssl_set_bio(&s->ssl, &s->fd, tlsio_send, tlsio_recv, NULL);
    *out = s;
    return 0;
}

void gw_tls_session_free(gw_tls_session *s)
{
    if (!s)
        return;
    if (!s->last)
        mbedtls_ssl_close_notify(&s->ssl); /* best effort: the socket may be full */
    mbedtls_ssl_free(&s->ssl);
    free(s);
}

static ssize_t map(gw_tls_session *s, int rv)
{
    switch (rv) {
    case MBEDTLS_ERR_SSL_WANT_READ:
        return GW_TLS_AGAIN;
    case MBEDTLS_ERR_SSL_WANT_WRITE:
        return GW_TLS_WANT_WRITE;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_SSL_CONN_EOF:
        return 0;
    default:
        s->last = rv;
        mbedtls_strerror(rv, s->errtext, sizeof s->errtext);
        return GW_TLS_ERROR;
    }
}

ssize_t gw_tls_read(gw_tls_session *s, void *buf, size_t n)
{
    int rv = mbedtls_ssl_read(&s->ssl, buf, n); /* runs the handshake first */
    return rv >= 0 ? rv : map(s, rv);
}

ssize_t gw_tls_write(gw_tls_session *s, const void *buf, size_t n)
{
    int rv = mbedtls_ssl_write(&s->ssl, buf, n);
    if (rv >= 0)
        return rv;
    rv = (int)map(s, rv);
    return rv == GW_TLS_WANT_WRITE ? GW_TLS_AGAIN : rv; /* both: wait for writable */
}

size_t gw_tls_pending(const gw_tls_session *s) { return mbedtls_ssl_get_bytes_avail(&s->ssl); }

const char *gw_tls_last_error(const gw_tls_session *s)
{
    return s->last ? s->errtext : "closed";
}
