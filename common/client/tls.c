/* tls.c — see tls.h. */
#include "tls.h"
#include "tlsio.h"

#include <errno.h>
#include <herald/error.h>
#include <limits.h>
#include <mbedtls/ctr_drbg.h>
#include <mbedtls/entropy.h>
#include <mbedtls/error.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <mbedtls/x509_crt.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

struct client_tls {
    mbedtls_ssl_context ssl;
    mbedtls_ssl_config conf;
    mbedtls_x509_crt ca;
    mbedtls_entropy_context entropy;
    mbedtls_ctr_drbg_context drbg;
    int fd;
    bool open;           /* handshake done */
};

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void client_tls_close(client_tls *t)
{
    if (!t)
        return;
    if (t->open)
        mbedtls_ssl_close_notify(&t->ssl);
    mbedtls_ssl_free(&t->ssl);
    mbedtls_ssl_config_free(&t->conf);
    mbedtls_x509_crt_free(&t->ca);
    mbedtls_ctr_drbg_free(&t->drbg);
    mbedtls_entropy_free(&t->entropy);
    free(t);
}

int client_tls_open(int fd, const char *host, const char *ca_file, uint64_t deadline,
                    client_tls **out, char *err, size_t errlen)
{
    client_tls *t = calloc(1, sizeof *t);
    const char *ca = ca_file && *ca_file ? ca_file : CLIENT_TLS_CA_DEFAULT;
    int rv, rc = HERALD_EIO;

    *out = NULL;
    err[0] = '\0';
    if (!t)
        return HERALD_ENOMEM;
    t->fd = fd;
    mbedtls_ssl_init(&t->ssl);
    mbedtls_ssl_config_init(&t->conf);
    mbedtls_x509_crt_init(&t->ca);
    mbedtls_entropy_init(&t->entropy);
    mbedtls_ctr_drbg_init(&t->drbg);
    if (mbedtls_x509_crt_parse_file(&t->ca, ca) < 0) {
        snprintf(err, errlen, "cannot read the CA file %s", ca);
        rc = HERALD_EINVAL;
        goto fail;
    }
    if (mbedtls_ctr_drbg_seed(&t->drbg, mbedtls_entropy_func, &t->entropy,
                              (const unsigned char *)"libherald", 9) != 0 ||
        mbedtls_ssl_config_defaults(&t->conf, MBEDTLS_SSL_IS_CLIENT, MBEDTLS_SSL_TRANSPORT_STREAM,
                                    MBEDTLS_SSL_PRESET_DEFAULT) != 0)
        goto fail;
    mbedtls_ssl_conf_authmode(&t->conf, MBEDTLS_SSL_VERIFY_REQUIRED);
    mbedtls_ssl_conf_ca_chain(&t->conf, &t->ca, NULL);
    mbedtls_ssl_conf_rng(&t->conf, mbedtls_ctr_drbg_random, &t->drbg);
    mbedtls_ssl_conf_min_version(&t->conf, MBEDTLS_SSL_MAJOR_VERSION_3,
                                 MBEDTLS_SSL_MINOR_VERSION_3);
    if (mbedtls_ssl_setup(&t->ssl, &t->conf) != 0 || mbedtls_ssl_set_hostname(&t->ssl, host) != 0)
        goto fail;
    mbedtls_ssl_set_bio(&t->ssl, &t->fd, tlsio_send, tlsio_recv, NULL);
    while ((rv = mbedtls_ssl_handshake(&t->ssl)) != 0) {
        struct pollfd pf = {.fd = fd};
        uint64_t now = now_ms();
        if (rv != MBEDTLS_ERR_SSL_WANT_READ && rv != MBEDTLS_ERR_SSL_WANT_WRITE) {
            uint32_t flags = mbedtls_ssl_get_verify_result(&t->ssl);
            if (rv == MBEDTLS_ERR_X509_CERT_VERIFY_FAILED && flags) {
                char why[256];
                mbedtls_x509_crt_verify_info(why, sizeof why, "", flags);
                why[strcspn(why, "\n")] = '\0';
                snprintf(err, errlen, "the server's certificate does not verify: %s", why);
                rc = HERALD_EUNAUTHORIZED;
            } else {
                char e[128];
                mbedtls_strerror(rv, e, sizeof e);
                snprintf(err, errlen, "TLS handshake failed: %s", e);
            }
            goto fail;
        }
        if (now >= deadline) {
            rc = HERALD_ETIMEOUT;
            goto fail;
        }
        pf.events = rv == MBEDTLS_ERR_SSL_WANT_READ ? POLLIN : POLLOUT;
        (void)poll(&pf, 1, deadline - now > INT_MAX ? INT_MAX : (int)(deadline - now));
    }
    t->open = true;
    *out = t;
    return 0;
fail:
    client_tls_close(t);
    return rc;
}

static ssize_t map(int rv)
{
    if (rv >= 0)
        return rv;
    switch (rv) {
    case MBEDTLS_ERR_SSL_WANT_READ:
        return CLIENT_TLS_WANT_READ;
    case MBEDTLS_ERR_SSL_WANT_WRITE:
        return CLIENT_TLS_WANT_WRITE;
    case MBEDTLS_ERR_SSL_PEER_CLOSE_NOTIFY:
    case MBEDTLS_ERR_SSL_CONN_EOF:
        return 0;
    default:
        return CLIENT_TLS_ERROR;
    }
}

ssize_t client_tls_send(client_tls *t, const void *p, size_t n)
{
    ssize_t r = map(mbedtls_ssl_write(&t->ssl, p, n));
    return r == 0 ? CLIENT_TLS_ERROR : r; /* a write never "closes" */
}

ssize_t client_tls_recv(client_tls *t, void *p, size_t n) { return map(mbedtls_ssl_read(&t->ssl, p, n)); }

size_t client_tls_pending(const client_tls *t) { return mbedtls_ssl_get_bytes_avail(&t->ssl); }
