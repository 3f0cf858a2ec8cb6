/*
 * ws_proto.h — the pure parts of WebSocket (RFC 6455) on the server side:
 * the HTTP Upgrade request parser, the accept key, the frame header codec,
 * unmasking, the receive state machine (ws_rx: messages out of frames,
 * fragments reassembled), the Origin allow-list and the close code of a
 * Herald error. No sockets: ws.c drives them from the connection's input,
 * and tests/fuzz/fuzz_ws.c feeds them arbitrary bytes.
 *
 * Every length is bounded before use: the request head is at most
 * WS_HTTP_MAX bytes, a frame header at most 14, a frame's payload length is
 * returned for the caller to check against its cap before it waits for, or
 * allocates, anything.
 *
 * Threads: reentrant, no global state.
 */
#ifndef HERALD_SESSION_WS_PROTO_H
#define HERALD_SESSION_WS_PROTO_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WS_HTTP_MAX 8192u   /* bytes of request line + headers accepted */
#define WS_PATH "/ws"       /* the one path that upgrades */
#define WS_SUBPROTOCOL "herald" /* echoed when the client offers it */
#define WS_CONTROL_MAX 125u /* payload cap of ping / pong / close */
#define WS_CLOSE_REASON_MAX 123u /* reason bytes after the 2-byte code */

/* The parts of an Upgrade request ws.c needs; pointers into the parsed
 * buffer, valid as long as it is. */
typedef struct ws_http_req {
    size_t head_len;        /* bytes of the request head, blank line included */
    const char *key;        /* Sec-WebSocket-Key (24 base64 characters) */
    size_t key_len;
    const char *origin;     /* Origin, NULL when absent (non-browser clients) */
    size_t origin_len;
    bool herald_proto;      /* Sec-WebSocket-Protocol offers "herald" */
} ws_http_req;

/* Result of ws_http_parse: WS_HTTP_PARTIAL (no blank line yet, under the
 * cap), WS_HTTP_OK, or the HTTP status to answer with. */
#define WS_HTTP_PARTIAL 0
#define WS_HTTP_OK 101

/* Parses the head of p[0..len). Returns WS_HTTP_PARTIAL, WS_HTTP_OK (*out
 * filled), or an HTTP error status: 400 (malformed, not GET HTTP/1.1, no
 * Host, no Upgrade: websocket, no Connection: Upgrade, bad key), 404 (path
 * other than /ws, query string allowed), 426 (Sec-WebSocket-Version not 13),
 * 431 (no blank line within WS_HTTP_MAX bytes). */
int ws_http_parse(const uint8_t *p, size_t len, ws_http_req *out);

/* Sec-WebSocket-Accept for key: base64(SHA-1(key + GUID)), 28 characters
 * and a NUL into out. 0, or -1 when hashing fails. */
int ws_accept_key(const char *key, size_t key_len, char out[29]);

/* True when origin[0..len) is in the comma-separated allow-list (exact
 * match, ASCII case-insensitive, spaces around entries ignored). An empty
 * or NULL list allows any origin. */
bool ws_origin_allowed(const char *list, const char *origin, size_t len);

enum {
    WS_OP_CONT = 0x0,
    WS_OP_TEXT = 0x1,
    WS_OP_BINARY = 0x2,
    WS_OP_CLOSE = 0x8,
    WS_OP_PING = 0x9,
    WS_OP_PONG = 0xA,
};

/* A decoded frame header. */
typedef struct ws_frame_hdr {
    bool fin;         /* last frame of its message */
    uint8_t opcode;   /* WS_OP_* */
    bool masked;      /* client frames must be */
    uint8_t mask[4];  /* masking key */
    uint64_t len;     /* payload length */
    size_t hdr_len;   /* bytes of the header (2..14) */
} ws_frame_hdr;

/* Results of ws_frame_parse besides a header length > 0. */
#define WS_FRAME_PARTIAL 0   /* fewer bytes than the header needs */
#define WS_FRAME_EPROTO (-1) /* RSV bits, unknown opcode, non-minimal or
                                63-bit-overflowing length, a control frame
                                fragmented or over 125 bytes */

/* Parses the header at p[0..len) (a client frame: masking is reported, not
 * required here). Returns the header length (h filled), WS_FRAME_PARTIAL,
 * or WS_FRAME_EPROTO. Never reads past len. */
int ws_frame_parse(const uint8_t *p, size_t len, ws_frame_hdr *h);

/* Writes an unmasked server frame header for opcode and a payload of len
 * bytes into out; returns its length (2, 4 or 10). */
size_t ws_frame_header(uint8_t out[10], uint8_t opcode, uint64_t len);
/* Its length alone. */
size_t ws_frame_header_len(uint64_t len);

/* XORs p[0..n) with mask, p[0] being byte `off` of the payload. */
void ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t off);

/* ---- receiving: frames to messages ------------------------------------- */

/* One connection's receive state. Zero-initialise; ws_rx_free. */
typedef struct ws_rx {
    bool in_msg;     /* a fragmented binary message is being reassembled */
    bool msg_out;    /* msg was handed out by the last call: reset it next */
    herald_buf msg;  /* its payload so far (≤ the cap; freed once handed out) */
} ws_rx;

typedef enum ws_ev_kind {
    WS_EV_NONE,    /* a partial frame: call again with more bytes */
    WS_EV_MESSAGE, /* a whole binary message: p[0..n) */
    WS_EV_PING,    /* answer with a pong carrying p[0..n) */
    WS_EV_PONG,    /* p[0..n) */
    WS_EV_CLOSE,   /* the peer's Close: code (1000 when it gave none) */
    WS_EV_FRAGMENT, /* a fragment was taken (nothing to do yet) */
    WS_EV_ERROR,   /* herald_code and why: close the connection */
} ws_ev_kind;

typedef struct ws_ev {
    ws_ev_kind kind;
    const uint8_t *p; /* MESSAGE / PING / PONG payload: valid until the next
                         ws_rx_next on the same rx, and while the input is */
    size_t n;
    uint16_t code;    /* CLOSE: the peer's code */
    int herald_code;  /* ERROR: HERALD_EPROTOCOL, HERALD_EUNSUPPORTED (a text
                         message), HERALD_ETOO_BIG (over the cap, detected
                         from the header before the payload is waited for or
                         copied), HERALD_ENOMEM */
    const char *why;  /* ERROR: a static reason */
} ws_ev;

/* Decodes the next frame of p[0..len) (client frames: masked; unmasked in
 * place, so p is writable). Returns the bytes consumed and *ev; 0 with
 * WS_EV_NONE while the frame is partial, 0 with WS_EV_ERROR on a protocol
 * error (stop reading). A message is at most max bytes. */
size_t ws_rx_next(ws_rx *rx, uint8_t *p, size_t len, uint32_t max, ws_ev *ev);
void ws_rx_free(ws_rx *rx);

/* The close code for a Herald error (0: a normal end, 1000). README's
 * table: TOO_BIG 1009, PROTOCOL 1002, UNSUPPORTED 1003, SLOW_CONSUMER
 * 1008, IDLE and SHUTDOWN 1001, NOMEM and INTERNAL 1011, BUSY and
 * UNAVAILABLE 1013, any other Herald code 4000 + code. */
uint16_t ws_close_code(int herald_code);

/* True when a received close code is one a peer may send (1000-1003,
 * 1007-1014 as IANA registers them, 3000-4999). */
bool ws_close_code_valid(uint16_t code);

/* The longest prefix of s[0..n) of at most max bytes that does not cut a
 * UTF-8 sequence. */
size_t ws_utf8_prefix(const char *s, size_t n, size_t max);

#endif
