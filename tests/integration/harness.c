/* harness.c — see harness.h. */
#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <herald/error.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

uint64_t it_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void sleep_ms(unsigned ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* Reads DIR/NAME into s; false until it exists and is complete. */
static bool read_env_file(it_server *s, const char *name)
{
    char path[400], line[256];
    bool gw = false, ten = false, sec = false;
    FILE *f;

    snprintf(path, sizeof path, "%s/%s", s->dir, name);
    f = fopen(path, "r");
    if (!f)
        return false;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        if (strncmp(line, "HERALD_GATEWAY=", 15) == 0) {
            snprintf(s->addr, sizeof s->addr, "%s", line + 15);
            gw = true;
        } else if (strncmp(line, "HERALD_TENANT=", 14) == 0) {
            snprintf(s->tenant, sizeof s->tenant, "%s", line + 14);
            ten = true;
        } else if (strncmp(line, "HERALD_SECRET=", 14) == 0) {
            snprintf(s->secret_hex, sizeof s->secret_hex, "%.64s", line + 14);
            sec = token_secret_from_hex(s->secret_hex, s->secret) == 0;
        }
    }
    fclose(f);
    return gw && ten && sec;
}

static bool read_env(it_server *s) { return read_env_file(s, "dev.env"); }

void it_server_as_tenant(const it_server *s, const char *tenant, it_server *out)
{
    char name[200];
    *out = *s;
    snprintf(name, sizeof name, "tenant-%s.env", tenant);
    assert_true(read_env_file(out, name));
    out->pid = 0; /* a view: destroying it must not stop the server */
}

static void spawn(it_server *s)
{
    char path[300];
    char *argv[32];
    int argc = 0;
    char extra[sizeof s->extra];
    uint64_t deadline;

    snprintf(path, sizeof path, "%s/dev.env", s->dir);
    unlink(path);
    argv[argc++] = HERALDD_BIN;
    argv[argc++] = "dev";
    argv[argc++] = "--data";
    argv[argc++] = s->dir;
    argv[argc++] = "--listen";
    argv[argc++] = "127.0.0.1:0";
    argv[argc++] = "--log-level";
    argv[argc++] = "warn";
    snprintf(extra, sizeof extra, "%s", s->extra);
    for (char *tok = strtok(extra, " "); tok && argc < 30; tok = strtok(NULL, " "))
        argv[argc++] = tok;
    argv[argc] = NULL;
    s->pid = fork();
    assert_true(s->pid >= 0);
    if (s->pid == 0) {
        execv(HERALDD_BIN, argv);
        _exit(127);
    }
    deadline = it_now_ms() + 15000;
    while (!read_env(s)) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            s->pid = 0;
            fail_msg("heraldd exited during start-up (status %d)", st);
        }
        if (it_now_ms() > deadline)
            fail_msg("heraldd did not write dev.env within 15 s");
        sleep_ms(20);
    }
}

void it_server_start(it_server *s, const char *extra)
{
    memset(s, 0, sizeof *s);
    snprintf(s->dir, sizeof s->dir, "/tmp/herald-it-XXXXXX");
    assert_non_null(mkdtemp(s->dir));
    snprintf(s->extra, sizeof s->extra, "%s", extra ? extra : "");
    spawn(s);
}

void it_server_restart(it_server *s)
{
    assert_int_equal(s->pid, 0);
    spawn(s);
}

int it_server_stop(it_server *s)
{
    int st = -1;
    uint64_t deadline;

    if (!s->pid)
        return 0;
    kill(s->pid, SIGTERM);
    deadline = it_now_ms() + 10000;
    while (waitpid(s->pid, &st, WNOHANG) != s->pid) {
        if (it_now_ms() > deadline) {
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &st, 0);
            break;
        }
        sleep_ms(10);
    }
    s->pid = 0;
    return st;
}

void it_server_kill9(it_server *s)
{
    int st;
    if (!s->pid)
        return;
    kill(s->pid, SIGKILL);
    waitpid(s->pid, &st, 0);
    s->pid = 0;
}

void it_server_destroy(it_server *s)
{
    char cmd[400];
    bool running = s->pid != 0;
    int st = it_server_stop(s);
    if (s->dir[0] && strncmp(s->dir, "/tmp/herald-it-", 15) == 0) {
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", s->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", s->dir);
    }
    /* A clean SIGTERM exit is part of the contract (and under ASan/UBSan a
     * report makes the exit status non-zero). */
    if (running && st != 0)
        fail_msg("heraldd did not exit cleanly on SIGTERM (status %d)", st);
}

void it_token(const it_server *s, const char *user, bool admin, long ttl, char *out,
              size_t outlen)
{
    token_claims c = {.admin = admin};
    snprintf(c.tenant, sizeof c.tenant, "%.128s", s->tenant);
    snprintf(c.user, sizeof c.user, "%s", user);
    c.expires = (uint64_t)((long)time(NULL) + ttl);
    assert_int_equal(token_mint(s->secret, &c, out, outlen), 0);
}

/* One read from fd appended to buf (NUL-terminated, excess dropped).
 * Returns false at EOF or error. */
static bool drain_once(int fd, char *buf, size_t cap, size_t *len)
{
    char tmp[4096];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && errno == EINTR)
        return true;
    if (n <= 0)
        return false;
    for (ssize_t i = 0; i < n && *len + 1 < cap; i++)
        buf[(*len)++] = tmp[i];
    if (cap)
        buf[*len] = '\0';
    return true;
}

int it_cli(const it_server *s, char *out, size_t outcap, char *err, size_t errcap,
           int timeout_s, const char *const *argv)
{
    int po[2], pe[2], st = 0;
    size_t ol = 0, el = 0;
    const char *args[64];
    int n = 0;
    pid_t pid;
    uint64_t deadline = it_now_ms() + (uint64_t)timeout_s * 1000u;
    bool oo = true, eo = true;

    args[n++] = HERALD_BIN;
    for (; *argv && n < 63; argv++)
        args[n++] = *argv;
    args[n] = NULL;
    if (outcap)
        out[0] = '\0';
    if (errcap)
        err[0] = '\0';
    assert_int_equal(pipe(po), 0);
    assert_int_equal(pipe(pe), 0);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(po[1], 1);
        dup2(pe[1], 2);
        close(po[0]);
        close(pe[0]);
        setenv("HERALD_GATEWAY", s->addr, 1);
        setenv("HERALD_TENANT", s->tenant, 1);
        setenv("HERALD_SECRET", s->secret_hex, 1);
        unsetenv("HERALD_TOKEN");
        execv(HERALD_BIN, (char *const *)args);
        _exit(127);
    }
    close(po[1]);
    close(pe[1]);
    while (oo || eo) {
        struct pollfd p[2] = {{.fd = oo ? po[0] : -1, .events = POLLIN},
                              {.fd = eo ? pe[0] : -1, .events = POLLIN}};
        int64_t left = (int64_t)(deadline - it_now_ms());
        if (left <= 0) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            close(po[0]);
            close(pe[0]);
            return -1;
        }
        if (poll(p, 2, (int)left) <= 0)
            continue;
        if (p[0].revents && !drain_once(po[0], out, outcap, &ol))
            oo = false;
        if (p[1].revents && !drain_once(pe[0], err, errcap, &el))
            eo = false;
    }
    close(po[0]);
    close(pe[0]);
    while (waitpid(pid, &st, WNOHANG) != pid) {
        if (it_now_ms() > deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        sleep_ms(5);
    }
    return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int it_raw_connect(const it_server *s) { return it_raw_connect_rcvbuf(s, 0); }

int it_raw_connect_rcvbuf(const it_server *s, int rcvbuf)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct timeval tv = {.tv_sec = 5};
    const char *colon = strrchr(s->addr, ':');
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

    assert_true(fd >= 0);
    /* Before connect, so the window is small from the handshake on. */
    if (rcvbuf)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    a.sin_port = htons((uint16_t)atoi(colon + 1));
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

bool it_raw_send(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        c += w;
        n -= (size_t)w;
    }
    return true;
}

bool it_raw_send_frame(int fd, const herald_frame *f)
{
    herald_buf b = {0};
    bool ok = herald_frame_encode(f, &b) == 0 && it_raw_send(fd, b.data, b.len);
    herald_buf_free(&b);
    return ok;
}

int it_raw_recv_frame(int fd, it_rx *rx, herald_frame *f)
{
    if (rx->last) {
        herald_buf_consume(&rx->buf, rx->last);
        rx->last = 0;
    }
    for (;;) {
        size_t flen = 0;
        ssize_t n;
        int rc = herald_frame_peek(rx->buf.data, rx->buf.len, 0, &flen);
        if (rc)
            return rc;
        if (flen) {
            rx->last = flen;
            return herald_frame_decode(rx->buf.data + HERALD_FRAME_HEADER,
                                       flen - HERALD_FRAME_HEADER, NULL, f);
        }
        if (herald_buf_reserve(&rx->buf, 65536) != 0)
            return HERALD_ENOMEM;
        n = recv(fd, rx->buf.data + rx->buf.len, 65536, 0);
        if (n == 0)
            return HERALD_ECLOSED;
        if (n < 0)
            return errno == EAGAIN || errno == EWOULDBLOCK ? HERALD_ETIMEOUT
                                                            : HERALD_EIO;
        rx->buf.len += (size_t)n;
    }
}
