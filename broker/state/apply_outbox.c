/* apply_outbox.c — event callbacks in the state machine: the outbox
 * (outbox.h) written from what a command did, in the command's own nested
 * transaction (aw_outbox, called by apply.c for every applied command),
 * APP_CALLBACK (an app's callback, meta group) and OUTBOX (the deliverer's
 * progress, any group).
 *
 * Events, by command (nothing for a rejected, skipped or duplicate one):
 *   message          SEND, APP_DELIVER, CONV_CREATE/ADD/REMOVE (system
 *                    messages), CONV_HANDOVER: the stored message (its
 *                    body is read from the message record when sent)
 *   recall           RECALL (a message became a tombstone)
 *   receipt          READ that moved a cursor in a conversation with
 *                    receipts (receipt events were produced)
 *   urgent.escalate  REMIND: an urgent message's reminders ran out
 *   directory.user / directory.dept   DIR_USER / DIR_DEPT
 *   contact.add      CONTACT_ADD
 *   tag.add / tag.remove   TAG
 *   transfer         TRANSFER_MARK (start or refuse): one outcome per customer
 *   transfer.done    TRANSFER_DONE: a customer moved to its new owner
 *   message.offline  OFFLINE (apply_offline.c records them through aw_event)
 * Every event's time is the command's commit timestamp (c->ts), its id the
 * store's next outbox seq: the same on every replica.
 *
 * Bounds: OUTBOX_CAP events per group (the oldest goes, counted as dropped,
 * logged), OUTBOX_AGE_MS (OUTBOX prune drops older ones the same way), and
 * OUTBOX_FAILED_CAP failed events per app per group. */
#include <herald/error.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apply_ops.h"
#include "json.h"
#include "log.h"
#include "outbox.h"

/* ---- the outbox's own records --------------------------------------------- */

static int state_get(actx *x, store_outbox_state *st)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    memset(st, 0, sizeof *st);
    key_ob_state(&k);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    return ob_state_decode(v, st) ? aw_fatal(x, MDB_CORRUPTED) : 0;
}

static int state_put(actx *x, const store_outbox_state *st)
{
    kbuf k;
    rbuf r = {0};
    key_ob_state(&k);
    rb_u64(&r, st->last_seq);
    rb_u64(&r, st->held);
    rb_u64(&r, st->dropped);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* The oldest event: *seq and *ts (found false when the outbox is empty). */
static int oldest(actx *x, uint64_t *seq, uint64_t *ts, bool *found)
{
    MDB_cursor *cur;
    kbuf pre = {0};
    MDB_val kv, v;
    int rc;

    *found = false;
    kb_id(&pre, herald_str_z("oe"));
    rc = mdb_cursor_open(x->txn, x->s->db.meta, &cur);
    if (rc)
        return aw_fatal(x, rc);
    kv = kb_val(&pre);
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    if (rc == 0 && kv.mv_size == pre.n + 8 && memcmp(kv.mv_data, pre.b, pre.n) == 0) {
        if (v.mv_size < 8) {
            mdb_cursor_close(cur);
            return aw_fatal(x, MDB_CORRUPTED);
        }
        *seq = be64((const uint8_t *)kv.mv_data + pre.n);
        *ts = be64(v.mv_data);
        *found = true;
    } else if (rc && rc != MDB_NOTFOUND) {
        mdb_cursor_close(cur);
        return aw_fatal(x, rc);
    }
    mdb_cursor_close(cur);
    return 0;
}

static int event_del(actx *x, uint64_t seq)
{
    kbuf k;
    key_ob_event(&k, seq);
    return aw_del(x, x->s->db.meta, &k);
}

/* Appends one event (data: a JSON object) to the outbox. */
static int ob_put(actx *x, herald_str tenant, const char *type, herald_str conv,
                  const herald_buf *data)
{
    store_outbox_state st;
    kbuf k;
    rbuf r = {0};
    int rc = state_get(x, &st);

    if (rc)
        return rc;
    if (st.held >= OUTBOX_CAP) {
        uint64_t seq = 0, ts = 0;
        bool found;
        rc = oldest(x, &seq, &ts, &found);
        if (rc == 0 && found)
            rc = event_del(x, seq);
        if (rc)
            return rc;
        st.held = found ? st.held - 1 : 0;
        st.dropped++;
        if (st.dropped == 1 || st.dropped % 1000 == 0)
            log_warn("outbox.cap", "group %u: the callback outbox is at its cap of %u events: "
                     "event %u-%llu was dropped before every app acknowledged it (%llu "
                     "dropped so far; see herald_callback_outbox_dropped_total)",
                     x->s->group, OUTBOX_CAP, x->s->group, (unsigned long long)seq,
                     (unsigned long long)st.dropped);
    }
    st.last_seq++;
    st.held++;
    x->r->outbox_events++;
    key_ob_event(&k, st.last_seq);
    rb_u64(&r, x->c->ts);
    rb_str(&r, tenant);
    rb_str(&r, herald_str_z(type));
    rb_str(&r, conv);
    rb_str(&r, (herald_str){.ptr = (const char *)data->data, .len = (uint32_t)data->len});
    rc = aw_put_rec(x, x->s->db.meta, &k, &r);
    return rc ? rc : state_put(x, &st);
}

int aw_event(actx *x, herald_str tenant, const char *type, herald_str conv,
             const herald_buf *data)
{
    return ob_put(x, tenant, type, conv, data);
}

/* ---- event data ------------------------------------------------------------ */

static void json_hstr(json_w *w, herald_str s) { json_str(w, s.ptr ? s.ptr : "", s.len); }

/* A message event holds the message's reference and metadata, not its
 * body: the deliverer reads the body from the message record when it
 * sends (so the outbox costs a small record per message whatever its
 * size, and a message recalled before delivery goes out without it). */
static int ev_message(actx *x, const herald_msg *m)
{
    herald_buf b = {0};
    json_w w;
    int rc;

    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_hstr(&w, m->conv);
    json_key(&w, "seq");
    json_u64(&w, m->seq);
    json_key(&w, "from");
    json_hstr(&w, m->from);
    json_key(&w, "kind");
    json_strz(&w, m->kind == HERALD_MK_SYSTEM ? "system" : "text");
    json_key(&w, "urgent");
    json_bool(&w, (m->flags & HERALD_MSGF_URGENT) != 0);
    json_key(&w, "silent");
    json_bool(&w, (m->flags & HERALD_MSGF_SILENT) != 0);
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM : ob_put(x, x->c->tenant, "message", m->conv, &b);
    herald_buf_free(&b);
    return rc;
}

/* A JSON object of string fields (keys[i] → vals[i]) and optionally one
 * array of strings, as one event. */
static int ev_fields(actx *x, herald_str tenant, const char *type, herald_str conv,
                     const char *const *keys, const herald_str *vals, size_t n,
                     const char *arr_key, const herald_str *arr, uint32_t n_arr)
{
    herald_buf b = {0};
    json_w w;
    int rc;

    json_init(&w, &b);
    json_obj(&w);
    for (size_t i = 0; i < n; i++) {
        json_key(&w, keys[i]);
        json_hstr(&w, vals[i]);
    }
    if (arr_key) {
        json_key(&w, arr_key);
        json_arr(&w);
        for (uint32_t i = 0; i < n_arr; i++)
            json_hstr(&w, arr[i]);
        json_arr_end(&w);
    }
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM : ob_put(x, tenant, type, conv, &b);
    herald_buf_free(&b);
    return rc;
}

static int ev_receipt(actx *x)
{
    herald_buf b = {0};
    json_w w;
    int rc;
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_hstr(&w, x->c->conv);
    json_key(&w, "user");
    json_hstr(&w, x->c->user);
    json_key(&w, "seq");
    json_u64(&w, x->r->seq);
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM : ob_put(x, x->c->tenant, "receipt", x->c->conv, &b);
    herald_buf_free(&b);
    return rc;
}

static int ev_recall(actx *x)
{
    herald_buf b = {0};
    json_w w;
    int rc;
    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_hstr(&w, x->c->conv);
    json_key(&w, "seq");
    json_u64(&w, x->c->seq);
    json_key(&w, "by");
    json_hstr(&w, x->c->user);
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM : ob_put(x, x->c->tenant, "recall", x->c->conv, &b);
    herald_buf_free(&b);
    return rc;
}

static int ev_escalate(actx *x, const apply_remind *e)
{
    herald_buf b = {0};
    json_w w;
    const char *p = e->pending ? e->pending : "";
    int rc;

    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "conv");
    json_strz(&w, e->conv);
    json_key(&w, "seq");
    json_u64(&w, e->seq);
    json_key(&w, "sender");
    json_strz(&w, e->user);
    json_key(&w, "reminders");
    json_u64(&w, e->count);
    json_key(&w, "pending");
    json_arr(&w);
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        if (n)
            json_str(&w, p, n);
        p += n + (comma ? 1 : 0);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM
                       : ob_put(x, herald_str_z(e->tenant), "urgent.escalate",
                                herald_str_z(e->conv), &b);
    herald_buf_free(&b);
    return rc;
}

static const char *xfer_name(uint32_t st)
{
    switch (XFER_STATUS(st)) {
    case XFER_DONE: return "done";
    case XFER_WAITING: return "waiting";
    case XFER_REFUSED: return "refused";
    case XFER_AT_LIMIT: return "at_limit";
    case XFER_NO_RECORD: return "no_record";
    case XFER_MOVING: return "moving";
    default: return "unknown";
    }
}

static int ev_transfer(actx *x)
{
    const cmd *c = x->c;
    const apply_mass *m = (const apply_mass *)x->mass.data;
    const apply_xfer *xf = (const apply_xfer *)x->xfer.data;
    size_t n = x->mass.len / sizeof *m, nx = x->xfer.len / sizeof *xf;
    herald_buf b = {0};
    json_w w;
    int rc;

    json_init(&w, &b);
    json_obj(&w);
    json_key(&w, "op");
    json_strz(&w, herald_str_eq(c->kind, "refuse") ? "refuse" : "start");
    json_key(&w, "by");
    json_hstr(&w, c->user);
    if (c->target.len) {
        json_key(&w, "from");
        json_hstr(&w, c->target);
    }
    if (c->name.len) {
        json_key(&w, "to");
        json_hstr(&w, c->name);
    }
    json_key(&w, "resigned");
    json_bool(&w, (c->flags & CMD_XFER_RESIGNED) != 0);
    json_key(&w, "results");
    json_arr(&w);
    for (size_t i = 0; i < n; i++) {
        json_obj(&w);
        json_key(&w, "customer");
        json_strz(&w, m[i].customer);
        json_key(&w, "status");
        json_strz(&w, xfer_name(m[i].status));
        if (i < nx && xf[i].at) {
            json_key(&w, "at");
            json_u64(&w, xf[i].at);
        }
        json_obj_end(&w);
    }
    json_arr_end(&w);
    json_obj_end(&w);
    rc = json_done(&w) ? HERALD_ENOMEM : ob_put(x, c->tenant, "transfer", (herald_str){0}, &b);
    herald_buf_free(&b);
    return rc;
}

int aw_outbox(actx *x)
{
    const cmd *c = x->c;
    const apply_result *r = x->r;
    herald_str none = {0};
    int rc = 0;

    if (r->err || r->dup)
        return 0;
    switch (c->op) {
    case CMD_SEND:
    case CMD_APP_DELIVER:
    case CMD_CONV_CREATE:
    case CMD_CONV_ADD:
    case CMD_CONV_REMOVE:
    case CMD_CONV_HANDOVER:
        return r->msg && r->seq ? ev_message(x, r->msg) : 0;
    case CMD_RECALL:
        return r->seq ? ev_recall(x) : 0;
    case CMD_READ:
        return x->tg.len ? ev_receipt(x) : 0;
    case CMD_REMIND: {
        const apply_remind *e = (const apply_remind *)x->rem.data;
        for (size_t i = 0; i < x->rem.len / sizeof *e && rc == 0; i++)
            if (e[i].escalate)
                rc = ev_escalate(x, &e[i]);
        return rc;
    }
    case CMD_DIR_USER: {
        static const char *const k[] = {"user", "kind", "name", "title", "dept", "by"};
        herald_str v[] = {c->target, c->kind, c->name, c->title, c->dept, c->user};
        return ev_fields(x, c->tenant, "directory.user", none, k, v, 6, NULL, NULL, 0);
    }
    case CMD_DIR_DEPT: {
        static const char *const k[] = {"dept", "name", "parent", "by"};
        herald_str v[] = {c->dept, c->name, c->parent, c->user};
        return ev_fields(x, c->tenant, "directory.dept", none, k, v, 4, NULL, NULL, 0);
    }
    case CMD_CONTACT_ADD: {
        static const char *const k[] = {"customer", "employee", "conv", "by"};
        herald_str v[] = {c->name, c->target, c->conv, c->user};
        return ev_fields(x, c->tenant, "contact.add", none, k, v, 4, NULL, NULL, 0);
    }
    case CMD_TAG: {
        static const char *const k[] = {"customer", "by"};
        herald_str v[] = {c->target, c->user};
        return ev_fields(x, c->tenant, herald_str_eq(c->kind, "add") ? "tag.add" : "tag.remove",
                         none, k, v, 2, "tags", c->members, c->n_members);
    }
    case CMD_TRANSFER_MARK:
        return x->mass.len ? ev_transfer(x) : 0;
    case CMD_TRANSFER_DONE: {
        static const char *const k[] = {"customer", "from", "to", "conv"};
        herald_str v[] = {c->n_members ? c->members[0] : none, c->target, c->name, c->conv};
        return ev_fields(x, c->tenant, "transfer.done", none, k, v, 4, NULL, NULL, 0);
    }
    default:
        return 0;
    }
}

/* ---- APP_CALLBACK ------------------------------------------------------------ */

static bool url_ok(herald_str u)
{
    if (u.len > OUTBOX_URL_MAX)
        return false;
    if (!(u.len > 8 && memcmp(u.ptr, "https://", 8) == 0) &&
        !(u.len > 7 && memcmp(u.ptr, "http://", 7) == 0))
        return false;
    for (uint32_t i = 0; i < u.len; i++)
        if ((unsigned char)u.ptr[i] <= 0x20 || (unsigned char)u.ptr[i] >= 0x7f)
            return false;
    return true;
}

static bool hex_ok(herald_str s, uint32_t len)
{
    if (s.len != len)
        return false;
    for (uint32_t i = 0; i < len; i++)
        if (!((s.ptr[i] >= '0' && s.ptr[i] <= '9') || (s.ptr[i] >= 'a' && s.ptr[i] <= 'f')))
            return false;
    return true;
}

int op_app_callback(actx *x)
{
    const cmd *c = x->c;
    uint32_t types = 0;
    kbuf k;
    rbuf r = {0};

    if (!c->admin)
        return aw_reject(x, HERALD_EFORBIDDEN, "callbacks need the admin role");
    if (x->s->group != 0)
        return aw_reject(x, HERALD_EINVAL, "callbacks live in the meta group");
    if (!aw_id_ok(c->target) || c->target.len > 100)
        return aw_reject(x, HERALD_EINVAL, "invalid app id");
    key_callback(&k, c->tenant, c->target);
    if (k.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long");
    if (c->name.len == 0)
        return aw_del(x, x->s->db.meta, &k);
    if (!url_ok(c->name))
        return aw_reject(x, HERALD_EINVAL,
                         "the URL must be http:// or https://, printable ASCII, ≤1024 bytes");
    if (!hex_ok(c->cmid, 32) || !hex_ok(c->secret, 64))
        return aw_reject(x, HERALD_EINVAL, "token: 32 hex digits; secret: 64 hex digits");
    for (uint32_t i = 0; i < c->n_tags; i++) {
        uint32_t bit = ob_type_bit(c->tags[i].ptr, c->tags[i].len);
        if (!bit)
            return aw_reject(x, HERALD_EINVAL, "unknown event type");
        types |= bit;
    }
    rb_str(&r, c->name);
    rb_str(&r, c->cmid);
    rb_str(&r, c->secret);
    rb_u32(&r, c->flags & CMD_CB_ALL);
    rb_u64(&r, c->ts);
    rb_u32(&r, types);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* ---- OUTBOX -------------------------------------------------------------------- */

static int cursor_get(actx *x, store_ob_cursor *cur)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    memset(cur, 0, sizeof *cur);
    key_ob_cursor(&k, x->c->tenant, x->c->target);
    if (k.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long");
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    return ob_cursor_decode(v, cur) ? aw_fatal(x, MDB_CORRUPTED) : 0;
}

static int cursor_put(actx *x, const store_ob_cursor *cur)
{
    kbuf k;
    rbuf r = {0};
    key_ob_cursor(&k, x->c->tenant, x->c->target);
    rb_u64(&r, cur->cursor);
    rb_u64(&r, cur->delivered);
    rb_u64(&r, cur->failed);
    rb_u32(&r, cur->failed_now);
    return aw_put_rec(x, x->s->db.meta, &k, &r);
}

/* The "or" (failed false) or "of" record of (tenant, app, seq): found
 * false when absent. */
static int retry_get(actx *x, bool failed, uint64_t seq, store_ob_retry *out, bool *found)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    memset(out, 0, sizeof *out);
    *found = false;
    key_ob_retry(&k, failed, x->c->tenant, x->c->target, seq, false);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return 0;
    if (rc)
        return aw_fatal(x, rc);
    rc = ob_retry_decode(v, out);
    if (rc == HERALD_ENOMEM)
        return rc;
    if (rc)
        return aw_fatal(x, MDB_CORRUPTED);
    *found = true;
    return 0;
}

static int retry_put(actx *x, bool failed, uint64_t seq, const store_ob_retry *r)
{
    kbuf k;
    rbuf b = {0};
    key_ob_retry(&k, failed, x->c->tenant, x->c->target, seq, false);
    rb_u8(&b, (uint8_t)r->state);
    rb_u32(&b, r->attempts);
    rb_u64(&b, r->next_ms);
    rb_u64(&b, r->first_ms);
    rb_str(&b, herald_str_z(r->last_error));
    rb_u64(&b, r->ev.ts);
    rb_str(&b, herald_str_z(r->ev.type));
    rb_str(&b, herald_str_z(r->ev.conv));
    rb_str(&b, (herald_str){.ptr = r->ev.data, .len = (uint32_t)r->ev.data_len});
    return aw_put_rec(x, x->s->db.meta, &k, &b);
}

static int retry_del(actx *x, bool failed, uint64_t seq)
{
    kbuf k;
    key_ob_retry(&k, failed, x->c->tenant, x->c->target, seq, false);
    return aw_del(x, x->s->db.meta, &k);
}

/* The event at seq, for a retry record (NOT_FOUND when pruned). */
static int event_get(actx *x, uint64_t seq, store_event *out)
{
    kbuf k;
    MDB_val kv, v;
    int rc;
    memset(out, 0, sizeof *out);
    key_ob_event(&k, seq);
    kv = kb_val(&k);
    rc = mdb_get(x->txn, x->s->db.meta, &kv, &v);
    if (rc == MDB_NOTFOUND)
        return aw_reject(x, HERALD_ENOT_FOUND, "no such event in the outbox");
    if (rc)
        return aw_fatal(x, rc);
    rc = ob_event_decode(v, out);
    if (rc == HERALD_ENOMEM)
        return rc;
    if (rc)
        return aw_fatal(x, MDB_CORRUPTED);
    if (!herald_str_eq(x->c->tenant, out->tenant)) {
        store_event_free(out);
        return aw_reject(x, HERALD_ENOT_FOUND, "no such event of this tenant");
    }
    return 0;
}

/* The app's oldest failed record: forgotten at the cap. */
static int drop_oldest_failed(actx *x)
{
    MDB_cursor *cur;
    kbuf pre;
    MDB_val kv, v;
    uint64_t seq = 0;
    int rc;

    key_ob_retry(&pre, true, x->c->tenant, x->c->target, 0, true);
    rc = mdb_cursor_open(x->txn, x->s->db.meta, &cur);
    if (rc)
        return aw_fatal(x, rc);
    kv = kb_val(&pre);
    rc = mdb_cursor_get(cur, &kv, &v, MDB_SET_RANGE);
    if (rc == 0 && kv.mv_size == pre.n + 8 && memcmp(kv.mv_data, pre.b, pre.n) == 0)
        seq = be64((const uint8_t *)kv.mv_data + pre.n);
    mdb_cursor_close(cur);
    if (rc && rc != MDB_NOTFOUND)
        return aw_fatal(x, rc);
    if (!seq)
        return 0;
    log_warn("outbox.failed_cap", "group %u: app %.*s of %.*s keeps %u failed events: the "
             "oldest, %u-%llu, is forgotten", x->s->group, (int)x->c->target.len,
             x->c->target.ptr, (int)x->c->tenant.len, x->c->tenant.ptr, OUTBOX_FAILED_CAP,
             x->s->group, (unsigned long long)seq);
    return retry_del(x, true, seq);
}

/* retry / fail of the stream's head or of a redelivery. A failed event
 * moves from "or" (if it was there) to "of". */
static int ob_attempt(actx *x, bool give_up)
{
    const cmd *c = x->c;
    bool redelivery = (c->flags & CMD_OB_REDELIVERY) != 0, found;
    store_ob_cursor cur;
    store_ob_retry r;
    int rc = cursor_get(x, &cur);

    if (rc)
        return rc;
    if (!redelivery && c->seq <= cur.cursor) {
        x->r->dup = true; /* done already (a deposed leader's late report) */
        return 0;
    }
    rc = retry_get(x, false, c->seq, &r, &found);
    if (rc)
        return rc;
    if (redelivery && (!found || r.state != OB_REQUEUED)) {
        store_ob_retry_free(&r);
        x->r->dup = true;
        return 0;
    }
    if (!found) {
        rc = event_get(x, c->seq, &r.ev);
        if (rc)
            return rc;
        r.first_ms = c->ts;
    }
    r.attempts = c->cap;
    r.next_ms = give_up ? 0 : c->win;
    snprintf(r.last_error, sizeof r.last_error, "%.*s",
             (int)(c->name.len > OUTBOX_ERR_MAX ? OUTBOX_ERR_MAX : c->name.len),
             c->name.ptr ? c->name.ptr : "");
    if (!give_up) {
        r.state = redelivery ? OB_REQUEUED : OB_RETRYING;
        rc = retry_put(x, false, c->seq, &r);
        store_ob_retry_free(&r);
        return rc;
    }
    r.state = OB_FAILED;
    rc = found ? retry_del(x, false, c->seq) : 0;
    if (rc == 0)
        rc = retry_put(x, true, c->seq, &r);
    store_ob_retry_free(&r);
    if (rc)
        return rc;
    x->r->seq = c->seq;
    if (redelivery)
        return 0; /* failed again: counted when it first failed */
    cur.cursor = c->seq;
    cur.failed++;
    cur.failed_now++;
    if (cur.failed_now > OUTBOX_FAILED_CAP) {
        rc = drop_oldest_failed(x);
        cur.failed_now--;
    }
    return rc ? rc : cursor_put(x, &cur);
}

static int ob_ack(actx *x, bool skip)
{
    const cmd *c = x->c;
    bool redelivery = (c->flags & CMD_OB_REDELIVERY) != 0, found;
    store_ob_cursor cur;
    store_ob_retry r;
    int rc = cursor_get(x, &cur);

    if (rc)
        return rc;
    if (redelivery) {
        rc = retry_get(x, false, c->seq, &r, &found);
        store_ob_retry_free(&r);
        if (rc)
            return rc;
        if (!found || r.state != OB_REQUEUED) {
            x->r->dup = true;
            return 0;
        }
        rc = retry_del(x, false, c->seq);
        cur.delivered++;
        if (cur.failed_now)
            cur.failed_now--;
        return rc ? rc : cursor_put(x, &cur);
    }
    if (c->seq <= cur.cursor) {
        x->r->dup = true;
        return 0;
    }
    if (!skip) {
        rc = retry_get(x, false, c->seq, &r, &found);
        store_ob_retry_free(&r);
        if (rc == 0 && found && r.state == OB_RETRYING)
            rc = retry_del(x, false, c->seq);
        if (rc)
            return rc;
        cur.delivered++;
    }
    cur.cursor = c->seq;
    x->r->seq = c->seq;
    return cursor_put(x, &cur);
}

/* A failed event ("of") becomes a requeued one ("or"), attempts from 0. */
static int requeue_one(actx *x, uint64_t seq, bool *moved)
{
    store_ob_retry r;
    bool found;
    int rc = retry_get(x, true, seq, &r, &found);
    *moved = false;
    if (rc || !found)
        return rc;
    r.state = OB_REQUEUED;
    r.attempts = 0;
    r.next_ms = 0;
    rc = retry_del(x, true, seq);
    if (rc == 0)
        rc = retry_put(x, false, seq, &r);
    store_ob_retry_free(&r);
    *moved = rc == 0;
    return rc;
}

/* requeue: failed → requeued; r->seq = how many. */
static int ob_requeue(actx *x)
{
    const cmd *c = x->c;
    MDB_cursor *mc;
    kbuf pre;
    MDB_val kv, v;
    uint64_t *seqs = NULL, n_moved = 0;
    size_t n = 0, cap = 0;
    bool moved;
    int rc;

    if (!(c->flags & CMD_OB_ALL)) {
        store_ob_retry r;
        bool found;
        rc = requeue_one(x, c->seq, &moved);
        if (rc || moved) {
            x->r->seq = moved;
            return rc;
        }
        rc = retry_get(x, false, c->seq, &r, &found); /* requeued already? */
        store_ob_retry_free(&r);
        if (rc)
            return rc;
        return found && r.state == OB_REQUEUED
                   ? 0
                   : aw_reject(x, HERALD_ENOT_FOUND, "no failed event with that id");
    }
    key_ob_retry(&pre, true, c->tenant, c->target, 0, true);
    if (pre.over)
        return aw_reject(x, HERALD_EINVAL, "ids too long");
    rc = mdb_cursor_open(x->txn, x->s->db.meta, &mc);
    if (rc)
        return aw_fatal(x, rc);
    kv = kb_val(&pre);
    for (rc = mdb_cursor_get(mc, &kv, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(mc, &kv, &v, MDB_NEXT)) {
        if (kv.mv_size != pre.n + 8 || memcmp(kv.mv_data, pre.b, pre.n) != 0)
            break;
        if (n == cap) {
            size_t nc = cap ? cap * 2 : 64;
            uint64_t *ns = realloc(seqs, nc * sizeof *ns);
            if (!ns) {
                mdb_cursor_close(mc);
                free(seqs);
                return HERALD_ENOMEM;
            }
            seqs = ns;
            cap = nc;
        }
        seqs[n++] = be64((const uint8_t *)kv.mv_data + pre.n);
    }
    mdb_cursor_close(mc);
    if (rc != 0 && rc != MDB_NOTFOUND) {
        free(seqs);
        return aw_fatal(x, rc);
    }
    rc = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        rc = requeue_one(x, seqs[i], &moved);
        n_moved += moved;
    }
    free(seqs);
    x->r->seq = rc ? 0 : n_moved;
    return rc;
}

/* prune: events ≤ seq go (every app has them), and those older than
 * OUTBOX_AGE_MS at the command's time (counted as dropped). */
static int ob_prune(actx *x)
{
    const cmd *c = x->c;
    uint64_t horizon = c->ts > OUTBOX_AGE_MS ? c->ts - OUTBOX_AGE_MS : 0, aged = 0, gone = 0;
    store_outbox_state st;
    int rc = state_get(x, &st);

    if (rc)
        return rc;
    for (;;) {
        uint64_t seq = 0, ts = 0;
        bool found;
        rc = oldest(x, &seq, &ts, &found);
        if (rc || !found || (seq > c->seq && ts >= horizon))
            break;
        rc = event_del(x, seq);
        if (rc)
            break;
        gone++;
        if (seq > c->seq)
            aged++;
        if (st.held)
            st.held--;
    }
    if (rc)
        return rc;
    if (aged) {
        st.dropped += aged;
        log_warn("outbox.age", "group %u: %llu callback events older than %llu days were "
                 "dropped before every app acknowledged them (%llu dropped so far)",
                 x->s->group, (unsigned long long)aged,
                 (unsigned long long)(OUTBOX_AGE_MS / 86400000u), (unsigned long long)st.dropped);
    }
    x->r->seq = gone;
    return gone ? state_put(x, &st) : 0;
}

int op_outbox(actx *x)
{
    const cmd *c = x->c;
    bool needs_app = !herald_str_eq(c->kind, "prune");

    if (needs_app && (!aw_id_ok(c->tenant) || !aw_id_ok(c->target)))
        return aw_reject(x, HERALD_EINVAL, "invalid tenant or app id");
    if (herald_str_eq(c->kind, "ack"))
        return ob_ack(x, false);
    if (herald_str_eq(c->kind, "skip"))
        return ob_ack(x, true);
    if (herald_str_eq(c->kind, "retry"))
        return ob_attempt(x, false);
    if (herald_str_eq(c->kind, "fail"))
        return ob_attempt(x, true);
    if (herald_str_eq(c->kind, "requeue"))
        return ob_requeue(x);
    if (herald_str_eq(c->kind, "prune"))
        return ob_prune(x);
    return aw_reject(x, HERALD_EINVAL, "kind must be ack, skip, retry, fail, requeue or prune");
}
