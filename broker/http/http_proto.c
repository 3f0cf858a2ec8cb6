/* http_proto.c — see http_proto.h. */
#include "http_proto.h"

#include <string.h>

static int lower(int c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

bool http_ieq_n(const char *a, const char *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)a[i]) != lower((unsigned char)b[i]))
            return false;
    return true;
}

bool http_ieq(const char *a, size_t alen, const char *b)
{
    return alen == strlen(b) && http_ieq_n(a, b, alen);
}

bool http_is_sp(char c) { return c == ' ' || c == '\t'; }

/* RFC 9110 tchar. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

bool http_has_token(const char *v, size_t n, const char *tok)
{
    size_t i = 0;
    while (i < n) {
        size_t s, e;
        while (i < n && (http_is_sp(v[i]) || v[i] == ','))
            i++;
        s = i;
        while (i < n && v[i] != ',')
            i++;
        e = i;
        while (e > s && http_is_sp(v[e - 1]))
            e--;
        if (e > s && http_ieq(v + s, e - s, tok))
            return true;
    }
    return false;
}

size_t http_head_end(const uint8_t *p, size_t len)
{
    for (size_t i = 3; i < len; i++)
        if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' && p[i - 3] == '\r')
            return i + 1;
    return 0;
}

static const struct {
    http_method m;
    const char *name;
} methods[] = {
    {HTTP_GET, "GET"},       {HTTP_HEAD, "HEAD"},       {HTTP_POST, "POST"},
    {HTTP_PUT, "PUT"},       {HTTP_DELETE, "DELETE"},   {HTTP_OPTIONS, "OPTIONS"},
    {HTTP_PATCH, "PATCH"},
};

const char *http_method_name(http_method m)
{
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (methods[i].m == m)
            return methods[i].name;
    return "?";
}

/* Decimal digits only, no sign, no overflow past 2^63. */
static bool parse_len(const char *v, size_t n, uint64_t *out)
{
    uint64_t x = 0;
    if (n == 0 || n > 18)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (v[i] < '0' || v[i] > '9')
            return false;
        x = x * 10 + (uint64_t)(v[i] - '0');
    }
    *out = x;
    return true;
}

int http_req_parse(const uint8_t *p, size_t len, size_t head_max, http_req *out)
{
    const char *s = (const char *)p;
    size_t end = http_head_end(p, len < head_max ? len : head_max);
    size_t i, line_end, tok, tgt_s, tgt_e;
    bool host = false, have_len = false, conn_close = false, conn_keep = false;
    unsigned nheaders = 0;

    memset(out, 0, sizeof *out);
    if (!end)
        return len >= head_max ? 431 : HTTP_PARTIAL;
    out->head_len = end;
    /* Request line: METHOD SP target SP HTTP/1.x CRLF. */
    for (line_end = 0; s[line_end] != '\r'; line_end++)
        ;
    if (s[line_end + 1] != '\n')
        return 400;
    for (tok = 0; tok < line_end && is_tchar((unsigned char)s[tok]); tok++)
        ;
    if (tok == 0 || tok > HTTP_METHOD_MAX || tok >= line_end || s[tok] != ' ')
        return 400;
    out->method = HTTP_OTHER;
    for (size_t m = 0; m < sizeof methods / sizeof methods[0]; m++)
        if (strlen(methods[m].name) == tok && memcmp(s, methods[m].name, tok) == 0)
            out->method = methods[m].m;
    tgt_s = tok + 1;
    for (tgt_e = tgt_s; tgt_e < line_end && s[tgt_e] != ' '; tgt_e++) {
        unsigned char c = (unsigned char)s[tgt_e];
        if (c <= 0x20 || c == 0x7f)
            return 400;
    }
    if (tgt_e == tgt_s || tgt_e >= line_end || s[tgt_s] != '/')
        return 400; /* origin form only: no absolute URI, no '*' */
    {
        size_t vlen = line_end - tgt_e - 1;
        const char *v = s + tgt_e + 1;
        if (vlen < 5 || memcmp(v, "HTTP/", 5) != 0)
            return 400;
        if (vlen != 8 || memcmp(v, "HTTP/1.", 7) != 0 || (v[7] != '0' && v[7] != '1'))
            return 505;
        out->http10 = v[7] == '0';
    }
    out->path = s + tgt_s;
    out->path_len = tgt_e - tgt_s;
    {
        const char *q = memchr(out->path, '?', out->path_len);
        if (q) {
            out->query = q + 1;
            out->query_len = (size_t)(out->path + out->path_len - q - 1);
            out->path_len = (size_t)(q - out->path);
        }
    }
    /* Header lines up to the blank line. */
    i = line_end + 2;
    while (i + 2 <= end && !(s[i] == '\r' && s[i + 1] == '\n')) {
        size_t le = i, colon, vs, ve;
        while (s[le] != '\r')
            le++;
        if (s[le + 1] != '\n')
            return 400;
        if (++nheaders > HTTP_MAX_HEADERS)
            return 431;
        for (colon = i; colon < le && is_tchar((unsigned char)s[colon]); colon++)
            ;
        if (colon == i || colon >= le || s[colon] != ':')
            return 400; /* no name, obs-fold, or space before the colon */
        for (size_t k = colon + 1; k < le; k++) {
            unsigned char c = (unsigned char)s[k];
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return 400;
        }
        vs = colon + 1;
        while (vs < le && http_is_sp(s[vs]))
            vs++;
        ve = le;
        while (ve > vs && http_is_sp(s[ve - 1]))
            ve--;
        if (http_ieq(s + i, colon - i, "host")) {
            if (host)
                return 400;
            host = true;
        } else if (http_ieq(s + i, colon - i, "content-length")) {
            uint64_t v;
            if (!parse_len(s + vs, ve - vs, &v) || (have_len && v != out->content_length))
                return 400;
            have_len = true;
            out->content_length = v;
        } else if (http_ieq(s + i, colon - i, "transfer-encoding")) {
            return 501;
        } else if (http_ieq(s + i, colon - i, "connection")) {
            conn_close |= http_has_token(s + vs, ve - vs, "close");
            conn_keep |= http_has_token(s + vs, ve - vs, "keep-alive");
        } else if (http_ieq(s + i, colon - i, "content-type")) {
            out->ctype = s + vs;
            out->ctype_len = ve - vs;
        } else if (http_ieq(s + i, colon - i, "authorization")) {
            if (out->auth)
                return 400;
            out->auth = s + vs;
            out->auth_len = ve - vs;
        }
        i = le + 2;
    }
    if (!out->http10 && !host)
        return 400;
    out->keep_alive = out->http10 ? conn_keep && !conn_close : !conn_close;
    return HTTP_OK;
}

const char *http_reason(int status)
{
    switch (status) {
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 409: return "Conflict";
    case 413: return "Content Too Large";
    case 415: return "Unsupported Media Type";
    case 426: return "Upgrade Required";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return status >= 500 ? "Server Error" : status >= 400 ? "Client Error" : "Unknown";
    }
}
