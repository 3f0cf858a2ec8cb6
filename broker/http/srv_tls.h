/*
 * srv_tls.h — server-side TLS for the listeners of a process (mbedTLS over a
 * connection's non-blocking socket): the session tier's client ports and the
 * HTTP server (http_srv.h). The gw_ names are its first user's, kept.
 *
 * gateway.tls_cert names one PEM file holding the server certificate (and
 * its chain) followed by its private key; when it is set the client port
 * speaks only TLS (1.2, as Debian's mbedTLS 2.28 offers). The handshake runs
 * inside the first reads: the connection's read and write paths call
 * gw_tls_read / gw_tls_write instead of recv / send, and nothing else in the
 * gateway knows whether a connection is encrypted.
 *
 * Threads: the loop thread. One gw_tls per gateway, one session per
 * connection.
 */
#ifndef HERALD_GATEWAY_GW_TLS_H
#define HERALD_GATEWAY_GW_TLS_H

#include <stddef.h>
#include <sys/types.h>

typedef struct gw_tls gw_tls;
typedef struct gw_tls_session gw_tls_session;

#define GW_TLS_AGAIN (-1)      /* nothing now: wait until the socket is readable */
#define GW_TLS_WANT_WRITE (-2) /* the handshake must write first: wait for writable */
#define GW_TLS_ERROR (-3)      /* the session is over (bad handshake, bad record) */

/* Loads the certificate chain and key from cert_file. 0 and *out, or
 * HERALD_EINVAL with the reason in err (file, parse error, key mismatch),
 * HERALD_ENOMEM. */
int gw_tls_create(const char *cert_file, gw_tls **out, char *err, size_t errlen);
void gw_tls_destroy(gw_tls *t); /* NULL-safe; after every session is freed */

/* A server session over fd (not owned). 0, HERALD_ENOMEM, HERALD_EINTERNAL. */
int gw_tls_session_new(gw_tls *t, int fd, gw_tls_session **out);
/* Sends close_notify (best effort) and frees. NULL-safe. */
void gw_tls_session_free(gw_tls_session *s);

/* Plaintext in: > 0 bytes, 0 the peer closed, or GW_TLS_AGAIN /
 * GW_TLS_WANT_WRITE / GW_TLS_ERROR. */
ssize_t gw_tls_read(gw_tls_session *s, void *buf, size_t n);
/* Plaintext out: > 0 bytes taken, GW_TLS_AGAIN (socket full: wait for
 * writable), GW_TLS_ERROR. */
ssize_t gw_tls_write(gw_tls_session *s, const void *buf, size_t n);
/* Decrypted bytes already held (read them before waiting for the socket). */
size_t gw_tls_pending(const gw_tls_session *s);
/* The last error as text (for the close log line). */
const char *gw_tls_last_error(const gw_tls_session *s);

#endif
