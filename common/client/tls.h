/*
 * tls.h — libherald's TLS (mbedTLS) over its non-blocking socket, for
 * addresses written tls://HOST:PORT.
 *
 * The server's certificate must chain to the CA file given
 * (herald_client_opts.ca_file; default the system's CA bundle) and name
 * HOST. TLS 1.2.
 *
 * Threads: a session belongs to its handle's thread.
 */
#ifndef HERALD_CLIENT_TLS_H
#define HERALD_CLIENT_TLS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct client_tls client_tls;

#define CLIENT_TLS_WANT_READ (-1)  /* wait until the socket is readable */
#define CLIENT_TLS_WANT_WRITE (-2) /* wait until the socket is writable */
#define CLIENT_TLS_ERROR (-3)      /* the session is over */

#define CLIENT_TLS_CA_DEFAULT "/etc/ssl/certs/ca-certificates.crt"

/* Runs the handshake on fd (connected, non-blocking, not owned) before
 * deadline (monotonic ms, client_now_ms). 0 and *out; HERALD_ETIMEOUT;
 * HERALD_EUNAUTHORIZED (the certificate does not verify: text in err);
 * HERALD_EIO (the handshake failed); HERALD_EINVAL (the CA file cannot be
 * read); HERALD_ENOMEM. */
int client_tls_open(int fd, const char *host, const char *ca_file, uint64_t deadline,
                    client_tls **out, char *err, size_t errlen);
/* Sends close_notify (best effort) and frees. NULL-safe. */
void client_tls_close(client_tls *t);

/* > 0 bytes, 0 (recv: the server closed), or a CLIENT_TLS_* code. */
ssize_t client_tls_send(client_tls *t, const void *p, size_t n);
ssize_t client_tls_recv(client_tls *t, void *p, size_t n);
/* Decrypted bytes held (read them before polling the socket). */
size_t client_tls_pending(const client_tls *t);

#endif
