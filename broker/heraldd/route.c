/* route.c — see cluster.h: which group a client frame belongs to. */
#include <herald/protocol.h>

#include "cluster.h"
#include "gw.h"
#include "slots.h"

uint32_t cluster_frame_group(const herald_frame *f, const char *tenant, uint32_t ngroups,
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
            return slotmap ? slotmap[herald_slot(herald_str_z(tenant), f->conv)]
                           : gw_group_of(herald_str_z(tenant), f->conv, ngroups);
        return 0;
    default:
        return 0; /* tenants, users, directory, contacts, tags, sync: meta */
    }
}
