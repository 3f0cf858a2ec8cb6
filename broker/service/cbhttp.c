/* cbhttp.c — callback POSTs on a curl thread; see cbhttp.h. */
#include "cbhttp.h"

#include <curl/curl.h>
#include <ev.h>
#include <herald/error.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define CBHTTP_RESPONSE_MAX 4096u /* response bytes read (and dropped) */

struct cbhttp {
    struct ev_loop *loop;
    cbhttp_done_fn done;
    void *arg;
    ev_async wake;           /* results are waiting */
    pthread_t thr;
    bool thr_started;
    pthread_mutex_t mu;      /* guards todo, finished, stop */
    cbhttp_req *todo;        /* posted, not yet given to curl (LIFO, reversed on take) */
    cbhttp_req *finished;    /* done by the thread, not yet called back */
    bool stop;
    CURLM *multi;            /* the thread's */
    cbhttp_req *running;     /* the thread's: transfers curl has (via next) */
    uint32_t inflight;       /* loop thread's count */
};

static size_t drop_body(char *p, size_t size, size_t n, void *arg)
{
    (void)p;
    (void)arg;
    return size * n; /* the answer's body means nothing to us */
}

static void finish(cbhttp *h, cbhttp_req *r)
{
    pthread_mutex_lock(&h->mu);
    r->next = h->finished;
    h->finished = r;
    pthread_mutex_unlock(&h->mu);
    ev_async_send(h->loop, &h->wake);
}

static void start_one(cbhttp *h, cbhttp_req *r)
{
    CURL *e = curl_easy_init();
    struct curl_slist *hl = curl_slist_append(NULL, "Content-Type: application/json");
    for (uint32_t i = 0; hl && i < r->n_headers; i++) {
        struct curl_slist *n = curl_slist_append(hl, r->headers[i]);
        if (!n) {
            curl_slist_free_all(hl);
            hl = NULL;
        }
        hl = n ? n : hl;
    }
    hl = hl ? curl_slist_append(hl, "Expect:") : NULL;
    if (!e || !hl) {
        if (e)
            curl_easy_cleanup(e);
        curl_slist_free_all(hl);
        r->status = 0;
        snprintf(r->err, sizeof r->err, "out of memory");
        finish(h, r);
        return;
    }
    r->easy = e;
    r->hl = hl;
    curl_easy_setopt(e, CURLOPT_URL, r->url);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, (const char *)r->body.data);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)r->body.len);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, drop_body);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "herald-callbacks/1");
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        curl_easy_cleanup(e);
        curl_slist_free_all(hl);
        r->easy = NULL;
        r->hl = NULL;
        snprintf(r->err, sizeof r->err, "curl refused the transfer");
        finish(h, r);
        return;
    }
    r->next = h->running;
    h->running = r;
}

/* Takes r off the running list and frees its transfer. */
static void unrun(cbhttp *h, cbhttp_req *r)
{
    for (cbhttp_req **pp = &h->running; *pp; pp = &(*pp)->next)
        if (*pp == r) {
            *pp = r->next;
            break;
        }
    r->next = NULL;
    curl_multi_remove_handle(h->multi, r->easy);
    curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->hl);
    r->easy = NULL;
    r->hl = NULL;
}

static void reap(cbhttp *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left)) != NULL) {
        cbhttp_req *r = NULL;
        if (m->msg != CURLMSG_DONE)
            continue;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        r->status = 0;
        if (m->data.result == CURLE_OK)
            curl_easy_getinfo(m->easy_handle, CURLINFO_RESPONSE_CODE, &r->status);
        else
            snprintf(r->err, sizeof r->err, "%s", curl_easy_strerror(m->data.result));
        if (r->status && (r->status < 200 || r->status > 299))
            snprintf(r->err, sizeof r->err, "HTTP %ld", r->status);
        unrun(h, r);
        finish(h, r);
    }
}

static void *run(void *arg)
{
    cbhttp *h = arg;
    for (;;) {
        cbhttp_req *take, *rev = NULL;
        bool stop;
        int running = 0;
        pthread_mutex_lock(&h->mu);
        take = h->todo;
        h->todo = NULL;
        stop = h->stop;
        pthread_mutex_unlock(&h->mu);
        while (take) { /* posting order */
            cbhttp_req *n = take->next;
            take->next = rev;
            rev = take;
            take = n;
        }
        while (rev) {
            cbhttp_req *n = rev->next;
            if (stop) {
                snprintf(rev->err, sizeof rev->err, "shutting down");
                finish(h, rev);
            } else {
                start_one(h, rev);
            }
            rev = n;
        }
        if (stop)
            break;
        curl_multi_perform(h->multi, &running);
        reap(h);
        curl_multi_poll(h->multi, NULL, 0, 1000, NULL);
    }
    /* Whatever is still running ends now. */
    while (h->running) {
        cbhttp_req *r = h->running;
        unrun(h, r);
        r->status = 0;
        snprintf(r->err, sizeof r->err, "shutting down");
        finish(h, r);
    }
    return NULL;
}

static void on_wake(struct ev_loop *loop, ev_async *w, int revents)
{
    cbhttp *h = w->data;
    cbhttp_req *r, *rev = NULL;
    (void)loop;
    (void)revents;
    pthread_mutex_lock(&h->mu);
    r = h->finished;
    h->finished = NULL;
    pthread_mutex_unlock(&h->mu);
    while (r) {
        cbhttp_req *n = r->next;
        r->next = rev;
        rev = r;
        r = n;
    }
    while (rev) {
        cbhttp_req *n = rev->next;
        rev->next = NULL;
        h->inflight--;
        h->done(h->arg, rev);
        rev = n;
    }
}

int cbhttp_create(struct ev_loop *loop, cbhttp_done_fn done, void *arg, cbhttp **out)
{
    cbhttp *h = calloc(1, sizeof *h);
    *out = NULL;
    if (!h)
        return HERALD_ENOMEM;
    h->loop = loop;
    h->done = done;
    h->arg = arg;
    pthread_mutex_init(&h->mu, NULL);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK || !(h->multi = curl_multi_init())) {
        pthread_mutex_destroy(&h->mu);
        free(h);
        return HERALD_EINTERNAL;
    }
    ev_async_init(&h->wake, on_wake);
    h->wake.data = h;
    ev_async_start(loop, &h->wake);
    ev_unref(loop); /* the watcher alone does not keep the loop running */
    if (pthread_create(&h->thr, NULL, run, h) != 0) {
        ev_ref(loop);
        ev_async_stop(loop, &h->wake);
        curl_multi_cleanup(h->multi);
        pthread_mutex_destroy(&h->mu);
        free(h);
        return HERALD_EINTERNAL;
    }
    h->thr_started = true;
    *out = h;
    return 0;
}

int cbhttp_post(cbhttp *h, cbhttp_req *req)
{
    bool stop;
    pthread_mutex_lock(&h->mu);
    stop = h->stop;
    if (!stop) {
        req->next = h->todo;
        h->todo = req;
    }
    pthread_mutex_unlock(&h->mu);
    if (stop)
        return HERALD_ESHUTDOWN;
    h->inflight++;
    curl_multi_wakeup(h->multi);
    return 0;
}

uint32_t cbhttp_inflight(const cbhttp *h) { return h->inflight; }

void cbhttp_destroy(cbhttp *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&h->mu);
    h->stop = true;
    pthread_mutex_unlock(&h->mu);
    curl_multi_wakeup(h->multi);
    if (h->thr_started)
        pthread_join(h->thr, NULL);
    on_wake(h->loop, &h->wake, 0); /* every request gets its callback */
    ev_ref(h->loop);
    ev_async_stop(h->loop, &h->wake);
    curl_multi_cleanup(h->multi);
    pthread_mutex_destroy(&h->mu);
    free(h);
}

void cbhttp_req_free(cbhttp_req *r)
{
    if (!r)
        return;
    free(r->url);
    herald_buf_free(&r->body);
    free(r);
}
