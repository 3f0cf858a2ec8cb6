/*
 * session.h — who a request runs as: the identity a verified HELLO token
 * established, and the session's do-not-disturb state.
 *
 * The session tier keeps one per connection; the request service reads it
 * (and HELLO / DND write it) through the pointer it is handed with each
 * request; a node keeps one per forwarded request, filled from what the
 * gateway sends. Plain data, owned by whoever holds it; loop thread only.
 */
#ifndef HERALD_SESSION_H
#define HERALD_SESSION_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/time.h>

#include "token.h"

typedef struct session {
    bool authed;                   /* a HELLO was verified */
    bool admin;                    /* the token has the tenant-admin role */
    uint64_t dnd_until;            /* do-not-disturb ends (ms since the epoch; 0 off) */
    char tenant[TOKEN_ID_MAX + 1]; /* from the verified token */
    char user[TOKEN_ID_MAX + 1];   /* from the verified token */
} session;

/* Milliseconds since the Unix epoch (real time: commit timestamps, DND). */
static inline uint64_t session_now_ms(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

/* True when a message with msg_flags should reach this session silently:
 * its user is in do-not-disturb and the message is not urgent. */
static inline bool session_silenced(const session *s, uint32_t msg_flags, uint64_t now_ms)
{
    return s->dnd_until > now_ms && !(msg_flags & HERALD_MSGF_URGENT);
}

#endif
