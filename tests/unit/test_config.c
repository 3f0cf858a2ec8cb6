/* test_config.c — the configuration table: defaults, files with sections,
 * comments and quotes, size suffixes, and errors that name file, line and key. */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

typedef struct tcfg {
    uint32_t id;     /* node.id */
    uint64_t size;   /* store.size */
    bool fast;       /* store.fast */
    char name[8];    /* node.name */
} tcfg;

static const cfg_key keys[] = {
    {"node.id", CFG_U32, offsetof(tcfg, id), 0, 1, 64, "1", "node id"},
    {"store.size", CFG_U64, offsetof(tcfg, size), 0, 1024, 1ull << 40, "1M", "size"},
    {"store.fast", CFG_BOOL, offsetof(tcfg, fast), 0, 0, 0, "false", "fast"},
    {"node.name", CFG_STR, offsetof(tcfg, name), 8, 1, 0, "", "name"},
};
#define NK (sizeof keys / sizeof keys[0])

static const char *write_file(const char *text)
{
    static char path[64];
    FILE *f;
    snprintf(path, sizeof path, "/tmp/herald-cfg-XXXXXX");
    close(mkstemp(path));
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

static void test_defaults_and_file(void **state)
{
    tcfg c;
    char err[256];
    const char *p = write_file("# comment\n"
                               "node.id = 7   # trailing comment\n"
                               "[store]\n"
                               "size = 2G\n"
                               "fast = true\n"
                               "[node]\n"
                               "name = \"n 1\"\n");
    (void)state;
    cfg_defaults(keys, NK, &c);
    assert_int_equal(c.id, 1);
    assert_int_equal(c.size, 1u << 20);
    assert_false(c.fast);
    assert_int_equal(cfg_check_required(keys, NK, &c, err, sizeof err), HERALD_EINVAL);
    assert_string_equal(err, "node.name: required");
    assert_int_equal(cfg_load(keys, NK, &c, p, err, sizeof err), 0);
    assert_int_equal(c.id, 7);
    assert_int_equal(c.size, 2ull << 30);
    assert_true(c.fast);
    assert_string_equal(c.name, "n 1");
    assert_int_equal(cfg_check_required(keys, NK, &c, err, sizeof err), 0);
    unlink(p);
}

static void test_errors_name_line_and_key(void **state)
{
    static const struct {
        const char *text; /* file */
        const char *want; /* error suffix after "PATH:" */
    } cases[] = {
        {"node.id = 0\n", "1: node.id: must be between 1 and 64, not 0"},
        {"\n\nnode.id = x\n", "3: node.id: 'x' is not a number"},
        {"node.idd = 1\n", "1: node.idd: unknown key"},
        {"store.fast = maybe\n", "1: store.fast: must be true or false, not 'maybe'"},
        {"node.name = toolongname\n", "1: node.name: longer than 7 characters"},
        {"store.size = 5T\n", "1: store.size: '5T' is not a number"},
        {"node.id\n", "1: expected 'key = value'"},
        {"[node\n", "1: bad section header"},
        {"node.id = -3\n", "1: node.id: '-3' is not a number"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tcfg c;
        char err[256], want[512];
        const char *p = write_file(cases[i].text);
        cfg_defaults(keys, NK, &c);
        assert_int_equal(cfg_load(keys, NK, &c, p, err, sizeof err), HERALD_EINVAL);
        snprintf(want, sizeof want, "%s:%s", p, cases[i].want);
        assert_string_equal(err, want);
        unlink(p);
    }
    {
        tcfg c;
        char err[256];
        assert_int_equal(cfg_load(keys, NK, &c, "/nonexistent/x.conf", err, sizeof err),
                         HERALD_EIO);
    }
}

static void test_sample_round_trips(void **state)
{
    tcfg a, b;
    char err[256];
    char path[64] = "/tmp/herald-cfg-XXXXXX";
    FILE *f;
    (void)state;
    close(mkstemp(path));
    f = fopen(path, "w");
    cfg_write_sample(keys, NK, f);
    fclose(f);
    cfg_defaults(keys, NK, &a);
    memset(&b, 0x55, sizeof b);
    cfg_defaults(keys, NK, &b);
    assert_int_equal(cfg_load(keys, NK, &b, path, err, sizeof err), 0);
    assert_int_equal(a.id, b.id);
    assert_int_equal(a.size, b.size);
    assert_int_equal(a.fast, b.fast);
    assert_string_equal(a.name, b.name);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_and_file),
        cmocka_unit_test(test_errors_name_line_and_key),
        cmocka_unit_test(test_sample_round_trips),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
