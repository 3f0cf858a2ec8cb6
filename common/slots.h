/*
 * slots.h — where a conversation lives. A conversation's slot is a stable
 * hash of (tenant, conversation) into HERALD_SLOTS slots; slots map to shard
 * groups (dev mode: slot mod groups; the cluster keeps the map in its meta
 * group). Changing HERALD_SLOTS or the hash moves every conversation: both
 * are part of the on-disk format.
 *
 * Thread safety: pure functions.
 */
#ifndef HERALD_COMMON_SLOTS_H
#define HERALD_COMMON_SLOTS_H

#include <herald/protocol.h>
#include <stdint.h>

#define HERALD_SLOTS 256u

/* FNV-1a (32-bit) over tenant, a 0 byte, conv; then mod HERALD_SLOTS. */
uint32_t herald_slot(herald_str tenant, herald_str conv);

#endif
