/*
 * mqtt.c — the MQTT 3.1.1 framing of the session tier: an MQTT client is a
 * Herald session whose packets are translated into Herald frames that take
 * the common dispatch path (limits, HELLO first, the tier's handler), and
 * whose Herald replies and pushes are translated back into MQTT packets.
 * The translation (README, "MQTT"):
 *
 *   CONNECT (password = token)      → HELLO; WELCOME → CONNACK 0, ERROR → CONNACK 4/5/3
 *   PUBLISH conv/ID QoS 1           → SEND (cmid from the persistent session);
 *                                     ACK → PUBACK, in the order received
 *   PUBLISH conv/ID QoS 0           → SEND, its answer only logged
 *   SUBSCRIBE conv/ID               → CONV info (membership) → SUBACK 1 / 0x80
 *   SUBSCRIBE conv/+, conv/#, #     → SUBACK: every conversation of the user
 *   DELIVER (pv within the key)     → PUBLISH conv/ID (or json/conv/ID: envelope)
 *   DELIVER past a gap, reconnect   → SYNC from the session's key → PUBLISH each
 *   PINGREQ                         → PING; PONG → PINGRESP
 *
 * Floors: mqtt.c (packets in, the framing ops) → mqtt_push.c (pushes,
 * SYNC) → mqtt_out.c (output, deferred work) → mqtt_sess.c, mqtt_codec.c.
 * Loop thread only.
 */
#include <herald/error.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "mqtt_int.h"


static void mq_handle(mq *m, const herald_frame *f);
static void mq_process(mq *m, const uint8_t *p, size_t len, size_t *used);

/* ---- deferred work (fed by mq_defer, mqtt_out.c) ------------------------- */

static void mq_on_defer(struct ev_loop *loop, ev_check *w, int revents)
{
    mq *m = w->data;
    conn *c = m->c;
    (void)loop;
    (void)revents;
    m->deferred = false;
    if (m->defer_close) {
        m->defer_close = false;
        conn_close_after_flush(c);
    } else if (conn_reading(c)) {
        if (m->defer_early && m->phase == MQ_LIVE) {
            herald_buf e = m->early;
            size_t used = 0;
            m->defer_early = false;
            m->early = (herald_buf){0};
            mq_process(m, e.data, e.len, &used);
            herald_buf_free(&e);
        }
        mq_sync(m);
    }
    conn_unref(c); /* taken when fed */
}

static void mq_connack_close(mq *m, uint8_t code, const char *why)
{
    herald_buf b = {0};
    log_info("mqtt.refuse", "%s client=%.*s: CONNACK %u: %s", conn_label(m->c),
             (int)m->cid_len, m->cid, code, why);
    if (mqtt_put_connack(&b, false, code) == 0)
        mq_write(m, &b);
    herald_buf_free(&b);
    mq_end(m);
}

/* ---- CONNECT and its answer ---------------------------------------------- */

static void mq_connect(mq *m, const mqtt_packet *p)
{
    uint8_t h[crypto_generichash_BYTES_MIN];
    herald_frame f = {.type = HERALD_FT_HELLO, .version = HERALD_PROTOCOL_VERSION};

    memcpy(m->cid, p->client_id.ptr, p->client_id.len);
    m->cid_len = p->client_id.len;
    m->cid[m->cid_len] = '\0';
    m->clean = p->clean;
    m->keepalive = p->keepalive;
    if (p->will) {
        mq_connack_close(m, MQTT_CONNACK_NOT_AUTHORIZED, "wills are not supported");
        return;
    }
    if (!p->has_pass || p->pass.len == 0) {
        mq_connack_close(m, MQTT_CONNACK_BAD_CREDENTIALS, "no password (a Herald token)");
        return;
    }
    if (p->has_user) {
        if (p->user.len > TOKEN_ID_MAX || !token_id_valid(p->user.ptr, p->user.len)) {
            mq_connack_close(m, MQTT_CONNACK_BAD_CREDENTIALS, "user name is not a user id");
            return;
        }
        memcpy(m->user, p->user.ptr, p->user.len);
        m->user[p->user.len] = '\0';
    }
    if (p->client_id.len == 0) {
        /* [MQTT-3.1.3-6]: a clean session without an id gets one. */
        uint8_t r[8];
        randombytes_buf(r, sizeof r);
        m->cid_len = (size_t)snprintf(m->cid, sizeof m->cid, "auto-%02x%02x%02x%02x%02x%02x%02x%02x",
                                      r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]);
    }
    crypto_generichash(h, sizeof h, (const uint8_t *)m->cid, m->cid_len, NULL, 0);
    snprintf(m->cmid_prefix, sizeof m->cmid_prefix, "mq%02x%02x%02x%02x%02x%02x%02x%02x", h[0],
             h[1], h[2], h[3], h[4], h[5], h[6], h[7]);
    f.rid = RID(RK_HELLO, 1);
    f.token = (herald_str){.ptr = p->pass.ptr, .len = p->pass.len};
    m->phase = MQ_WAIT_WELCOME;
    mq_submit(m, &f);
}

static uint8_t connack_code(uint32_t err)
{
    switch (err) {
    case HERALD_EUNAUTHORIZED:
    case HERALD_EEXPIRED:
    case HERALD_EPROTOCOL:
    case HERALD_EINVAL:
        return MQTT_CONNACK_BAD_CREDENTIALS;
    case HERALD_EFORBIDDEN:
        return MQTT_CONNACK_NOT_AUTHORIZED;
    default:
        return MQTT_CONNACK_UNAVAILABLE; /* BUSY, UNAVAILABLE, SHUTDOWN, … */
    }
}

static void mq_welcome(mq *m, const herald_frame *f)
{
    bool existed = false;
    void *taken = NULL;
    herald_buf b = {0};
    char tenant[TOKEN_ID_MAX + 1], user[TOKEN_ID_MAX + 1];
    int rc;

    snprintf(tenant, sizeof tenant, "%.*s", (int)f->tenant.len, f->tenant.ptr ? f->tenant.ptr : "");
    snprintf(user, sizeof user, "%.*s", (int)f->user.len, f->user.ptr ? f->user.ptr : "");
    if (m->user[0] && strcmp(m->user, user) != 0) {
        mq_connack_close(m, MQTT_CONNACK_BAD_CREDENTIALS,
                         "the user name differs from the token's user");
        return;
    }
    rc = mqtt_sess_open(m->table, tenant, user, m->cid, m->cid_len, !m->clean, m, &m->ps,
                        &existed, &taken);
    if (rc) {
        mq_connack_close(m, MQTT_CONNACK_UNAVAILABLE,
                         rc == HERALD_EBUSY ? "persistent session table full" : "out of memory");
        return;
    }
    if (taken) {
        mq *old = taken;
        old->ps = NULL; /* [MQTT-3.1.4-2]: the older connection goes */
        if (conn_reading(old->c)) {
            old->obuf = NULL;
            old->defer_close = true;
            old->phase = MQ_DEAD;
            log_info("mqtt.close", "%s client=%.*s: session taken over by %s",
                     conn_label(old->c), (int)old->cid_len, old->cid, conn_label(m->c));
            mq_defer(old);
        }
    }
    for (uint32_t i = 0; i < f->n_sync_groups; i++) {
        uint32_t g = f->sync_groups[i].group;
        if (g < MQTT_GROUPS_MAX) {
            m->known[g] = true;
            m->dkey[g] = f->sync_groups[i].pos;
        }
    }
    if (existed && m->ps->has_key) {
        /* Resume: everything after the session's key, through SYNC. */
        for (uint32_t g = 0; g < MQTT_GROUPS_MAX; g++)
            if (m->known[g])
                m->dkey[g] = m->ps->key_pos[g];
        m->need_sync = true;
    } else {
        memcpy(m->ps->key_pos, m->dkey, sizeof m->dkey);
        m->ps->has_key = true;
    }
    if (mqtt_put_connack(&b, existed, MQTT_CONNACK_ACCEPTED) == 0)
        mq_write(m, &b);
    herald_buf_free(&b);
    m->phase = MQ_LIVE;
    /* Keep-alive × 1.5 is the idle timeout; 0 keeps the gateway's. */
    if (m->keepalive)
        conn_set_idle_ms(m->c, (uint32_t)m->keepalive * 1500u);
    log_info("mqtt.connect", "%s user=%s client=%.*s clean=%d resumed=%d", conn_label(m->c), user,
             (int)m->cid_len, m->cid, m->clean, existed);
    if (m->early.len) {
        m->defer_early = true; /* what the client sent before CONNACK, now */
        mq_defer(m);
    }
    mq_sync(m);
}

/* ---- PUBLISH, PUBACK ------------------------------------------------------ */

/* "conv/ID" → ID (valid id) or NULL. */
static const char *conv_of(const mqtt_str *t, size_t *len)
{
    if (t->len <= 5 || memcmp(t->ptr, "conv/", 5) != 0 || !token_id_valid(t->ptr + 5, t->len - 5u))
        return NULL;
    *len = t->len - 5u;
    return t->ptr + 5;
}

static void mq_flush_pubacks(mq *m)
{
    herald_buf b = {0};
    while (m->in_len && m->in[m->in_head].done) {
        if (mqtt_put_puback(&b, m->in[m->in_head].pid) != 0)
            break;
        m->in_head = (m->in_head + 1) % MQ_IN_MAX;
        m->in_len--;
    }
    mq_write(m, &b);
    herald_buf_free(&b);
}

static void mq_publish_in(mq *m, const mqtt_packet *p)
{
    herald_frame f = {.type = HERALD_FT_SEND};
    char cmid[80];
    size_t cl = 0;
    const char *conv = conv_of(&p->topic, &cl);

    if (p->retain) {
        mq_drop(m, "retained messages are not supported (PUBLISH with RETAIN)");
        return;
    }
    if (!conv) {
        mq_drop(m, "PUBLISH topic must be conv/ID with a conversation id");
        return;
    }
    f.conv = (herald_str){.ptr = conv, .len = (uint32_t)cl};
    f.body = (herald_str){.ptr = (const char *)p->payload, .len = (uint32_t)p->payload_len};
    if (p->qos == 0) {
        f.rid = RID(RK_SEND0, ++m->next_rid);
        mq_submit(m, &f);
        return;
    }
    if (m->in_len == MQ_IN_MAX) {
        mq_drop(m, "too many QoS 1 publishes waiting for their PUBACK");
        return;
    }
    snprintf(cmid, sizeof cmid, "%s.%llx.%llx", m->cmid_prefix, (unsigned long long)m->ps->epoch,
             (unsigned long long)mqtt_sess_pub_number(m->ps, p->pid, p->dup));
    f.cmid = herald_str_z(cmid);
    f.rid = RID(RK_SEND1, ++m->next_rid);
    m->in[(m->in_head + m->in_len) % MQ_IN_MAX] = (mq_in){.rid = f.rid, .pid = p->pid};
    m->in_len++;
    mq_submit(m, &f);
}

static void mq_puback_in(mq *m, uint16_t pid)
{
    for (uint32_t i = 0; i < m->nout; i++) {
        if (m->out[i].pid != pid)
            continue;
        uint32_t g = m->out[i].group;
        m->out[i] = m->out[--m->nout];
        m->unacked[g]--;
        mq_key_update(m, g);
        mq_sync(m); /* room again for what was left behind */
        return;
    }
    log_debug("mqtt.puback", "%s: PUBACK for unknown packet id %u", conn_label(m->c), pid);
}

/* ---- SUBSCRIBE, UNSUBSCRIBE ------------------------------------------------ */

static void mq_subp_finish(mq *m, uint32_t k)
{
    mq_subp *sp = m->subp[k];
    herald_buf b = {0};

    m->subp[k] = NULL;
    for (uint16_t i = 0; i < sp->n; i++)
        if (sp->codes[i] != MQTT_SUBACK_FAILURE && mqtt_sess_subscribe(m->ps, &sp->subs[i]) != 0)
            sp->codes[i] = MQTT_SUBACK_FAILURE; /* MQTT_SUBS_MAX reached */
    if (mqtt_put_suback(&b, sp->pid, sp->codes, sp->n) == 0)
        mq_write(m, &b);
    herald_buf_free(&b);
    free(sp);
}

static void mq_subscribe(mq *m, const mqtt_packet *p)
{
    uint32_t k = 0;
    mq_subp *sp;

    while (k < MQ_SUBP_MAX && m->subp[k])
        k++;
    if (k == MQ_SUBP_MAX) {
        mq_drop(m, "too many SUBSCRIBE packets waiting for their SUBACK");
        return;
    }
    sp = calloc(1, sizeof *sp);
    if (!sp) {
        mq_drop(m, "out of memory");
        return;
    }
    sp->pid = p->pid;
    sp->n = p->n_filters;
    sp->id = ++m->next_subp & 0xffffffu;
    m->subp[k] = sp;
    for (uint16_t i = 0; i < p->n_filters; i++) {
        const mqtt_str *fl = &p->filters[i];
        mqtt_sub *s = &sp->subs[i];
        const char *rest = fl->ptr;
        size_t rl = fl->len;
        sp->codes[i] = MQTT_SUBACK_FAILURE;
        if (fl->len >= sizeof s->filter)
            continue;
        memcpy(s->filter, fl->ptr, fl->len);
        s->filter[fl->len] = '\0';
        s->flen = fl->len;
        s->qos = p->req_qos[i] ? 1 : 0; /* QoS 2 requested: 1 granted */
        if (rl >= 5 && memcmp(rest, "json/", 5) == 0) {
            s->json = true;
            rest += 5;
            rl -= 5;
        }
        if ((rl == 6 && (memcmp(rest, "conv/+", 6) == 0 || memcmp(rest, "conv/#", 6) == 0)) ||
            (rl == 1 && rest[0] == '#')) {
            s->kind = MQTT_SUB_ALL;
            sp->codes[i] = s->qos;
        } else if (rl > 5 && memcmp(rest, "conv/", 5) == 0 &&
                   token_id_valid(rest + 5, rl - 5)) {
            s->kind = MQTT_SUB_CONV; /* granted if the user may read it: checked below */
            s->conv_off = (uint16_t)(rest + 5 - fl->ptr);
            sp->left++;
        }
    }
    /* One CONV info per conversation filter; the guard keeps sp until
     * every check is submitted (dev answers within the call). */
    sp->left++;
    for (uint16_t i = 0; i < sp->n && m->phase == MQ_LIVE; i++) {
        mqtt_sub *s = &sp->subs[i];
        herald_frame f = {.type = HERALD_FT_CONV, .op = herald_str_z("info")};
        if (s->kind != MQTT_SUB_CONV)
            continue;
        f.conv = (herald_str){.ptr = s->filter + s->conv_off, .len = (uint32_t)(s->flen - s->conv_off)};
        f.rid = RID(RK_SUB, (uint64_t)sp->id << 8 | i);
        mq_submit(m, &f);
    }
    if (m->phase != MQ_LIVE)
        return; /* closed; freed with the connection */
    if (--sp->left == 0)
        mq_subp_finish(m, k);
}

static void mq_sub_answer(mq *m, uint64_t rid, bool ok)
{
    uint32_t id = (uint32_t)(rid >> 8) & 0xffffffu;
    uint16_t i = rid & 0xffu;
    for (uint32_t k = 0; k < MQ_SUBP_MAX; k++) {
        mq_subp *sp = m->subp[k];
        if (!sp || sp->id != id || i >= sp->n)
            continue;
        sp->codes[i] = ok ? sp->subs[i].qos : MQTT_SUBACK_FAILURE;
        if (--sp->left == 0)
            mq_subp_finish(m, k);
        return;
    }
}

static void mq_unsubscribe(mq *m, const mqtt_packet *p)
{
    herald_buf b = {0};
    for (uint16_t i = 0; i < p->n_filters; i++)
        mqtt_sess_unsubscribe(m->ps, p->filters[i].ptr, p->filters[i].len);
    if (mqtt_put_unsuback(&b, p->pid) == 0)
        mq_write(m, &b);
    herald_buf_free(&b);
}

/* ---- input ---------------------------------------------------------------- */

static void mq_packet(mq *m, const mqtt_packet *p)
{
    switch (p->type) {
    case MQTT_CONNECT:
        mq_drop(m, "a second CONNECT"); /* [MQTT-3.1.0-2] */
        break;
    case MQTT_PUBLISH:
        mq_publish_in(m, p);
        break;
    case MQTT_PUBACK:
        mq_puback_in(m, p->pid);
        break;
    case MQTT_SUBSCRIBE:
        mq_subscribe(m, p);
        break;
    case MQTT_UNSUBSCRIBE:
        mq_unsubscribe(m, p);
        break;
    case MQTT_PINGREQ: {
        herald_frame f = {.type = HERALD_FT_PING};
        mq_submit(m, &f); /* the tier answers PONG → PINGRESP */
        break;
    }
    case MQTT_DISCONNECT:
        m->phase = MQ_DEAD;
        conn_close_quiet(m->c);
        break;
    default:
        break;
    }
}

/* Decodes and handles every whole packet of p[0..len); *used = bytes consumed. */
static void mq_process(mq *m, const uint8_t *p, size_t len, size_t *used)
{
    mqtt_packet pk; /* ~1.2 KB */
    size_t off = 0;
    size_t cap = conn_config(m->c)->max_frame;

    while (off < len && m->phase != MQ_DEAD && conn_open(m->c)) {
        size_t sz = 0;
        int rc = mqtt_peek(p + off, len - off, cap, &sz);
        if (rc) {
            mq_drop(m, rc == MQTT_ETOO_BIG ? "packet exceeds the frame cap" : mqtt_err_text(rc));
            break;
        }
        if (sz == 0 || sz > len - off)
            break;
        if (m->phase == MQ_WAIT_WELCOME) {
            /* Allowed before CONNACK; handled once the session exists. */
            if (m->early.len + sz > MQ_EARLY_MAX) {
                mq_drop(m, "too much sent before CONNACK");
                break;
            }
            if (herald_buf_append(&m->early, p + off, sz) != 0) {
                mq_drop(m, "out of memory");
                break;
            }
            off += sz;
            continue;
        }
        rc = mqtt_decode(p + off, sz, &pk);
        off += sz;
        if (m->phase == MQ_WAIT_CONNECT) {
            if (rc == MQTT_EVERSION)
                mq_connack_close(m, MQTT_CONNACK_BAD_VERSION, mqtt_err_text(rc));
            else if (rc == MQTT_ECLIENT_ID)
                mq_connack_close(m, MQTT_CONNACK_BAD_CLIENT_ID, mqtt_err_text(rc));
            else if (rc)
                mq_drop(m, mqtt_err_text(rc));
            else if (pk.type != MQTT_CONNECT)
                mq_drop(m, "the first packet must be CONNECT"); /* [MQTT-3.1.0-1] */
            else
                mq_connect(m, &pk);
            continue;
        }
        if (rc) {
            char why[96];
            snprintf(why, sizeof why, "%s (packet type %u)", mqtt_err_text(rc), p[off - sz] >> 4);
            mq_drop(m, why);
            break;
        }
        conn_touch(m->c);
        mq_packet(m, &pk);
    }
    *used = off;
}

/* ---- Herald frames to this connection ------------------------------------- */

static void mq_error(mq *m, const herald_frame *f)
{
    unsigned kind = RID_KIND(f->ref);
    char why[200];

    if (m->phase == MQ_WAIT_WELCOME || kind == RK_HELLO) {
        snprintf(why, sizeof why, "HELLO refused: %s: %.*s", herald_err_name((int)f->code),
                 (int)f->text.len, f->text.ptr ? f->text.ptr : "");
        mq_connack_close(m, connack_code(f->code), why);
        return;
    }
    switch (kind) {
    case RK_SEND0:
        log_info("mqtt.publish", "%s user=%s: QoS 0 publish not stored: %s: %.*s",
                 conn_label(m->c), m->c->sess.user, herald_err_name((int)f->code),
                 (int)f->text.len, f->text.ptr ? f->text.ptr : "");
        return;
    case RK_SUB:
        mq_sub_answer(m, f->ref, false);
        return;
    case RK_SEND1:
        /* 3.1.1 has no negative PUBACK: the client learns by the close and
         * resends with DUP (a duplicate is recognised by its cmid). */
        snprintf(why, sizeof why, "QoS 1 publish refused by Herald: %s: %.*s",
                 herald_err_name((int)f->code), (int)f->text.len, f->text.ptr ? f->text.ptr : "");
        mq_drop(m, why);
        return;
    default:
        snprintf(why, sizeof why, "%s: %.*s", herald_err_name((int)f->code), (int)f->text.len,
                 f->text.ptr ? f->text.ptr : "");
        mq_drop(m, why);
    }
}

static void mq_handle(mq *m, const herald_frame *f)
{
    if (m->phase == MQ_DEAD)
        return;
    switch (f->type) {
    case HERALD_FT_WELCOME:
        if (m->phase == MQ_WAIT_WELCOME)
            mq_welcome(m, f);
        break;
    case HERALD_FT_ERROR:
        mq_error(m, f);
        break;
    case HERALD_FT_ACK:
        if (RID_KIND(f->rid) == RK_SEND1) {
            for (uint32_t i = 0; i < m->in_len; i++) {
                mq_in *e = &m->in[(m->in_head + i) % MQ_IN_MAX];
                if (e->rid == f->rid) {
                    e->done = true;
                    break;
                }
            }
            mq_flush_pubacks(m);
        }
        break;
    case HERALD_FT_CONV_RESULT:
        if (RID_KIND(f->rid) == RK_SUB)
            mq_sub_answer(m, f->rid, true);
        break;
    case HERALD_FT_SYNC_RESULT:
        if (RID_KIND(f->rid) == RK_SYNC)
            mq_sync_result(m, f);
        break;
    case HERALD_FT_DELIVER:
        mq_push(m, &f->msg);
        break;
    case HERALD_FT_PONG: {
        herald_buf b = {0};
        if (mqtt_put_pingresp(&b) == 0)
            mq_write(m, &b);
        herald_buf_free(&b);
        break;
    }
    default:
        break; /* RECEIPT, REMIND, DND…: no MQTT form */
    }
}

/* ---- the framing ops --------------------------------------------------------- */

static int mq_listener_new(const gw_config *cfg, void **lst)
{
    mqtt_table *t = NULL;
    int rc = mqtt_table_create(cfg->mqtt_sessions, &t);
    *lst = t;
    return rc;
}

static void mq_listener_free(void *lst) { mqtt_table_destroy(lst); }

static int mq_conn_new(void *lst, conn *c, void **st)
{
    mq *m = calloc(1, sizeof *m);
    if (!m)
        return HERALD_ENOMEM;
    m->c = c;
    m->table = lst;
    ev_check_init(&m->defer_w, mq_on_defer);
    m->defer_w.data = m;
    *st = m;
    return 0;
}

static void mq_conn_free(void *st)
{
    mq *m = st;
    if (!m)
        return;
    /* The session goes offline (a persistent one stays in the table). */
    mqtt_sess_close(m->table, m->ps, m);
    for (uint32_t k = 0; k < MQ_SUBP_MAX; k++)
        free(m->subp[k]);
    herald_buf_free(&m->early);
    free(m);
}

static size_t mq_input(conn *c, void *st, uint8_t *p, size_t len)
{
    size_t used = 0;
    (void)c;
    mq_process(st, p, len, &used);
    return used;
}

static int mq_encode(conn *c, void *st, const herald_frame *f, herald_buf *out)
{
    mq *m = st;
    (void)c;
    m->obuf = out;
    mq_handle(m, f);
    m->obuf = NULL;
    return 0;
}

static int mq_put_deliver(conn *c, void *st, deliver_tpl *t, uint32_t flags, uint64_t prev,
                          herald_buf *out)
{
    mq *m = st;
    herald_msg msg = t->f.msg;
    (void)c;
    msg.flags = flags;
    msg.prev = prev;
    m->obuf = out;
    mq_push(m, &msg);
    m->obuf = NULL;
    return 0;
}

/* Herald TCP frames forwarded from a node (gateway): each translated. */
static int mq_reframe(conn *c, void *st, const uint8_t *p, size_t n, herald_buf *out)
{
    mq *m = st;
    herald_limits lim = {.max_frame = UINT32_MAX - HERALD_FRAME_HEADER};
    size_t off = 0;
    int rc = 0;
    (void)c;

    m->obuf = out;
    while (off < n && rc == 0) {
        size_t flen = 0;
        herald_frame f;
        rc = herald_frame_peek(p + off, n - off, lim.max_frame, &flen);
        if (rc == 0 && flen == 0)
            rc = HERALD_EPROTOCOL; /* not whole frames */
        if (rc)
            break;
        rc = herald_frame_decode(p + off + HERALD_FRAME_HEADER, flen - HERALD_FRAME_HEADER, &lim,
                                 &f);
        if (rc == 0) {
            mq_handle(m, &f);
            herald_frame_release(&f);
        }
        off += flen;
    }
    m->obuf = NULL;
    return rc;
}

static int mq_close(conn *c, void *st, int code, const char *text, herald_buf *out)
{
    mq *m = st;
    (void)c;
    if (code == 0 || m->phase == MQ_DEAD)
        return 0;
    m->obuf = out;
    if (m->phase == MQ_WAIT_WELCOME) {
        char why[200];
        snprintf(why, sizeof why, "HELLO refused: %s: %s", herald_err_name(code),
                 text ? text : herald_strerror(code));
        mq_connack_close(m, connack_code((uint32_t)code), why);
    } else {
        /* MQTT 3.1.1 has no packet for it: the client sees the close. */
        log_info("mqtt.close", "%s user=%s client=%.*s: %s: %s", conn_label(m->c),
                 m->c->sess.authed ? m->c->sess.user : "-", (int)m->cid_len, m->cid,
                 herald_err_name(code), text ? text : herald_strerror(code));
        m->phase = MQ_DEAD;
    }
    m->obuf = NULL;
    return 0;
}

/* Over the connection cap: CONNACK "server unavailable" (clients read it as
 * the answer to the CONNECT they send). */
static int mq_refuse(int code, const char *text, herald_buf *out)
{
    (void)code;
    (void)text;
    return mqtt_put_connack(out, false, MQTT_CONNACK_UNAVAILABLE);
}

const framing_ops framing_mqtt = {
    .name = "mqtt",
    .listener_new = mq_listener_new,
    .listener_free = mq_listener_free,
    .conn_new = mq_conn_new,
    .conn_free = mq_conn_free,
    .input = mq_input,
    .encode = mq_encode,
    .put_deliver = mq_put_deliver,
    .reframe = mq_reframe,
    .close = mq_close,
    .refuse = mq_refuse,
};
