/* tlsio.c — see tlsio.h. */
#include "tlsio.h"

#include <errno.h>
#include <mbedtls/net_sockets.h>
#include <mbedtls/ssl.h>
#include <sys/socket.h>
#include <sys/types.h>

int tlsio_send(void *ctx, const unsigned char *buf, size_t len)
{
    ssize_t n = send(*(const int *)ctx, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_WRITE;
    return MBEDTLS_ERR_NET_SEND_FAILED;
}

int tlsio_recv(void *ctx, unsigned char *buf, size_t len)
{
    ssize_t n = recv(*(const int *)ctx, buf, len, MSG_DONTWAIT);
    if (n >= 0)
        return (int)n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return MBEDTLS_ERR_SSL_WANT_READ;
    return MBEDTLS_ERR_NET_RECV_FAILED;
}
