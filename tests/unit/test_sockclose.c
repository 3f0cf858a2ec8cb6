/* test_sockclose.c — sock_close: a socket closed through it is closed (its
 * address can be listened on again, a send on it fails) and returns within
 * its deadline; nothing is counted as abandoned. */
#include <arpa/inet.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <nng/nng.h>
#include <nng/protocol/pipeline0/pull.h>
#include <nng/protocol/pipeline0/push.h>

#include "sockclose.h"

static void test_close_connected_pair(void **state)
{
    nng_socket pull, push, again;
    nng_listener l;
    char url[64], buf[8];
    size_t n = sizeof buf;
    int port;
    nng_sockaddr sa;
    (void)state;

    for (int round = 0; round < 20; round++) {
        assert_int_equal(nng_pull0_open(&pull), 0);
        assert_int_equal(nng_push0_open(&push), 0);
        assert_int_equal(nng_listen(pull, "tcp://127.0.0.1:0", &l, 0), 0);
        assert_int_equal(nng_listener_get_addr(l, NNG_OPT_LOCADDR, &sa), 0);
        port = ntohs(sa.s_in.sa_port);
        snprintf(url, sizeof url, "tcp://127.0.0.1:%d", port);
        assert_int_equal(nng_dial(push, url, NULL, 0), 0);
        assert_int_equal(nng_send(push, "hello", 5, 0), 0);
        n = sizeof buf;
        assert_int_equal(nng_recv(pull, buf, &n, 0), 0);
        assert_int_equal(n, 5);
        /* The pull side closes while the push side still dials it. */
        assert_int_equal(sock_close(pull, "test pull", 2000), 0);
        assert_int_equal(nng_send(pull, "x", 1, NNG_FLAG_NONBLOCK), NNG_ECLOSED);
        assert_int_equal(sock_close(push, "test push", 0), 0);
        /* The address is free (no dialer left to race the new listener's
         * close: nng 1.5.2 may leak a pipe a listener creates as it closes). */
        assert_int_equal(nng_pull0_open(&again), 0);
        assert_int_equal(nng_listen(again, url, NULL, 0), 0);
        assert_int_equal(sock_close(again, "test pull again", 0), 0);
    }
    assert_int_equal(sock_close_abandoned(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_close_connected_pair),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    nng_fini();
    return rc;
}
