/* mqtt_push.c — the MQTT framing's messages out: a push is published when
 * the connection's key holds everything before it (pv), else SYNC from the
 * key brings it in order; QoS 1 publishes wait in a window of MQ_OUT_MAX
 * for their PUBACK, and the session's key stays before the oldest one, so a
 * reconnect redelivers what was not acknowledged. See mqtt_int.h. */
#include <stdio.h>
#include <string.h>

#include "json.h"
#include "mqtt_int.h"

/* ---- the sync key --------------------------------------------------------- */

/* The session's key of group g follows dkey unless a QoS 1 publish of g
 * waits for its PUBACK: then it stays before the oldest one. */
void mq_key_update(mq *m, uint32_t g)
{
    uint64_t lo = UINT64_MAX;
    if (!m->ps)
        return;
    if (m->unacked[g] == 0) {
        m->ps->key_pos[g] = m->dkey[g];
        return;
    }
    for (uint32_t i = 0; i < m->nout; i++)
        if (m->out[i].group == g && m->out[i].pos < lo)
            lo = m->out[i].pos;
    m->ps->key_pos[g] = lo - 1;
}

/* 1, or 2 when QoS 1 subscriptions of both forms (conv/ and json/conv/)
 * exist: how many window slots one message may take. */
static uint32_t mq_forms(const mq *m)
{
    bool plain = false, js = false;
    for (uint32_t i = 0; m->ps && i < m->ps->nsubs; i++) {
        if (m->ps->subs[i].qos == 0)
            continue;
        if (m->ps->subs[i].json)
            js = true;
        else
            plain = true;
    }
    return plain && js ? 2 : 1;
}

void mq_sync(mq *m)
{
    herald_sync_group sg[MQTT_GROUPS_MAX];
    uint32_t n = 0, room = MQ_OUT_MAX - m->nout, forms = mq_forms(m);
    herald_frame f = {.type = HERALD_FT_SYNC};

    if (m->syncing || m->phase != MQ_LIVE || !m->need_sync)
        return;
    if (room < forms)
        return; /* the client's PUBACKs make room, then SYNC */
    if (m->obuf) {
        mq_defer(m); /* from an output op: right after it */
        return;
    }
    for (uint32_t g = 0; g < MQTT_GROUPS_MAX; g++)
        if (m->known[g])
            sg[n++] = (herald_sync_group){.group = g, .pos = m->dkey[g]};
    f.rid = RID(RK_SYNC, ++m->next_rid);
    f.sync_groups = sg;
    f.n_sync_groups = n;
    f.limit = room / forms; /* with both forms subscribed a message may go out twice */
    m->syncing = true;
    m->need_sync = false;
    mq_submit(m, &f);
}

/* ---- pushes ---------------------------------------------------------------- */

static uint16_t mq_pid(mq *m)
{
    for (;;) {
        bool used = false;
        if (++m->next_pid == 0)
            m->next_pid = 1;
        for (uint32_t i = 0; i < m->nout && !used; i++)
            used = m->out[i].pid == m->next_pid;
        if (!used)
            return m->next_pid;
    }
}

static void json_envelope(const herald_msg *msg, herald_buf *b)
{
    json_w w;
    json_init(&w, b);
    json_obj(&w);
    json_key(&w, "conv");
    json_str(&w, msg->conv.ptr, msg->conv.len);
    json_key(&w, "seq");
    json_u64(&w, msg->seq);
    json_key(&w, "from");
    json_str(&w, msg->from.ptr ? msg->from.ptr : "", msg->from.len);
    json_key(&w, "ts");
    json_u64(&w, msg->ts);
    json_key(&w, "kind");
    json_strz(&w, msg->kind == HERALD_MK_SYSTEM ? "system" : "text");
    json_key(&w, "flags");
    json_u64(&w, msg->flags);
    json_key(&w, "group");
    json_u64(&w, msg->group);
    json_key(&w, "pos");
    json_u64(&w, msg->pos);
    if (msg->id_corp.len) {
        json_key(&w, "corp");
        json_str(&w, msg->id_corp.ptr, msg->id_corp.len);
    }
    if (msg->id_title.len) {
        json_key(&w, "title");
        json_str(&w, msg->id_title.ptr, msg->id_title.len);
    }
    json_key(&w, "body");
    json_str(&w, msg->body.ptr ? msg->body.ptr : "", msg->body.len);
    json_obj_end(&w);
}

/* Publishes msg to the client under each matching form of subscription.
 * false (nothing sent) when the QoS 1 window has no room for it. */
static bool mq_publish_msg(mq *m, const herald_msg *msg)
{
    int raw = -1, js = -1;
    uint32_t need = 0;
    char topic[MQTT_CONV_MAX + 16];
    herald_buf b = {0};

    if (!m->ps || msg->conv.len > MQTT_CONV_MAX)
        return true;
    for (uint32_t i = 0; i < m->ps->nsubs; i++) {
        const mqtt_sub *s = &m->ps->subs[i];
        int *q = s->json ? &js : &raw;
        if (s->kind == MQTT_SUB_CONV &&
            !((uint32_t)(s->flen - s->conv_off) == msg->conv.len &&
              memcmp(s->filter + s->conv_off, msg->conv.ptr, msg->conv.len) == 0))
            continue;
        if ((int)s->qos > *q)
            *q = s->qos;
    }
    /* Conversation events (membership, recalls) reach the envelope form only. */
    if (msg->kind != HERALD_MK_TEXT || (msg->flags & HERALD_MSGF_RECALLED))
        raw = -1;
    need = (raw == 1) + (js == 1);
    if (m->nout + need > MQ_OUT_MAX)
        return false;
    for (int form = 0; form < 2; form++) {
        int q = form ? js : raw;
        uint16_t pid = 0;
        int tl, rc;
        if (q < 0)
            continue;
        tl = snprintf(topic, sizeof topic, "%sconv/%.*s", form ? "json/" : "",
                      (int)msg->conv.len, msg->conv.ptr);
        if (q == 1) {
            pid = mq_pid(m);
            if (m->unacked[msg->group]++ == 0)
                m->ps->key_pos[msg->group] = msg->pos - 1;
            m->out[m->nout++] = (mq_out){.pid = pid, .group = msg->group, .pos = msg->pos};
        }
        if (form) {
            herald_buf env = {0};
            json_envelope(msg, &env);
            rc = mqtt_put_publish(&b, topic, (size_t)tl, (uint8_t)q, false, false, pid, env.data,
                                  env.len);
            herald_buf_free(&env);
        } else {
            rc = mqtt_put_publish(&b, topic, (size_t)tl, (uint8_t)q, false, false, pid,
                                  msg->body.ptr, msg->body.len);
        }
        if (rc) {
            herald_buf_free(&b);
            mq_drop(m, "out of memory encoding a PUBLISH");
            return true;
        }
    }
    mq_write(m, &b);
    herald_buf_free(&b);
    return true;
}

/* A pushed message: published when the key holds everything before it,
 * else left to SYNC. */
void mq_push(mq *m, const herald_msg *msg)
{
    uint32_t g = msg->group;

    if (m->phase != MQ_LIVE || g >= MQTT_GROUPS_MAX || !msg->pos)
        return;
    if (!m->known[g]) {
        m->known[g] = true; /* a group the WELCOME did not name: from its start */
        m->dkey[g] = 0;
    }
    if (msg->pos <= m->dkey[g])
        return; /* had it already (SYNC, or a deposed leader's late push) */
    if (m->syncing || msg->prev > m->dkey[g] || !mq_publish_msg(m, msg)) {
        m->need_sync = true; /* SYNC from the key brings it, in order */
        mq_sync(m);
        return;
    }
    m->dkey[g] = msg->pos;
    mq_key_update(m, g);
}

void mq_sync_result(mq *m, const herald_frame *f)
{
    bool cut = false;

    m->syncing = false;
    for (uint32_t i = 0; i < f->n_msgs && m->phase == MQ_LIVE; i++) {
        const herald_msg *msg = &f->msgs[i];
        uint32_t g = msg->group;
        if (g >= MQTT_GROUPS_MAX || msg->pos <= m->dkey[g])
            continue;
        if (!mq_publish_msg(m, msg)) {
            cut = true; /* no room: the rest comes with the next SYNC */
            break;
        }
        m->known[g] = true;
        m->dkey[g] = msg->pos;
        mq_key_update(m, g);
    }
    if (m->phase != MQ_LIVE)
        return;
    if (!cut)
        for (uint32_t i = 0; i < f->n_sync_groups; i++) {
            uint32_t g = f->sync_groups[i].group;
            if (g < MQTT_GROUPS_MAX && f->sync_groups[i].pos > m->dkey[g]) {
                m->known[g] = true;
                m->dkey[g] = f->sync_groups[i].pos;
                mq_key_update(m, g);
            }
        }
    if (cut || f->more)
        m->need_sync = true;
    mq_sync(m);
}
