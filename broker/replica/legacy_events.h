/*
 * legacy_events.h — the push events of one applied command, from the
 * command's bytes and the group's store. Loop thread.
 */
#ifndef HERALD_LEGACY_EVENTS_H
#define HERALD_LEGACY_EVENTS_H

#include <herald/protocol.h>

#include "apply.h"
#include "store.h"

typedef struct lev_sink {
    void *ctx;
    void (*push)(void *ctx, uint32_t group, uint64_t index, const char *tenant,
                 const char *const *users, const uint64_t *useqs, uint32_t n,
                 const herald_frame *f);
    void (*dnd)(void *ctx, const char *tenant, const char *user, uint64_t until);
} lev_sink;

void lev_emit(store *st, const uint8_t *cmd, size_t len, const apply_result *res,
              const lev_sink *sink);

#endif
