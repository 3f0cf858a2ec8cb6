/* rio_msg.c — the raft wire codec; see rio_int.h for the layout. */
#include <herald/error.h>
#include <stdlib.h>
#include <string.h>

#include "rio_int.h"

/* Fixed body sizes (bytes) of the small messages. */
#define AER_LEN 24u
#define RV_LEN 33u
#define RVR_LEN 10u
#define TN_LEN 24u
#define AE_HDR_LEN 36u
#define AE_ENTRY_HDR 13u /* term + type + len */
#define IS_HDR_LEN 32u
#define CONF_SERVER_MIN 11u /* id + role + addr_len */
#define RECORD_HDR 9u       /* group + type + body_len */
#define CHUNK_HDR_LEN 56u   /* term … offset: 7 × u64 */
#define ACK_LEN 33u         /* 4 × u64 + flags */

int rio_buf_reserve(rio_buf *b, size_t extra)
{
    size_t cap;
    uint8_t *p;

    if (extra <= b->cap - b->len)
        return 0;
    if (extra > SIZE_MAX / 2 - b->len)
        return HERALD_ENOMEM;
    cap = b->cap ? b->cap : 256;
    while (cap - b->len < extra)
        cap *= 2;
    p = realloc(b->data, cap);
    if (!p)
        return HERALD_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

void rio_buf_free(rio_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* Writers: the caller has reserved the space. */
static void w8(rio_buf *b, uint8_t v) { b->data[b->len++] = v; }
static void w16(rio_buf *b, uint16_t v)
{
    b->data[b->len++] = (uint8_t)(v >> 8);
    b->data[b->len++] = (uint8_t)v;
}
static void w32(rio_buf *b, uint32_t v) { rio_put32(b->data + b->len, v); b->len += 4; }
static void w64(rio_buf *b, uint64_t v) { rio_put64(b->data + b->len, v); b->len += 8; }
static void wbytes(rio_buf *b, const void *p, size_t n)
{
    if (n)
        memcpy(b->data + b->len, p, n);
    b->len += n;
}

int rio_frame_begin(rio_buf *b, uint64_t sender_id, const char *sender_addr)
{
    size_t alen = strlen(sender_addr);
    int rc;

    if (alen > RIO_ADDR_MAX)
        return HERALD_EINVAL;
    if ((rc = rio_buf_reserve(b, RIO_FRAME_HDR_MIN + alen)) != 0)
        return rc;
    w32(b, RIO_MAGIC);
    w64(b, sender_id);
    w16(b, (uint16_t)alen);
    wbytes(b, sender_addr, alen);
    return 0;
}

int rio_conf_encode(rio_buf *b, const struct raft_configuration *c)
{
    size_t need = 4;
    unsigned i;
    int rc;

    if (c->n > RIO_CONF_MAX)
        return HERALD_EINVAL;
    for (i = 0; i < c->n; i++) {
        size_t alen = strlen(c->servers[i].address);
        if (alen > RIO_ADDR_MAX)
            return HERALD_EINVAL;
        need += CONF_SERVER_MIN + alen;
    }
    if ((rc = rio_buf_reserve(b, need)) != 0)
        return rc;
    w32(b, c->n);
    for (i = 0; i < c->n; i++) {
        size_t alen = strlen(c->servers[i].address);
        w64(b, c->servers[i].id);
        w8(b, (uint8_t)c->servers[i].role);
        w16(b, (uint16_t)alen);
        wbytes(b, c->servers[i].address, alen);
    }
    return 0;
}

/* Encodes the body of m at the end of b (space reserved as it goes). */
static int encode_body(rio_buf *b, const struct raft_message *m)
{
    int rc;
    unsigned i;

    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES: {
        const struct raft_append_entries *ae = &m->append_entries;
        size_t need = AE_HDR_LEN;
        for (i = 0; i < ae->n_entries; i++) {
            if (ae->entries[i].buf.len > UINT32_MAX)
                return HERALD_EINVAL;
            need += AE_ENTRY_HDR + ae->entries[i].buf.len;
        }
        if ((rc = rio_buf_reserve(b, need)) != 0)
            return rc;
        w64(b, ae->term);
        w64(b, ae->prev_log_index);
        w64(b, ae->prev_log_term);
        w64(b, ae->leader_commit);
        w32(b, ae->n_entries);
        for (i = 0; i < ae->n_entries; i++) {
            const struct raft_entry *e = &ae->entries[i];
            w64(b, e->term);
            w8(b, (uint8_t)e->type);
            w32(b, (uint32_t)e->buf.len);
            wbytes(b, e->buf.base, e->buf.len);
        }
        return 0;
    }
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        if ((rc = rio_buf_reserve(b, AER_LEN)) != 0)
            return rc;
        w64(b, m->append_entries_result.term);
        w64(b, m->append_entries_result.rejected);
        w64(b, m->append_entries_result.last_log_index);
        return 0;
    case RAFT_IO_REQUEST_VOTE:
        if ((rc = rio_buf_reserve(b, RV_LEN)) != 0)
            return rc;
        w64(b, m->request_vote.term);
        w64(b, m->request_vote.candidate_id);
        w64(b, m->request_vote.last_log_index);
        w64(b, m->request_vote.last_log_term);
        w8(b, (uint8_t)((m->request_vote.disrupt_leader ? 1 : 0) |
                        (m->request_vote.pre_vote ? 2 : 0)));
        return 0;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        if ((rc = rio_buf_reserve(b, RVR_LEN)) != 0)
            return rc;
        w64(b, m->request_vote_result.term);
        w8(b, m->request_vote_result.vote_granted ? 1 : 0);
        w8(b, (uint8_t)m->request_vote_result.pre_vote);
        return 0;
    case RAFT_IO_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *is = &m->install_snapshot;
        if (is->data.len > UINT32_MAX)
            return HERALD_EINVAL;
        if ((rc = rio_buf_reserve(b, IS_HDR_LEN)) != 0)
            return rc;
        w64(b, is->term);
        w64(b, is->last_index);
        w64(b, is->last_term);
        w64(b, is->conf_index);
        if ((rc = rio_conf_encode(b, &is->conf)) != 0)
            return rc;
        if ((rc = rio_buf_reserve(b, 4 + is->data.len)) != 0)
            return rc;
        w32(b, (uint32_t)is->data.len);
        wbytes(b, is->data.base, is->data.len);
        return 0;
    }
    case RAFT_IO_TIMEOUT_NOW:
        if ((rc = rio_buf_reserve(b, TN_LEN)) != 0)
            return rc;
        w64(b, m->timeout_now.term);
        w64(b, m->timeout_now.last_log_index);
        w64(b, m->timeout_now.last_log_term);
        return 0;
    default:
        return HERALD_EINVAL;
    }
}

size_t rio_msg_size(const struct raft_message *m)
{
    size_t n = RECORD_HDR, i;

    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES:
        n += AE_HDR_LEN;
        for (i = 0; i < m->append_entries.n_entries; i++) {
            size_t len = m->append_entries.entries[i].buf.len;
            if (len > UINT32_MAX || n > SIZE_MAX - AE_ENTRY_HDR - len)
                return SIZE_MAX;
            n += AE_ENTRY_HDR + len;
        }
        return n;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        return n + AER_LEN;
    case RAFT_IO_REQUEST_VOTE:
        return n + RV_LEN;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        return n + RVR_LEN;
    case RAFT_IO_INSTALL_SNAPSHOT: {
        const struct raft_install_snapshot *is = &m->install_snapshot;
        if (is->data.len > UINT32_MAX)
            return SIZE_MAX;
        n += IS_HDR_LEN + 4 + 4 + is->data.len;
        for (i = 0; i < is->conf.n; i++)
            n += CONF_SERVER_MIN + strlen(is->conf.servers[i].address);
        return n;
    }
    case RAFT_IO_TIMEOUT_NOW:
        return n + TN_LEN;
    default:
        return SIZE_MAX;
    }
}

unsigned rio_ae_fit(const struct raft_message *m, size_t budget)
{
    const struct raft_append_entries *ae = &m->append_entries;
    size_t n = RECORD_HDR + AE_HDR_LEN;
    unsigned i;

    if (n > budget)
        return 0;
    for (i = 0; i < ae->n_entries; i++) {
        size_t len = ae->entries[i].buf.len;
        if (len > UINT32_MAX || len > budget - n || AE_ENTRY_HDR > budget - n - len)
            break;
        n += AE_ENTRY_HDR + len;
    }
    return i;
}

int rio_msg_encode(rio_buf *b, uint32_t gid, const struct raft_message *m)
{
    size_t start = b->len, body;
    int rc;

    if ((rc = rio_buf_reserve(b, RECORD_HDR)) != 0)
        return rc;
    w32(b, gid);
    w8(b, (uint8_t)m->type);
    w32(b, 0); /* body length, patched below */
    body = b->len;
    if ((rc = encode_body(b, m)) != 0 || b->len - body > UINT32_MAX) {
        b->len = start;
        return rc ? rc : HERALD_EINVAL;
    }
    rio_put32(b->data + body - 4, (uint32_t)(b->len - body));
    return 0;
}

uint64_t rio_hash64(const void *p, size_t n)
{
    const uint8_t *b = p;
    uint64_t h = 0xcbf29ce484222325ull ^ n, w;

    /* FNV-style over 8-byte words, then the tail; a final avalanche. */
    for (; n >= 8; n -= 8, b += 8) {
        memcpy(&w, b, 8);
        h = (h ^ w) * 0x100000001b3ull;
        h ^= h >> 29;
    }
    for (; n > 0; n--, b++)
        h = (h ^ *b) * 0x100000001b3ull;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    return h;
}

size_t rio_chunk_size(const rio_chunk *c)
{
    size_t n = RECORD_HDR + CHUNK_HDR_LEN + 4 + 4 + c->len;
    unsigned i;
    for (i = 0; i < c->conf.n; i++)
        n += CONF_SERVER_MIN + strlen(c->conf.servers[i].address);
    return n;
}

size_t rio_ack_size(void)
{
    return RECORD_HDR + ACK_LEN;
}

/* Writes a record header; returns the body start (for the length patch). */
static int record_begin(rio_buf *b, uint32_t gid, uint8_t type, size_t *body)
{
    int rc;
    if ((rc = rio_buf_reserve(b, RECORD_HDR)) != 0)
        return rc;
    w32(b, gid);
    w8(b, type);
    w32(b, 0);
    *body = b->len;
    return 0;
}

static int record_end(rio_buf *b, size_t start, size_t body, int rc)
{
    if (rc != 0 || b->len - body > UINT32_MAX) {
        b->len = start;
        return rc ? rc : HERALD_EINVAL;
    }
    rio_put32(b->data + body - 4, (uint32_t)(b->len - body));
    return 0;
}

int rio_chunk_encode(rio_buf *b, uint32_t gid, const rio_chunk *c)
{
    size_t start = b->len, body;
    int rc;

    if (c->total > RIO_SNAP_TOTAL_MAX || c->offset > c->total || c->len > c->total - c->offset)
        return HERALD_EINVAL;
    if ((rc = record_begin(b, gid, RIO_REC_SNAP_CHUNK, &body)) != 0)
        return rc;
    rc = rio_buf_reserve(b, CHUNK_HDR_LEN);
    if (rc == 0) {
        w64(b, c->term);
        w64(b, c->last_index);
        w64(b, c->last_term);
        w64(b, c->conf_index);
        w64(b, c->total);
        w64(b, c->hash);
        w64(b, c->offset);
        rc = rio_conf_encode(b, &c->conf);
    }
    if (rc == 0 && (rc = rio_buf_reserve(b, 4 + (size_t)c->len)) == 0) {
        w32(b, c->len);
        wbytes(b, c->data, c->len);
    }
    return record_end(b, start, body, rc);
}

int rio_ack_encode(rio_buf *b, uint32_t gid, const rio_sack *a)
{
    size_t start = b->len, body;
    int rc;

    if ((rc = record_begin(b, gid, RIO_REC_SNAP_ACK, &body)) != 0)
        return rc;
    rc = rio_buf_reserve(b, ACK_LEN);
    if (rc == 0) {
        w64(b, a->last_index);
        w64(b, a->last_term);
        w64(b, a->hash);
        w64(b, a->have);
        w8(b, a->flags);
    }
    return record_end(b, start, body, rc);
}

/* ---- decoding ----------------------------------------------------------- */

/* A bounded reader: every get checks the bytes left first. */
typedef struct rd {
    const uint8_t *p; /* next byte */
    size_t left;      /* bytes left */
} rd;

static bool r8(rd *r, uint8_t *v)
{
    if (r->left < 1)
        return false;
    *v = r->p[0];
    r->p++, r->left--;
    return true;
}
static bool r16(rd *r, uint16_t *v)
{
    if (r->left < 2)
        return false;
    *v = (uint16_t)((r->p[0] << 8) | r->p[1]);
    r->p += 2, r->left -= 2;
    return true;
}
static bool r32(rd *r, uint32_t *v)
{
    if (r->left < 4)
        return false;
    *v = rio_get32(r->p);
    r->p += 4, r->left -= 4;
    return true;
}
static bool r64(rd *r, unsigned long long *v)
{
    if (r->left < 8)
        return false;
    *v = rio_get64(r->p);
    r->p += 8, r->left -= 8;
    return true;
}
static bool r64u(rd *r, uint64_t *v)
{
    if (r->left < 8)
        return false;
    *v = rio_get64(r->p);
    r->p += 8, r->left -= 8;
    return true;
}
static bool rskip(rd *r, size_t n, const uint8_t **at)
{
    if (r->left < n)
        return false;
    *at = r->p;
    r->p += n, r->left -= n;
    return true;
}

/* Reads an address of `len` bytes into dst (NUL-terminated); rejects
 * embedded NULs and empty addresses. */
static bool raddr(rd *r, uint16_t len, char dst[RIO_ADDR_MAX + 1])
{
    const uint8_t *at;
    if (len == 0 || len > RIO_ADDR_MAX || !rskip(r, len, &at) || memchr(at, 0, len))
        return false;
    memcpy(dst, at, len);
    dst[len] = 0;
    return true;
}

int rio_conf_decode(const uint8_t *p, size_t n, size_t *used, struct raft_configuration *c)
{
    rd r = {p, n};
    uint32_t count, i;

    if (!r32(&r, &count) || count > RIO_CONF_MAX || count > r.left / CONF_SERVER_MIN)
        return HERALD_EPROTOCOL;
    for (i = 0; i < count; i++) {
        char addr[RIO_ADDR_MAX + 1];
        unsigned long long id;
        uint8_t role;
        uint16_t alen;
        int rc;
        if (!r64(&r, &id) || !r8(&r, &role) || !r16(&r, &alen) || !raddr(&r, alen, addr))
            return HERALD_EPROTOCOL;
        if (id == 0 || role > RAFT_SPARE)
            return HERALD_EPROTOCOL;
        rc = raft_configuration_add(c, id, addr, role);
        if (rc == RAFT_NOMEM)
            return HERALD_ENOMEM;
        if (rc != 0)
            return HERALD_EPROTOCOL; /* duplicate id or address */
    }
    *used = n - r.left;
    return 0;
}

static int decode_ae(rd *r, struct raft_append_entries *ae)
{
    uint32_t count, i;
    size_t total = 0;
    rd scan;
    uint8_t *batch = NULL;
    struct raft_entry *ents = NULL;

    if (!r64(r, &ae->term) || !r64(r, &ae->prev_log_index) || !r64(r, &ae->prev_log_term) ||
        !r64(r, &ae->leader_commit) || !r32(r, &count))
        return HERALD_EPROTOCOL;
    if (count > r->left / AE_ENTRY_HDR)
        return HERALD_EPROTOCOL;
    /* Pass 1: validate and size, allocating nothing. */
    scan = *r;
    for (i = 0; i < count; i++) {
        unsigned long long term;
        uint8_t type;
        uint32_t len;
        const uint8_t *at;
        if (!r64(&scan, &term) || !r8(&scan, &type) || !r32(&scan, &len) ||
            !rskip(&scan, len, &at))
            return HERALD_EPROTOCOL;
        if (type < RAFT_COMMAND || type > RAFT_CHANGE || term == 0)
            return HERALD_EPROTOCOL;
        total += len;
    }
    ae->entries = NULL;
    ae->n_entries = 0;
    if (count == 0) {
        *r = scan;
        return 0;
    }
    ents = raft_calloc(count, sizeof *ents);
    batch = raft_malloc(total ? total : 1);
    if (!ents || !batch)
        goto fail_alloc;
    /* Pass 2: copy (cannot fail: validated above). */
    total = 0;
    for (i = 0; i < count; i++) {
        unsigned long long term = 0;
        uint8_t type = 0;
        uint32_t len = 0;
        const uint8_t *at = NULL;
        (void)(r64(r, &term) && r8(r, &type) && r32(r, &len) && rskip(r, len, &at));
        ents[i].term = term;
        ents[i].type = type;
        ents[i].buf.base = batch + total;
        ents[i].buf.len = len;
        ents[i].batch = batch;
        if (len)
            memcpy(batch + total, at, len);
        total += len;
    }
    ae->entries = ents;
    ae->n_entries = count;
    return 0;

fail_alloc:
    raft_free(ents);
    raft_free(batch);
    return HERALD_ENOMEM;
}

static int decode_is(rd *r, struct raft_install_snapshot *is)
{
    size_t used = 0;
    uint32_t dlen;
    const uint8_t *at;
    int rc;

    raft_configuration_init(&is->conf);
    is->data.base = NULL;
    is->data.len = 0;
    if (!r64(r, &is->term) || !r64(r, &is->last_index) || !r64(r, &is->last_term) ||
        !r64(r, &is->conf_index))
        return HERALD_EPROTOCOL;
    if ((rc = rio_conf_decode(r->p, r->left, &used, &is->conf)) != 0)
        goto fail_conf;
    r->p += used, r->left -= used;
    rc = HERALD_EPROTOCOL;
    if (!r32(r, &dlen) || !rskip(r, dlen, &at) || is->conf.n == 0)
        goto fail_conf;
    rc = HERALD_ENOMEM;
    is->data.base = raft_malloc(dlen ? dlen : 1);
    if (!is->data.base)
        goto fail_conf;
    if (dlen)
        memcpy(is->data.base, at, dlen);
    is->data.len = dlen;
    return 0;

fail_conf:
    raft_configuration_close(&is->conf);
    raft_configuration_init(&is->conf);
    return rc;
}

/* Decodes one body of `len` bytes; the whole body must be consumed. */
static int decode_body(const uint8_t *p, size_t len, struct raft_message *m)
{
    rd r = {p, len};
    uint8_t u8, u8b;
    int rc = 0;

    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES:
        rc = decode_ae(&r, &m->append_entries);
        break;
    case RAFT_IO_APPEND_ENTRIES_RESULT:
        if (!r64(&r, &m->append_entries_result.term) ||
            !r64(&r, &m->append_entries_result.rejected) ||
            !r64(&r, &m->append_entries_result.last_log_index))
            rc = HERALD_EPROTOCOL;
        break;
    case RAFT_IO_REQUEST_VOTE:
        if (!r64(&r, &m->request_vote.term) || !r64(&r, &m->request_vote.candidate_id) ||
            !r64(&r, &m->request_vote.last_log_index) ||
            !r64(&r, &m->request_vote.last_log_term) || !r8(&r, &u8) || (u8 & ~3u))
            rc = HERALD_EPROTOCOL;
        else {
            m->request_vote.disrupt_leader = (u8 & 1) != 0;
            m->request_vote.pre_vote = (u8 & 2) != 0;
        }
        break;
    case RAFT_IO_REQUEST_VOTE_RESULT:
        if (!r64(&r, &m->request_vote_result.term) || !r8(&r, &u8) || !r8(&r, &u8b) ||
            u8 > 1 || u8b > raft_tribool_false)
            rc = HERALD_EPROTOCOL;
        else {
            m->request_vote_result.vote_granted = u8 != 0;
            m->request_vote_result.pre_vote = (raft_tribool)u8b;
        }
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        rc = decode_is(&r, &m->install_snapshot);
        break;
    case RAFT_IO_TIMEOUT_NOW:
        if (!r64(&r, &m->timeout_now.term) || !r64(&r, &m->timeout_now.last_log_index) ||
            !r64(&r, &m->timeout_now.last_log_term))
            rc = HERALD_EPROTOCOL;
        break;
    default:
        rc = HERALD_EPROTOCOL;
    }
    if (rc == 0 && r.left != 0) {
        rio_msg_release(m);
        rc = HERALD_EPROTOCOL;
    }
    return rc;
}

void rio_msg_release(struct raft_message *m)
{
    unsigned i;

    switch (m->type) {
    case RAFT_IO_APPEND_ENTRIES:
        if (m->append_entries.n_entries > 0) {
            /* All entries share one batch. */
            raft_free(m->append_entries.entries[0].batch);
            for (i = 0; i < m->append_entries.n_entries; i++)
                m->append_entries.entries[i].batch = NULL;
        }
        raft_free(m->append_entries.entries);
        m->append_entries.entries = NULL;
        m->append_entries.n_entries = 0;
        break;
    case RAFT_IO_INSTALL_SNAPSHOT:
        raft_configuration_close(&m->install_snapshot.conf);
        raft_free(m->install_snapshot.data.base);
        m->install_snapshot.data.base = NULL;
        break;
    default:
        break;
    }
    m->type = 0;
}

static int decode_chunk(const uint8_t *p, size_t len, rio_chunk *c)
{
    rd r = {p, len};
    size_t used = 0;
    uint32_t dlen;
    const uint8_t *at;
    int rc;

    raft_configuration_init(&c->conf);
    if (!r64(&r, &c->term) || !r64(&r, &c->last_index) || !r64(&r, &c->last_term) ||
        !r64(&r, &c->conf_index) || !r64u(&r, &c->total) ||
        !r64u(&r, &c->hash) || !r64u(&r, &c->offset))
        return HERALD_EPROTOCOL;
    if (c->total > RIO_SNAP_TOTAL_MAX || c->offset > c->total || c->last_index == 0)
        return HERALD_EPROTOCOL;
    if ((rc = rio_conf_decode(r.p, r.left, &used, &c->conf)) != 0)
        goto fail;
    r.p += used, r.left -= used;
    rc = HERALD_EPROTOCOL;
    if (!r32(&r, &dlen) || !rskip(&r, dlen, &at) || r.left != 0 || c->conf.n == 0 ||
        dlen > c->total - c->offset)
        goto fail;
    c->data = at;
    c->len = dlen;
    return 0;

fail:
    raft_configuration_close(&c->conf);
    raft_configuration_init(&c->conf);
    return rc;
}

static int decode_ack(const uint8_t *p, size_t len, rio_sack *a)
{
    rd r = {p, len};
    if (!r64(&r, &a->last_index) || !r64(&r, &a->last_term) ||
        !r64u(&r, &a->hash) || !r64u(&r, &a->have) ||
        !r8(&r, &a->flags) || r.left != 0 || (a->flags & ~3u) || a->have > RIO_SNAP_TOTAL_MAX)
        return HERALD_EPROTOCOL;
    return 0;
}

void rio_rec_release(rio_rec *r)
{
    if (r->xtype == RIO_REC_SNAP_CHUNK) {
        raft_configuration_close(&r->chunk.conf);
        raft_configuration_init(&r->chunk.conf);
    }
    r->xtype = 0;
    if (r->msg.type)
        rio_msg_release(&r->msg);
}

void rio_frame_free(rio_frame *f)
{
    size_t i;
    for (i = 0; i < f->n; i++)
        rio_rec_release(&f->recs[i]);
    free(f->recs);
    f->recs = NULL;
    f->n = 0;
}

int rio_frame_decode(const uint8_t *p, size_t n, rio_frame *out)
{
    rd r = {p, n}, scan;
    uint32_t magic, body_len = 0, gid;
    uint16_t alen;
    uint8_t type = 0;
    size_t count = 0, i;
    const uint8_t *at = NULL;
    int rc;

    memset(out, 0, sizeof *out);
    if (!r32(&r, &magic) || magic != RIO_MAGIC || !r64(&r, &out->sender_id) ||
        out->sender_id == 0 || !r16(&r, &alen) || !raddr(&r, alen, out->sender_addr))
        return HERALD_EPROTOCOL;
    /* Count records and check their framing before allocating. */
    scan = r;
    while (scan.left > 0) {
        if (!r32(&scan, &gid) || !r8(&scan, &type) || !r32(&scan, &body_len) ||
            !rskip(&scan, body_len, &at))
            return HERALD_EPROTOCOL;
        if (++count > RIO_RECORDS_MAX)
            return HERALD_EPROTOCOL;
    }
    if (count == 0)
        return HERALD_EPROTOCOL;
    out->recs = calloc(count, sizeof *out->recs);
    if (!out->recs)
        return HERALD_ENOMEM;
    for (i = 0; i < count; i++) {
        rio_rec *rec = &out->recs[i];
        (void)(r32(&r, &rec->gid) && r8(&r, &type) && r32(&r, &body_len) &&
               rskip(&r, body_len, &at));
        rec->msg.server_id = out->sender_id;
        rec->msg.server_address = out->sender_addr;
        if (type == RIO_REC_SNAP_CHUNK || type == RIO_REC_SNAP_ACK) {
            rc = type == RIO_REC_SNAP_CHUNK ? decode_chunk(at, body_len, &rec->chunk)
                                            : decode_ack(at, body_len, &rec->ack);
            if (rc != 0)
                goto fail_recs;
            rec->xtype = type;
            out->n = i + 1;
            continue;
        }
        rec->msg.type = type;
        if ((rc = decode_body(at, body_len, &rec->msg)) != 0) {
            rec->msg.type = 0;
            goto fail_recs;
        }
        out->n = i + 1;
    }
    return 0;

fail_recs:
    rio_frame_free(out);
    return rc;
}
