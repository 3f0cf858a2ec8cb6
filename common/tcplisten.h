/*
 * tcplisten.h — a non-blocking TCP listening socket on "HOST:PORT" (HOST
 * may be [v6]; port 0 picks a free one), and the "ip:port" name of an
 * accepted peer. Used by the session tier's listeners and the HTTP server.
 *
 * Threads: reentrant, no global state.
 */
#ifndef HERALD_TCPLISTEN_H
#define HERALD_TCPLISTEN_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* Binds (SO_REUSEADDR) and listens with this backlog; *fd_out (non-blocking,
 * close-on-exec) and *port_out (the bound port) on success. 0,
 * HERALD_EINVAL (not HOST:PORT, or the host does not resolve), HERALD_EIO
 * (socket, bind or listen failed; errno kept). */
int tcp_listen(const char *addr, int backlog, int *fd_out, uint16_t *port_out);

/* "a.b.c.d:port" or "[v6]:port" of ss into out (always NUL-terminated). */
void tcp_peer_name(const struct sockaddr_storage *ss, char *out, size_t n);

#endif
