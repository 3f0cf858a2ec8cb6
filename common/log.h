/*
 * log.h — leveled logging to one sink (stderr by default) as JSON lines:
 *   {"ts":"2026-11-22T22:55:34.123Z","lvl":"warn","id":"gw.slow","msg":"…"}
 * `id` is a short stable message id operators can grep and alert on.
 * The level check happens before any formatting.
 *
 * Thread safety: log_write may be called from any thread (one fputs-sized
 * write per line); log_set_* are for start-up only.
 */
#ifndef HERALD_COMMON_LOG_H
#define HERALD_COMMON_LOG_H

#include <stdio.h>

typedef enum log_level {
    LOG_DEBUG = 0,
    LOG_INFO = 1,
    LOG_WARN = 2,
    LOG_ERROR = 3,
    LOG_OFF = 4,
} log_level;

/* Start-up configuration (not thread-safe). Default: LOG_INFO on stderr. */
void log_set_level(log_level lvl);
void log_set_sink(FILE *f);
/* "debug" | "info" | "warn" | "error" | "off" → 0; unknown → -1. */
int log_level_parse(const char *s, log_level *out);

/* True when lvl would be written: lets callers skip costly argument work. */
int log_enabled(log_level lvl);

/* Writes one line. `id` is a short message id ("gw.accept"); fmt is printf. */
void log_write(log_level lvl, const char *id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#define LOG_AT_(lvl, id, ...)                                                 \
    do {                                                                      \
        if (log_enabled(lvl))                                                 \
            log_write(lvl, id, __VA_ARGS__);                                  \
    } while (0)
#define log_debug(id, ...) LOG_AT_(LOG_DEBUG, id, __VA_ARGS__)
#define log_info(id, ...) LOG_AT_(LOG_INFO, id, __VA_ARGS__)
#define log_warn(id, ...) LOG_AT_(LOG_WARN, id, __VA_ARGS__)
#define log_error(id, ...) LOG_AT_(LOG_ERROR, id, __VA_ARGS__)

#endif
