/* slots.c — see slots.h. */
#include "slots.h"

static uint32_t fnv1a(uint32_t h, const char *p, uint32_t n)
{
    for (uint32_t i = 0; i < n; i++) {
        h ^= (uint8_t)p[i];
        h *= 16777619u;
    }
    return h;
}

uint32_t herald_slot(herald_str tenant, herald_str conv)
{
    uint32_t h = fnv1a(2166136261u, tenant.ptr, tenant.len);
    h = fnv1a(h, "", 1);
    h = fnv1a(h, conv.ptr, conv.len);
    return h % HERALD_SLOTS;
}
