/* log.c — see log.h. */
#include "log.h"

#include <stdarg.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

/* Start-up configuration; written before threads start, read-only after. */
static log_level g_level = LOG_INFO;
static FILE *g_sink;

static const char *const level_names[] = {"debug", "info", "warn", "error", "off"};

void log_set_level(log_level lvl) { g_level = lvl; }
void log_set_sink(FILE *f) { g_sink = f; }

int log_level_parse(const char *s, log_level *out)
{
    for (int i = 0; i <= LOG_OFF; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (log_level)i;
            return 0;
        }
    }
    return -1;
}

int log_enabled(log_level lvl) { return lvl >= g_level && lvl < LOG_OFF; }

/* Appends s to line[*pos..cap) as JSON string content (no quotes). */
static void escape_into(char *line, size_t cap, size_t *pos, const char *s)
{
    for (; *s && *pos + 7 < cap; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            line[(*pos)++] = '\\';
            line[(*pos)++] = (char)c;
        } else if (c < 0x20) {
            *pos += (size_t)snprintf(line + *pos, cap - *pos, "\\u%04x", c);
        } else {
            line[(*pos)++] = (char)c;
        }
    }
}

void log_write(log_level lvl, const char *id, const char *fmt, ...)
{
    char msg[1024];
    char line[2400];
    struct timeval tv;
    struct tm tm;
    size_t pos;
    va_list ap;

    if (!log_enabled(lvl))
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);

    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    pos = strftime(line, sizeof line, "{\"ts\":\"%Y-%m-%dT%H:%M:%S", &tm);
    pos += (size_t)snprintf(line + pos, sizeof line - pos,
                            ".%03ldZ\",\"lvl\":\"%s\",\"id\":\"", (long)(tv.tv_usec / 1000),
                            level_names[lvl]);
    escape_into(line, sizeof line, &pos, id);
    pos += (size_t)snprintf(line + pos, sizeof line - pos, "\",\"msg\":\"");
    escape_into(line, sizeof line, &pos, msg);
    snprintf(line + pos, sizeof line - pos, "\"}\n");
    fputs(line, g_sink ? g_sink : stderr);
    fflush(g_sink ? g_sink : stderr);
}
