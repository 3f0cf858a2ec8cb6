/* error.c — herald_strerror / herald_err_name from the one X-macro list. */
#include <herald/error.h>

#include <stddef.h>

typedef struct err_info {
    const char *name; /* symbolic name without prefix */
    const char *desc; /* English description */
} err_info;

static const err_info errs[] = {
#define HERALD_ERR_INFO_(name, num, desc) [num] = {#name, desc},
    HERALD_ERRORS(HERALD_ERR_INFO_)
#undef HERALD_ERR_INFO_
};

static const err_info *lookup(int code)
{
    if (code < 0 || (size_t)code >= sizeof errs / sizeof errs[0] || !errs[code].name)
        return NULL;
    return &errs[code];
}

const char *herald_strerror(int code)
{
    const err_info *e = lookup(code);
    return e ? e->desc : "unknown error";
}

const char *herald_err_name(int code)
{
    const err_info *e = lookup(code);
    return e ? e->name : "UNKNOWN";
}
