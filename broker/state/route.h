/*
 * route.h — which shard group holds what: the one routing rule, used by the
 * gateway process (where to forward a frame), the node (which replica
 * serves it, the first slot map) and dev mode (which local store).
 *
 * Group 0 is the meta group (tenants, users, the directory, contacts, tags,
 * sync positions); conversations live in groups 1..n-1 by slot (all in 0
 * when n is 1). The cluster writes the slot → group map into the meta group
 * once (route_slot_group's formula at first start) and everyone reads it
 * back, so placement can later change without changing this rule.
 *
 * Pure functions; any thread.
 */
#ifndef HERALD_ROUTE_H
#define HERALD_ROUTE_H

#include <herald/protocol.h>
#include <stdint.h>

/* The default group of a slot among n groups (the first slot map). */
uint32_t route_slot_group(uint32_t slot, uint32_t n);

/* The group holding (tenant, conv): slotmap[slot] (HERALD_SLOTS bytes) when
 * given, else the default formula over n groups. */
uint32_t route_conv_group(herald_str tenant, herald_str conv, uint32_t n,
                          const uint8_t *slotmap);

/* The group a client frame belongs to: its conversation's group for
 * conversation requests that name one, else the meta group 0. */
uint32_t route_frame_group(const herald_frame *f, const char *tenant, uint32_t n,
                           const uint8_t *slotmap);

#endif
