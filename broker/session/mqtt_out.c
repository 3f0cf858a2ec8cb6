/*
 * mqtt_out.c — the MQTT framing's output and deferred work, under mqtt.c
 * (packets in, frames out) and mqtt_push.c (pushes and SYNC): inside an
 * output op (encode, put_deliver, reframe, close) the conn is in the middle
 * of queueing, so bytes go to the op's buffer, and what would call back into
 * the conn (dispatching a SYNC, closing) waits for defer_w, whose callback
 * (mqtt.c) runs in the same loop iteration. Loop thread only.
 */
#include <herald/error.h>

#include "log.h"
#include "mqtt_int.h"

void mq_defer(mq *m)
{
    if (m->deferred)
        return;
    m->deferred = true;
    conn_ref(m->c);
    ev_feed_event(m->c->t->loop, &m->defer_w, EV_CHECK);
}

/* Queues MQTT bytes. */
void mq_write(mq *m, const herald_buf *b)
{
    if (!b->len)
        return;
    if (m->obuf) {
        if (herald_buf_append(m->obuf, b->data, b->len) != 0)
            log_warn("mqtt.out", "%s: out of memory queueing %zu bytes", conn_label(m->c), b->len);
    } else {
        conn_queue_wire(m->c, b->data, b->len);
    }
}

void mq_end(mq *m)
{
    m->phase = MQ_DEAD;
    if (m->obuf) {
        m->defer_close = true;
        mq_defer(m);
    } else {
        conn_close_after_flush(m->c);
    }
}

/* A protocol violation or an error MQTT cannot report: logged, closed. */
void mq_drop(mq *m, const char *why)
{
    if (m->phase == MQ_DEAD)
        return;
    log_info("mqtt.close", "%s user=%s client=%.*s: %s", conn_label(m->c),
             m->c->sess.authed ? m->c->sess.user : "-", (int)m->cid_len, m->cid, why);
    mq_end(m);
}

/* Submits a Herald frame through the common path (limits, handler); never
 * from inside an output op. */
void mq_submit(mq *m, herald_frame *f)
{
    int rc = conn_dispatch_frame(m->c, f);
    if (rc && rc != HERALD_ECLOSED)
        mq_drop(m, "could not hand a request over (out of memory)");
}
