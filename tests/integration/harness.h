/*
 * harness.h — integration-test helpers: start a real `heraldd dev` on a free
 * loopback port with a fresh data dir, mint tokens, run the `herald` CLI,
 * speak raw frames. Every wait has a deadline; every process is reaped.
 */
#ifndef HERALD_IT_HARNESS_H
#define HERALD_IT_HARNESS_H

#include <herald/protocol.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "token.h"

typedef struct it_server {
    char dir[256];          /* data dir (mkdtemp) */
    pid_t pid;              /* heraldd pid, 0 when stopped */
    char addr[256];         /* "127.0.0.1:PORT" from dev.env */
    char tenant[256];       /* from dev.env */
    uint8_t secret[TOKEN_SECRET_LEN]; /* from dev.env */
    char secret_hex[TOKEN_SECRET_HEX + 1];
    char extra[512];        /* extra heraldd args, space-separated */
} it_server;

/* Fresh data dir, start, wait for dev.env. extra may be NULL. Aborts the test
 * (cmocka fail) on failure. */
void it_server_start(it_server *s, const char *extra);
/* Start again on the same data dir (new port). */
void it_server_restart(it_server *s);
/* SIGTERM and wait (≤ 10 s, then SIGKILL). Returns the exit status. */
int it_server_stop(it_server *s);
/* SIGKILL and reap. */
void it_server_kill9(it_server *s);
/* Stop if running (failing the test unless heraldd exits 0) and remove the
 * data dir. */
void it_server_destroy(it_server *s);

/* Loads another tenant's credentials (DIR/tenant-NAME.env, written by
 * heraldd dev --tenants …) into *out: a copy of s acting for that tenant. */
void it_server_as_tenant(const it_server *s, const char *tenant, it_server *out);

/* Mints a token for user (admin role if admin) valid for ttl seconds (may be
 * negative for an expired token). Returns a static-per-call buffer copy in out. */
void it_token(const it_server *s, const char *user, bool admin, long ttl,
              char *out, size_t outlen);

/* Runs the herald CLI with HERALD_GATEWAY/TENANT/SECRET set for s and the
 * given argv (NULL-terminated, without argv[0]); captures stdout and stderr
 * (each NUL-terminated, truncated to cap). Returns the exit status, or -1 on
 * a timeout (the process is killed after timeout_s). */
int it_cli(const it_server *s, char *out, size_t outcap, char *err, size_t errcap,
           int timeout_s, const char *const *argv);

/* Raw TCP connection to s; returns fd (blocking, 5 s receive timeout). */
int it_raw_connect(const it_server *s);
/* The same with SO_RCVBUF set before connecting (0 = system default). */
int it_raw_connect_rcvbuf(const it_server *s, int rcvbuf);
/* Sends bytes; false on error. */
bool it_raw_send(int fd, const void *p, size_t n);
/* Encodes and sends a frame. */
bool it_raw_send_frame(int fd, const herald_frame *f);
/* Receive state of a raw connection; zero-initialise, free rx.buf at the end. */
typedef struct it_rx {
    herald_buf buf; /* received bytes */
    size_t last;    /* bytes of the frame returned last (dropped on next call) */
} it_rx;
/* Receives one frame; *f points into rx->buf until the next call (release
 * *f's arrays with herald_frame_release). Returns 0 or a herald error
 * (HERALD_ECLOSED when the peer closed, HERALD_ETIMEOUT after 5 s). */
int it_raw_recv_frame(int fd, it_rx *rx, herald_frame *f);

/* Monotonic milliseconds. */
uint64_t it_now_ms(void);

#endif
