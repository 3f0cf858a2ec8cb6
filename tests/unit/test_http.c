/* test_http.c — the HTTP request head parser's statuses and fields
 * (http_proto.h) and the Prometheus writer (prom.h): label and HELP
 * escaping, histogram buckets cumulative with +Inf equal to _count. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http_proto.h"
#include "prom.h"

static int parse(const char *s, http_req *rq)
{
    return http_req_parse((const uint8_t *)s, strlen(s), 8192, rq);
}

static void test_parse_ok(void **state)
{
    http_req rq;
    (void)state;
    assert_int_equal(parse("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
                           "Content-Type: text/plain\r\n\r\nabc",
                           &rq),
                     HTTP_OK);
    assert_int_equal(rq.method, HTTP_GET);
    assert_int_equal(rq.path_len, 8);
    assert_memory_equal(rq.path, "/metrics", 8);
    assert_int_equal(rq.query_len, 3);
    assert_int_equal(rq.content_length, 3);
    assert_true(rq.keep_alive);
    assert_int_equal(rq.ctype_len, 10);
    assert_int_equal(parse("HEAD / HTTP/1.0\r\n\r\n", &rq), HTTP_OK);
    assert_true(rq.http10);
    assert_false(rq.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &rq), HTTP_OK);
    assert_true(rq.keep_alive);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", &rq),
                     HTTP_OK);
    assert_false(rq.keep_alive);
    assert_int_equal(parse("BREW / HTTP/1.1\r\nHost: a\r\n\r\n", &rq), HTTP_OK);
    assert_int_equal(rq.method, HTTP_OTHER);
}

static void test_parse_errors(void **state)
{
    http_req rq;
    char big[9000];
    (void)state;
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n", &rq), HTTP_PARTIAL);
    assert_int_equal(parse("GET / HTTP/1.1\r\n\r\n", &rq), 400);          /* no Host */
    assert_int_equal(parse("GET http://x/ HTTP/1.1\r\nHost: a\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET / HTTP/2.0\r\nHost: a\r\n\r\n", &rq), 505);
    assert_int_equal(parse("GET / FTP/1.1\r\nHost: a\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
                           &rq),
                     501);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n"
                           "Content-Length: 2\r\n\r\n",
                           &rq),
                     400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1234567890123456789\r\n\r\n",
                           &rq),
                     400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\n folded\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", &rq), 400);
    assert_int_equal(parse("GET /\x01 HTTP/1.1\r\nHost: a\r\n\r\n", &rq), 400);
    memset(big, 'a', sizeof big);
    assert_int_equal(http_req_parse((const uint8_t *)big, sizeof big, 8192, &rq), 431);
    {
        char many[4096];
        size_t n = (size_t)snprintf(many, sizeof many, "GET / HTTP/1.1\r\nHost: a\r\n");
        for (int i = 0; i < 70; i++)
            n += (size_t)snprintf(many + n, sizeof many - n, "X-%d: y\r\n", i);
        n += (size_t)snprintf(many + n, sizeof many - n, "\r\n");
        assert_int_equal(http_req_parse((const uint8_t *)many, n, 8192, &rq), 431);
    }
}

static void test_prom_escaping(void **state)
{
    herald_buf b = {0};
    prom_w w = {.b = &b};
    prom_label l[2] = {{"a", "x\"y\\z\nw"}, {"b", ""}};
    const char want[] = "# HELP herald_t_total line\\nnext \\\\ \"q\"\n"
                        "# TYPE herald_t_total counter\n"
                        "herald_t_total{a=\"x\\\"y\\\\z\\nw\",b=\"\"} 7\n"
                        "herald_t_total 8\n";
    (void)state;
    prom_family(&w, "herald_t_total", "counter", "line\nnext \\ \"q\"");
    prom_u64(&w, "herald_t_total", l, 2, 7);
    prom_u64(&w, "herald_t_total", NULL, 0, 8);
    assert_int_equal(w.err, 0);
    assert_int_equal(b.len, sizeof want - 1);
    assert_memory_equal(b.data, want, b.len);
    herald_buf_free(&b);
}

static void test_prom_hist(void **state)
{
    static prom_hist h;
    herald_buf b = {0};
    prom_w w = {.b = &b};
    char *s;
    (void)state;
    prom_hist_init(&h);
    prom_hist_observe_ns(&h, 50000);        /* 50 µs: first bucket */
    prom_hist_observe_ns(&h, 100000);       /* exactly 100 µs: le="0.0001" too */
    prom_hist_observe_ns(&h, 3000000);      /* 3 ms */
    prom_hist_observe_ns(&h, 60000000000u); /* 60 s: +Inf only */
    prom_hist_write(&w, "herald_h_seconds", NULL, 0, &h);
    assert_int_equal(w.err, 0);
    assert_non_null(herald_buf_append(&b, "", 1) == 0 ? b.data : NULL);
    s = (char *)b.data;
    assert_non_null(strstr(s, "herald_h_seconds_bucket{le=\"0.0001\"} 2\n"));
    assert_non_null(strstr(s, "herald_h_seconds_bucket{le=\"0.0025\"} 2\n"));
    assert_non_null(strstr(s, "herald_h_seconds_bucket{le=\"0.005\"} 3\n"));
    assert_non_null(strstr(s, "herald_h_seconds_bucket{le=\"10\"} 3\n"));
    assert_non_null(strstr(s, "herald_h_seconds_bucket{le=\"+Inf\"} 4\n"));
    assert_non_null(strstr(s, "herald_h_seconds_count 4\n"));
    assert_non_null(strstr(s, "herald_h_seconds_sum 60.003150000\n"));
    herald_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_ok),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_prom_escaping),
        cmocka_unit_test(test_prom_hist),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
