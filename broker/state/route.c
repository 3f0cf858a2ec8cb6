/* route.c — see route.h. */
#include "route.h"

#include "slots.h"

uint32_t route_slot_group(uint32_t slot, uint32_t n) { return n <= 1 ? 0 : 1 + slot % (n - 1); }

uint32_t route_conv_group(herald_str tenant, herald_str conv, uint32_t n,
                          const uint8_t *slotmap)
{
    uint32_t slot = herald_slot(tenant, conv);
    return slotmap ? slotmap[slot] : route_slot_group(slot, n);
}

uint32_t route_frame_group(const herald_frame *f, const char *tenant, uint32_t n,
                           const uint8_t *slotmap)
{
    switch (f->type) {
    case HERALD_FT_SEND:
    case HERALD_FT_READ:
    case HERALD_FT_RECALL:
    case HERALD_FT_HISTORY:
    case HERALD_FT_RECEIPTS:
    case HERALD_FT_CONV:
    case HERALD_FT_URGENT:
        /* Conversation requests: their shard group's leader serves them
         * from its own replica. A CONV create without an id gets one there
         * and is forwarded like any multi-group request. */
        if (f->conv.len && tenant && tenant[0])
            return route_conv_group(herald_str_z(tenant), f->conv, n, slotmap);
        return 0;
    default:
        return 0; /* tenants, users, directory, contacts, tags, sync: meta */
    }
}
