/*
 * apply_ops.h — one function per command, as apply.c's command table
 * calls them: each applies x->c inside its nested transaction through the
 * toolkit (aw.h) and returns 0 or an error as aw.h describes. The op files
 * call nothing of each other; only the table calls them.
 */
#ifndef HERALD_STATE_APPLY_OPS_H
#define HERALD_STATE_APPLY_OPS_H

#include "aw.h"

/* apply_conv.c: conversations and their messages. */
int op_conv_create(actx *x);
int op_conv_add(actx *x);
int op_conv_remove(actx *x);
int op_send(actx *x);
int op_read(actx *x);
int op_recall(actx *x);

/* apply_urgent.c: urgent (DING) messages. */
int op_confirm(actx *x);
int op_remind(actx *x);

/* apply_tenant.c: tenant-level state (kept in group 0). */
int op_tenant_create(actx *x);
int op_dnd(actx *x);
int op_dir_user(actx *x);
int op_dir_dept(actx *x);
int op_contact_add(actx *x);
int op_tag(actx *x);
int op_mass_mark(actx *x);
int op_slotmap(actx *x);

/* apply_app.c: app messages and announcements. */
int op_app_mark(actx *x);
int op_app_deliver(actx *x);
int op_app_create(actx *x);

/* apply_transfer.c: customer transfer. */
int op_transfer_mark(actx *x);
int op_transfer_due(actx *x);
int op_conv_handover(actx *x);
int op_transfer_done(actx *x);

/* apply_outbox.c: event callbacks (an app's callback; the outbox). */
int op_app_callback(actx *x);
int op_outbox(actx *x);
/* apply_offline.c: who had no session online when a message was pushed. */
int op_offline(actx *x);

#endif
