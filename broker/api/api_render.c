/* api_render.c — a reply frame as the fields of the open API's JSON answer.
 * See api_int.h. */
#include "api_int.h"

#include <herald/error.h>
#include <sodium.h>
#include <string.h>

static void key_str(json_w *w, const char *k, herald_str v)
{
    if (!v.len)
        return;
    json_key(w, k);
    json_str(w, v.ptr, v.len);
}

static void key_u64(json_w *w, const char *k, uint64_t v)
{
    json_key(w, k);
    json_u64(w, v);
}

static void key_list(json_w *w, const char *k, const herald_str *v, uint32_t n)
{
    json_key(w, k);
    json_arr(w);
    for (uint32_t i = 0; i < n; i++)
        json_str(w, v[i].ptr, v[i].len);
    json_arr_end(w);
}

/* WeCom's lists: "a|b". */
static void key_bars(json_w *w, const char *k, const herald_str *v, uint32_t n)
{
    herald_buf b = {0};
    int rc = 0;
    for (uint32_t i = 0; i < n && rc == 0; i++) {
        if (i)
            rc = herald_buf_append(&b, "|", 1);
        if (rc == 0)
            rc = herald_buf_append(&b, v[i].ptr, v[i].len);
    }
    json_key(w, k);
    if (rc)
        w->failed = true;
    json_str(w, (const char *)b.data, b.len);
    herald_buf_free(&b);
}

/* A body as "text" when it is UTF-8 text, else "body_base64". */
static void key_body(json_w *w, herald_str body)
{
    bool text = true;
    for (uint32_t i = 0; i < body.len && text; i++)
        text = body.ptr[i] != 0;
    if (text) {
        /* json_str replaces invalid UTF-8; only valid text is sent as text. */
        const unsigned char *p = (const unsigned char *)body.ptr;
        for (uint32_t i = 0; i < body.len && text;) {
            uint32_t n = p[i] < 0x80 ? 1 : (p[i] >> 5) == 6 ? 2 : (p[i] >> 4) == 14 ? 3
                                          : (p[i] >> 3) == 30 ? 4 : 0;
            if (!n || i + n > body.len) {
                text = false;
                break;
            }
            for (uint32_t k = 1; k < n; k++)
                text = text && (p[i + k] >> 6) == 2;
            i += n;
        }
    }
    if (text) {
        json_key(w, "text");
        json_str(w, body.ptr, body.len);
        return;
    }
    {
        size_t cap = sodium_base64_ENCODED_LEN(body.len, sodium_base64_VARIANT_ORIGINAL);
        char *b64 = malloc(cap);
        if (!b64) {
            w->failed = true;
            return;
        }
        sodium_bin2base64(b64, cap, (const unsigned char *)body.ptr, body.len,
                          sodium_base64_VARIANT_ORIGINAL);
        json_key(w, "body_base64");
        json_strz(w, b64);
        free(b64);
    }
}

static void write_msg(json_w *w, const herald_msg *m)
{
    json_obj(w);
    key_str(w, "conv", m->conv);
    key_u64(w, "seq", m->seq);
    key_str(w, "from", m->from);
    key_u64(w, "time", m->ts);
    key_u64(w, "flags", m->flags);
    json_key(w, "kind");
    json_strz(w, m->kind == HERALD_MK_SYSTEM ? "system" : "text");
    json_key(w, "recalled");
    json_bool(w, (m->flags & HERALD_MSGF_RECALLED) != 0);
    key_body(w, m->body);
    if (m->id_corp.len) {
        json_key(w, "certified");
        json_obj(w);
        key_str(w, "corp", m->id_corp);
        key_str(w, "title", m->id_title);
        json_obj_end(w);
    }
    json_obj_end(w);
}

static void conv_list(json_w *w, const herald_frame *f)
{
    json_key(w, "conversations");
    json_arr(w);
    for (uint32_t i = 0; i < f->n_msgs; i++) {
        const herald_msg *m = &f->msgs[i];
        json_obj(w);
        key_str(w, "conv", m->conv);
        if (i < f->n_conv_kinds)
            key_str(w, "kind", f->conv_kinds[i]);
        if (i < f->n_conv_counts)
            key_u64(w, "member_count", f->conv_counts[i]);
        if (i < f->n_conv_unread)
            key_u64(w, "unread", f->conv_unread[i]);
        if (m->seq) {
            json_key(w, "last");
            write_msg(w, m);
        } else {
            key_u64(w, "created", m->ts);
        }
        json_obj_end(w);
    }
    json_arr_end(w);
    json_key(w, "more");
    json_bool(w, f->more);
    key_str(w, "next_after", f->after_id);
}

static void transfer(json_w *w, const herald_frame *f)
{
    for (int part = 0; part < 2; part++) {
        uint32_t from = part ? f->count : 0, to = part ? f->n_members : f->count;
        json_key(w, part ? "chats" : "customers");
        json_arr(w);
        for (uint32_t i = from; i < to && i < f->n_members; i++) {
            json_obj(w);
            json_key(w, part ? "chat_id" : "external_userid");
            json_str(w, f->members[i].ptr, f->members[i].len);
            if (i < f->n_statuses)
                key_str(w, "status", f->statuses[i]);
            if (i < f->n_times && f->times[i])
                key_u64(w, "takeover_time", f->times[i]);
            if (i < f->n_reasons)
                key_str(w, "reason", f->reasons[i]);
            if (i < f->n_texts)
                key_str(w, "reason_text", f->texts[i]);
            json_obj_end(w);
        }
        json_arr_end(w);
    }
}

/* WeCom's message/send answer, with Herald's details after it. */
static void app_send(json_w *w, const herald_frame *f)
{
    key_bars(w, "invaliduser", f->bad_users, f->n_bad_users);
    key_bars(w, "invalidparty", f->bad_depts, f->n_bad_depts);
    key_bars(w, "invalidtag", f->bad_tags, f->n_bad_tags);
    key_str(w, "msgid", f->cmid);
    json_key(w, "duplicate");
    json_bool(w, f->dup);
    key_u64(w, "sent", f->count);
    key_str(w, "conv", f->conv);
    key_list(w, "reached", f->members, f->n_members);
    key_list(w, "limited", f->limited, f->n_limited);
    key_list(w, "unreached", f->unreached, f->n_unreached);
}

int api_render(const api_route_def *r, const herald_frame *f, json_w *w)
{
    if (r->mode == AM_SEND) {
        app_send(w, f);
        return 0;
    }
    switch (f->type) {
    case HERALD_FT_ACK:
        key_str(w, "conv", f->conv);
        key_u64(w, "seq", f->seq);
        key_u64(w, "time", f->ts);
        json_key(w, "duplicate");
        json_bool(w, f->dup);
        break;
    case HERALD_FT_OK:
        if (r->ftype == HERALD_FT_DND) {
            json_key(w, "on");
            json_bool(w, f->flags & 1);
            if (f->flags & 1)
                key_u64(w, "until", f->ts == UINT64_MAX ? 0 : f->ts);
        } else {
            key_u64(w, "seq", f->seq);
        }
        break;
    case HERALD_FT_HISTORY_RESULT:
        json_key(w, "messages");
        json_arr(w);
        for (uint32_t i = 0; i < f->n_msgs; i++)
            write_msg(w, &f->msgs[i]);
        json_arr_end(w);
        json_key(w, "more");
        json_bool(w, f->more);
        break;
    case HERALD_FT_RECEIPTS_RESULT:
        key_str(w, "conv", f->conv);
        key_u64(w, "seq", f->seq);
        key_list(w, "read", f->read, f->n_read);
        key_list(w, "unread", f->unread, f->n_unread);
        key_u64(w, "read_count", f->n_read_total);
        key_u64(w, "unread_count", f->n_unread_total);
        json_key(w, "more");
        json_bool(w, f->more);
        key_str(w, "next_after", f->after_id);
        break;
    case HERALD_FT_URGENT_RESULT:
        key_str(w, "conv", f->conv);
        key_u64(w, "seq", f->seq);
        key_list(w, "confirmed", f->read, f->n_read);
        key_list(w, "pending", f->unread, f->n_unread);
        break;
    case HERALD_FT_CONV_RESULT:
        if (r->op && strcmp(r->op, "list") == 0) {
            conv_list(w, f);
            break;
        }
        key_str(w, "conv", f->conv);
        key_str(w, "kind", f->kind);
        key_str(w, "owner", f->owner);
        key_list(w, "members", f->members, f->n_members);
        key_u64(w, "member_count", f->count);
        key_u64(w, "cap", f->cap);
        key_u64(w, "max_seq", f->seq);
        key_u64(w, "created", f->ts);
        key_u64(w, "group", f->group);
        if (f->leader)
            key_u64(w, "leader", f->leader);
        break;
    case HERALD_FT_DIR_RESULT:
        if (f->user.len) {
            key_str(w, "userid", f->user);
            key_str(w, "kind", f->kind);
            key_str(w, "name", f->name);
            key_str(w, "title", f->title);
            key_str(w, "department", f->dept);
            key_str(w, "corp", f->corp);
        } else {
            key_str(w, "id", f->dept);
            key_str(w, "name", f->name);
            key_str(w, "parentid", f->parent);
            if (r->op && strcmp(r->op, "dept.list") == 0) {
                key_list(w, "children", f->depts, f->n_depts);
                key_list(w, "users", f->members, f->n_members);
                json_key(w, "more");
                json_bool(w, f->more);
            }
        }
        break;
    case HERALD_FT_CONTACT_RESULT:
        key_str(w, "conv", f->conv);
        key_list(w, "owners", f->members, f->n_members);
        break;
    case HERALD_FT_TAG_RESULT:
        key_str(w, "external_userid", f->user);
        key_list(w, "tags", f->members, f->n_members);
        break;
    case HERALD_FT_MASS_RESULT:
        key_str(w, "msgid", f->conv);
        key_list(w, "reached", f->read, f->n_read);
        key_list(w, "limited", f->unread, f->n_unread);
        key_list(w, "not_reached", f->members, f->n_members);
        key_u64(w, "sent", f->count);
        key_bars(w, "invalidtag", f->bad_tags, f->n_bad_tags);
        break;
    case HERALD_FT_TRANSFER_RESULT:
        transfer(w, f);
        break;
    default:
        break;
    }
    return 0;
}
