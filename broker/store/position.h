/*
 * position.h — a user's current sync position (what WELCOME carries).
 */
#ifndef HERALD_STORE_POSITION_H
#define HERALD_STORE_POSITION_H

#include "store.h"

/* Fills *out with no messages and the user's current position: the last
 * useq of its pointer log in this store's group, and for every
 * read-diffused conversation it belongs to, that conversation's max seq.
 * Free with store_sync_free. 0, HERALD_ENOMEM, HERALD_ESTORAGE. */
int store_position(store *s, herald_str tenant, herald_str user,
                   store_sync_out *out);

#endif
