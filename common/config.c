/* config.c — see config.h. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#define CFG_LINE_MAX 1024

static const cfg_key *find(const cfg_key *tab, size_t n, const char *key)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(tab[i].name, key) == 0)
            return &tab[i];
    return NULL;
}

/* Parses an unsigned integer with an optional k/M/G (×1024) suffix. */
static bool parse_num(const char *s, bool sizes, uint64_t *out)
{
    char *end;
    unsigned long long v;
    uint64_t mul = 1;
    if (!*s || *s == '-' || *s == '+')
        return false;
    errno = 0;
    v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    if (sizes && *end) {
        switch (*end) {
        case 'k': case 'K': mul = 1024ull; break;
        case 'm': case 'M': mul = 1024ull * 1024; break;
        case 'g': case 'G': mul = 1024ull * 1024 * 1024; break;
        default: return false;
        }
        end++;
    }
    if (*end || (mul > 1 && v > UINT64_MAX / mul))
        return false;
    *out = v * mul;
    return true;
}

int cfg_set(const cfg_key *tab, size_t n, void *target, const char *key, const char *value,
            char *err, size_t errlen)
{
    const cfg_key *k = find(tab, n, key);
    char *at;
    uint64_t v;

    if (!k) {
        snprintf(err, errlen, "%s: unknown key", key);
        return HERALD_EINVAL;
    }
    at = (char *)target + k->off;
    switch (k->type) {
    case CFG_U32:
    case CFG_U64:
        if (!parse_num(value, k->type == CFG_U64, &v)) {
            snprintf(err, errlen, "%s: '%s' is not a number", key, value);
            return HERALD_EINVAL;
        }
        if (v < k->min || v > k->max) {
            snprintf(err, errlen, "%s: must be between %llu and %llu, not %llu", key,
                     (unsigned long long)k->min, (unsigned long long)k->max,
                     (unsigned long long)v);
            return HERALD_EINVAL;
        }
        if (k->type == CFG_U32) {
            uint32_t u = (uint32_t)v;
            memcpy(at, &u, sizeof u);
        } else {
            memcpy(at, &v, sizeof v);
        }
        return 0;
    case CFG_BOOL:
        if (strcmp(value, "true") == 0 || strcmp(value, "yes") == 0) {
            *(bool *)at = true;
        } else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0) {
            *(bool *)at = false;
        } else {
            snprintf(err, errlen, "%s: must be true or false, not '%s'", key, value);
            return HERALD_EINVAL;
        }
        return 0;
    case CFG_STR:
        if (strlen(value) >= k->len) {
            snprintf(err, errlen, "%s: longer than %zu characters", key, k->len - 1);
            return HERALD_EINVAL;
        }
        strcpy(at, value);
        return 0;
    }
    return HERALD_EINVAL;
}

void cfg_defaults(const cfg_key *tab, size_t n, void *target)
{
    char err[256];
    for (size_t i = 0; i < n; i++) {
        if (tab[i].type == CFG_STR)
            ((char *)target + tab[i].off)[0] = '\0';
        if (tab[i].def && *tab[i].def)
            cfg_set(tab, n, target, tab[i].name, tab[i].def, err, sizeof err);
    }
}

static char *trim(char *s)
{
    char *e;
    while (isspace((unsigned char)*s))
        s++;
    e = s + strlen(s);
    while (e > s && isspace((unsigned char)e[-1]))
        *--e = '\0';
    return s;
}

int cfg_load(const cfg_key *tab, size_t n, void *target, const char *path, char *err,
             size_t errlen)
{
    char line[CFG_LINE_MAX + 2], section[64] = "", key[192], msg[256];
    FILE *f = fopen(path, "r");
    int lineno = 0, rc = 0;

    if (!f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return HERALD_EIO;
    }
    while (fgets(line, sizeof line, f)) {
        char *s, *eq, *val;
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(err, errlen, "%s:%d: line longer than %d characters", path, lineno,
                     CFG_LINE_MAX);
            rc = HERALD_EINVAL;
            break;
        }
        s = strchr(line, '#');
        if (s)
            *s = '\0';
        s = trim(line);
        if (!*s)
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1] || (size_t)(end - s - 1) >= sizeof section) {
                snprintf(err, errlen, "%s:%d: bad section header", path, lineno);
                rc = HERALD_EINVAL;
                break;
            }
            *end = '\0';
            snprintf(section, sizeof section, "%s", trim(s + 1));
            continue;
        }
        eq = strchr(s, '=');
        if (!eq) {
            snprintf(err, errlen, "%s:%d: expected 'key = value'", path, lineno);
            rc = HERALD_EINVAL;
            break;
        }
        *eq = '\0';
        val = trim(eq + 1);
        if (*val == '"') {
            size_t l = strlen(val);
            if (l < 2 || val[l - 1] != '"') {
                snprintf(err, errlen, "%s:%d: unterminated quote", path, lineno);
                rc = HERALD_EINVAL;
                break;
            }
            val[l - 1] = '\0';
            val++;
        }
        s = trim(s);
        if (section[0] && !strchr(s, '.'))
            snprintf(key, sizeof key, "%s.%s", section, s);
        else
            snprintf(key, sizeof key, "%s", s);
        if (cfg_set(tab, n, target, key, val, msg, sizeof msg) != 0) {
            snprintf(err, errlen, "%s:%d: %s", path, lineno, msg);
            rc = HERALD_EINVAL;
            break;
        }
    }
    fclose(f);
    return rc;
}

int cfg_check_required(const cfg_key *tab, size_t n, const void *target, char *err,
                       size_t errlen)
{
    for (size_t i = 0; i < n; i++) {
        if (tab[i].type == CFG_STR && tab[i].min && !((const char *)target + tab[i].off)[0]) {
            snprintf(err, errlen, "%s: required", tab[i].name);
            return HERALD_EINVAL;
        }
    }
    return 0;
}

void cfg_write_sample(const cfg_key *tab, size_t n, FILE *f)
{
    for (size_t i = 0; i < n; i++) {
        const cfg_key *k = &tab[i];
        fprintf(f, "# %s", k->help);
        if (k->type == CFG_U32 || k->type == CFG_U64)
            fprintf(f, " (%llu..%llu)", (unsigned long long)k->min, (unsigned long long)k->max);
        if (k->type == CFG_STR && k->min)
            fprintf(f, " (required)");
        fprintf(f, "\n%s = %s\n\n", k->name, k->def ? k->def : "");
    }
}
