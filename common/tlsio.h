/*
 * tlsio.h — mbedTLS's BIO callbacks over a non-blocking socket, for the
 * gateway's client port (broker/session/gw_tls.c) and libherald
 * (common/client/tls.c) alike.
 *
 * ctx points to the socket's int descriptor. A would-block (or EINTR)
 * becomes MBEDTLS_ERR_SSL_WANT_WRITE / _WANT_READ, other errors
 * MBEDTLS_ERR_NET_SEND_FAILED / _RECV_FAILED. Reentrant.
 */
#ifndef HERALD_COMMON_TLSIO_H
#define HERALD_COMMON_TLSIO_H

#include <stddef.h>

int tlsio_send(void *ctx, const unsigned char *buf, size_t len);
int tlsio_recv(void *ctx, unsigned char *buf, size_t len);

#endif
