/* json.c — see json.h. */
#include "json.h"

#include <herald/error.h>
#include <stdio.h>
#include <string.h>

void json_init(json_w *w, herald_buf *b)
{
    memset(w, 0, sizeof *w);
    w->b = b;
    w->first[0] = true;
}

void json_init_file(json_w *w, FILE *f)
{
    memset(w, 0, sizeof *w);
    w->f = f;
    w->first[0] = true;
}

static void raw(json_w *w, const char *p, size_t n)
{
    if (w->failed || n == 0)
        return;
    if (w->b ? herald_buf_append(w->b, p, n) != 0 : fwrite(p, 1, n, w->f) != n)
        w->failed = true;
}

/* Separator before a value or key. */
static void sep(json_w *w)
{
    if (w->after_key) {
        w->after_key = false;
        return;
    }
    if (!w->first[w->depth])
        raw(w, ",", 1);
    w->first[w->depth] = false;
}

static void open_c(json_w *w, char c)
{
    sep(w);
    raw(w, &c, 1);
    if (w->depth + 1 >= JSON_DEPTH_MAX) {
        w->failed = true;
        return;
    }
    w->first[++w->depth] = true;
}

static void close_c(json_w *w, char c)
{
    if (w->depth > 0)
        w->depth--;
    else
        w->failed = true; /* a close without an open: the caller's bug */
    raw(w, &c, 1);
}

void json_raw(json_w *w, const char *p, size_t n)
{
    sep(w);
    if (n == 0)
        w->failed = true; /* not a JSON value */
    raw(w, p, n);
}

void json_obj(json_w *w) { open_c(w, '{'); }
void json_obj_end(json_w *w) { close_c(w, '}'); }
void json_arr(json_w *w) { open_c(w, '['); }
void json_arr_end(json_w *w) { close_c(w, ']'); }

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid. */
static size_t utf8_len(const unsigned char *p, size_t n)
{
    size_t len;
    uint32_t cp;
    if (p[0] < 0x80)
        return 1;
    if ((p[0] & 0xe0) == 0xc0) {
        len = 2;
        cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        len = 3;
        cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        len = 4;
        cp = p[0] & 0x07;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (p[i] & 0x3f);
    }
    /* Overlong forms, surrogates, beyond U+10FFFF. */
    if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
        return 0;
    return len;
}

void json_str(json_w *w, const char *p, size_t n)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    sep(w);
    raw(w, "\"", 1);
    while (i < n) {
        unsigned char c = s[i];
        size_t l;
        if (c == '"' || c == '\\') {
            char e[2] = {'\\', (char)c};
            raw(w, e, 2);
            i++;
        } else if (c < 0x20) {
            char e[8];
            const char *named = c == '\n' ? "\\n" : c == '\t' ? "\\t" : c == '\r' ? "\\r" : NULL;
            if (named)
                raw(w, named, 2);
            else
                raw(w, e, (size_t)snprintf(e, sizeof e, "\\u%04x", c));
            i++;
        } else if ((l = utf8_len(s + i, n - i)) != 0) {
            raw(w, p + i, l);
            i += l;
        } else {
            raw(w, "\xef\xbf\xbd", 3); /* U+FFFD */
            i++;
        }
    }
    raw(w, "\"", 1);
}

void json_strz(json_w *w, const char *z) { json_str(w, z ? z : "", z ? strlen(z) : 0); }

void json_key(json_w *w, const char *k)
{
    json_strz(w, k);
    raw(w, ":", 1);
    w->after_key = true;
}

void json_u64(json_w *w, uint64_t v)
{
    char t[24];
    sep(w);
    raw(w, t, (size_t)snprintf(t, sizeof t, "%llu", (unsigned long long)v));
}

void json_i64(json_w *w, int64_t v)
{
    char t[24];
    sep(w);
    raw(w, t, (size_t)snprintf(t, sizeof t, "%lld", (long long)v));
}

void json_bool(json_w *w, bool v)
{
    sep(w);
    raw(w, v ? "true" : "false", v ? 4 : 5);
}

int json_done(const json_w *w)
{
    if (!w->failed)
        return 0;
    return w->b ? HERALD_ENOMEM : HERALD_EIO;
}
