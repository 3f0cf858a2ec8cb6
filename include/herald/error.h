/*
 * herald/error.h — the one list of Herald error codes.
 *
 * Every Herald call returns 0 on success or one of these codes. The same
 * numbers travel in ERROR frames on the wire (key "code"), so a client sees
 * exactly the code the broker chose. Codes are stable once released: append,
 * never renumber.
 *
 * Thread safety: everything here is pure and may be called from any thread.
 */
#ifndef HERALD_ERROR_H
#define HERALD_ERROR_H

#ifdef __cplusplus
extern "C" {
#endif

/* X(NAME, number, description) */
#define HERALD_ERRORS(X)                                                      \
    X(OK, 0, "success")                                                       \
    X(PROTOCOL, 1, "malformed frame")                                         \
    X(TOO_BIG, 2, "frame exceeds the size limit")                             \
    X(UNAUTHORIZED, 3, "missing or invalid token")                            \
    X(EXPIRED, 4, "token expired")                                            \
    X(FORBIDDEN, 5, "operation not permitted for this user")                  \
    X(NOT_FOUND, 6, "no such object")                                         \
    X(EXISTS, 7, "object already exists")                                     \
    X(INVAL, 8, "invalid argument")                                           \
    X(CAP_EXCEEDED, 9, "conversation member cap exceeded")                    \
    X(NOT_MEMBER, 10, "not a member of the conversation")                     \
    X(RATE_LIMITED, 11, "message rate limit exceeded")                        \
    X(SLOW_CONSUMER, 12, "output buffer limit exceeded, connection closed")   \
    X(IDLE, 13, "idle timeout")                                               \
    X(STORAGE, 14, "storage error; the operation was not committed")          \
    X(NOMEM, 15, "out of memory")                                             \
    X(TIMEOUT, 16, "timed out")                                               \
    X(CLOSED, 17, "connection closed")                                        \
    X(IO, 18, "network or file I/O error")                                    \
    X(NOT_LEADER, 19, "not the leader for this shard")                        \
    X(UNSUPPORTED, 20, "unsupported frame or version")                        \
    X(SHUTDOWN, 21, "server is shutting down")                                \
    X(BUSY, 22, "server busy, retry later")                                   \
    X(INTERNAL, 23, "internal error")                                         \
    X(UNAVAILABLE, 24, "no leader reachable for this shard; retry later")

typedef enum herald_err {
#define HERALD_ERR_ENUM_(name, num, desc) HERALD_E##name = num,
    HERALD_ERRORS(HERALD_ERR_ENUM_)
#undef HERALD_ERR_ENUM_
    HERALD_E_COUNT_
} herald_err;

/* A static English description of `code`; never NULL ("unknown error" for
 * codes this build does not know, e.g. from a newer server). */
const char *herald_strerror(int code);

/* The symbolic name of `code` without the prefix, e.g. "NOT_FOUND";
 * "UNKNOWN" for unknown codes. Static storage, never NULL. */
const char *herald_err_name(int code);

#ifdef __cplusplus
}
#endif
#endif
