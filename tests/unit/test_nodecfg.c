/* test_nodecfg.c — configuration of `heraldd node` and `heraldd gateway`:
 * defaults, a good file, cluster.members parsing (URLs, spaces, IPv6) and its
 * errors, cross-key validation whose errors name the key, and the committed
 * samples deploy/node.conf and deploy/gateway.conf matching the tables. */
#include <herald/error.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

/* broker/heraldd is a program, not a library: compile the module here. */
#include "../../broker/heraldd/nodecfg.c"

static const char *write_file(const char *text)
{
    static char path[64];
    FILE *f;
    snprintf(path, sizeof path, "/tmp/herald-nodecfg-XXXXXX");
    close(mkstemp(path));
    f = fopen(path, "w");
    fputs(text, f);
    fclose(f);
    return path;
}

/* A valid three-node config for node 2. */
static void good_node(node_config *c)
{
    cfg_defaults(nodecfg_keys, nodecfg_nkeys, c);
    strcpy(c->data, "/tmp/n2");
    strcpy(c->members, "1=127.0.0.1:7410,2=127.0.0.1:7420,3=127.0.0.1:7430");
    c->id = 2;
    c->plaintext = true; /* loopback */
}

static void good_gateway(gateway_config *c)
{
    cfg_defaults(gwcfg_keys, gwcfg_nkeys, c);
    strcpy(c->members, "1=127.0.0.1:7410,2=127.0.0.1:7420,3=127.0.0.1:7430");
    c->plaintext = true; /* loopback */
}

static void test_defaults(void **state)
{
    node_config n;
    gateway_config g;
    char err[256];
    (void)state;
    memset(&n, 0x55, sizeof n);
    cfg_defaults(nodecfg_keys, nodecfg_nkeys, &n);
    assert_int_equal(n.id, 0);
    assert_string_equal(n.data, "");
    assert_string_equal(n.members, "");
    assert_int_equal(n.replication, 3);
    assert_int_equal(n.groups, 8);
    assert_string_equal(n.tenants, "demo");
    assert_int_equal(n.election_ms, 1000);
    assert_int_equal(n.heartbeat_ms, 100);
    assert_int_equal(n.snapshot_threshold, 4096);
    assert_int_equal(n.snapshot_trailing, 1024);
    assert_int_equal(n.raft_map_size, 1ull << 30);
    assert_int_equal(n.map_size, 1ull << 30);
    assert_int_equal(n.request_timeout_ms, 5000);
    assert_int_equal(n.max_frame, 1048576);
    assert_string_equal(n.log_level, "info");
    assert_int_equal(n.tenant.recall_window, 86400);
    assert_int_equal(n.tenant.urgent_interval, 300);
    assert_int_equal(n.tenant.urgent_max, 3);
    assert_true(n.tenant.receipts);
    assert_int_equal(cfg_check_required(nodecfg_keys, nodecfg_nkeys, &n, err, sizeof err),
                     HERALD_EINVAL);
    assert_string_equal(err, "node.data: required");

    memset(&g, 0x55, sizeof g);
    cfg_defaults(gwcfg_keys, gwcfg_nkeys, &g);
    assert_int_equal(g.id, 1);
    assert_string_equal(g.gw.listen, "127.0.0.1:7400");
    assert_string_equal(g.members, "");
    assert_int_equal(g.groups, 8);
    assert_int_equal(g.gw.max_frame, 1048576);
    assert_int_equal(g.gw.rate, 2000);
    assert_int_equal(g.gw.out_cap, 8u << 20);
    assert_int_equal(g.gw.hello_ms, 10000);
    assert_int_equal(g.gw.idle_ms, 90000);
    assert_int_equal(g.gw.max_conns, 10000);
    assert_int_equal(g.request_timeout_ms, 2000);
    assert_int_equal(g.retry_ms, 10000);
    assert_string_equal(g.log_level, "info");
    assert_int_equal(cfg_check_required(gwcfg_keys, gwcfg_nkeys, &g, err, sizeof err),
                     HERALD_EINVAL);
    assert_string_equal(err, "cluster.members: required");
}

static void test_good_files(void **state)
{
    node_config n;
    gateway_config g;
    char err[256];
    const char *p = write_file("[node]\n"
                               "id = 3\n"
                               "data = /var/lib/herald/n3\n"
                               "[cluster]\n"
                               "members = \" 1 = 10.0.0.1:7410 , 2=10.0.0.2:7410,3=[::1]:9000 \"\n"
                               "groups = 16\n"
                               "tenants = demo,acme\n"
                               "tls_ca = /etc/herald/ca.pem\n"
                               "tls_cert = /etc/herald/node-3.pem\n"
                               "[raft]\n"
                               "election_ms = 2000\n"
                               "snapshot_trailing = 0\n"
                               "map_size = 4G\n");
    (void)state;
    cfg_defaults(nodecfg_keys, nodecfg_nkeys, &n);
    assert_int_equal(cfg_load(nodecfg_keys, nodecfg_nkeys, &n, p, err, sizeof err), 0);
    unlink(p);
    assert_int_equal(cfg_check_required(nodecfg_keys, nodecfg_nkeys, &n, err, sizeof err), 0);
    assert_int_equal(nodecfg_validate(&n, err, sizeof err), 0);
    assert_int_equal(n.id, 3);
    assert_int_equal(n.groups, 16);
    assert_int_equal(n.election_ms, 2000);
    assert_int_equal(n.raft_map_size, 4ull << 30);
    assert_int_equal(n.n_members, 3);
    assert_int_equal(n.self, 2);
    assert_int_equal(n.member[0].id, 1);
    assert_string_equal(n.member[0].host, "10.0.0.1");
    assert_int_equal(n.member[0].port, 7410);
    assert_string_equal(n.member[0].raft_url, "tcp://10.0.0.1:7410");
    assert_string_equal(n.member[0].req_url, "tcp://10.0.0.1:7411");
    assert_string_equal(n.member[0].pub_url, "tcp://10.0.0.1:7412");
    /* Different hosts may share a port. */
    assert_string_equal(n.member[1].raft_url, "tcp://10.0.0.2:7410");
    assert_string_equal(n.member[2].host, "::1");
    assert_string_equal(n.member[2].pub_url, "tcp://[::1]:9002");

    p = write_file("gateway.id = 2\n"
                   "gateway.listen = 0.0.0.0:0\n"
                   "cluster.members = 1=127.0.0.1:7410\n"
                   "cluster.groups = 4\n"
                   "cluster.plaintext = true\n"
                   "gateway.retry_ms = 2000\n");
    cfg_defaults(gwcfg_keys, gwcfg_nkeys, &g);
    assert_int_equal(cfg_load(gwcfg_keys, gwcfg_nkeys, &g, p, err, sizeof err), 0);
    unlink(p);
    assert_int_equal(nodecfg_gateway_validate(&g, err, sizeof err), 0);
    assert_int_equal(g.id, 2);
    assert_int_equal(g.groups, 4);
    assert_int_equal(g.n_members, 1);
    assert_string_equal(g.member[0].req_url, "tcp://127.0.0.1:7411");

    assert_string_equal(n.tls_ca, "/etc/herald/ca.pem");
    assert_false(n.plaintext);

    /* The links: TLS files, or plaintext on loopback only. */
    good_node(&n);
    n.plaintext = false;
    assert_int_equal(nodecfg_validate(&n, err, sizeof err), HERALD_EINVAL);
    assert_string_equal(err, "cluster.tls_ca: required: the cluster's links use mutual TLS (make "
                             "a CA and certificates with deploy/cluster-certs.sh), or set "
                             "cluster.plaintext = true on a loopback-only cluster");
    strcpy(n.tls_ca, "/ca.pem");
    assert_int_equal(nodecfg_validate(&n, err, sizeof err), HERALD_EINVAL);
    assert_string_equal(err, "cluster.tls_cert: required: the cluster's links use mutual TLS "
                             "(make a CA and certificates with deploy/cluster-certs.sh), or set "
                             "cluster.plaintext = true on a loopback-only cluster");
    good_node(&n);
    strcpy(n.members, "1=127.0.0.1:7410,2=10.1.2.3:7420,3=[::1]:7430");
    assert_int_equal(nodecfg_validate(&n, err, sizeof err), HERALD_EINVAL);
    assert_string_equal(err, "cluster.plaintext: links without TLS are only for loopback "
                             "clusters, and member 2 is 10.1.2.3: set cluster.tls_ca and "
                             "cluster.tls_cert instead");
    good_gateway(&g);
    strcpy(g.members, "1=herald-1.example:7410");
    assert_int_equal(nodecfg_gateway_validate(&g, err, sizeof err), HERALD_EINVAL);
    good_gateway(&g);
    strcpy(g.tls_ca, "/ca.pem");
    assert_int_equal(nodecfg_gateway_validate(&g, err, sizeof err), HERALD_EINVAL);
    assert_string_equal(err, "cluster.plaintext: true, but cluster.tls_ca / cluster.tls_cert are "
                             "set: choose one");

    /* A single-node cluster is valid with replication 1. */
    good_node(&n);
    strcpy(n.members, "2=localhost:65533");
    n.replication = 1;
    assert_int_equal(nodecfg_validate(&n, err, sizeof err), 0);
    assert_int_equal(n.self, 0);
    assert_string_equal(n.member[0].pub_url, "tcp://localhost:65535");
}

static void test_members(void **state)
{
    static const struct {
        const char *text; /* cluster.members */
        const char *want; /* error; NULL = valid */
    } cases[] = {
        {"1=a:1", NULL},
        {"  7 =h:10,\t8= h:20  ", NULL},
        {"1=a:1,2=a:4", NULL},
        {"1=a:1,2=a:2,3=a:3,4=a:4,5=a:5,6=a:6,7=a:7,8=a:8,9=a:9", "cluster.members: '2=a:2' "
                                                                  "overlaps node 1 on a:1 "
                                                                  "(each node uses "
                                                                  "PORT..PORT+2)"},
        {"1=a:10,2=b:10,3=c:10,4=d:10,5=e:10,6=f:10,7=g:10,8=h:10,9=i:10", NULL},
        {"1=a:10,2=b:10,3=c:10,4=d:10,5=e:10,6=f:10,7=g:10,8=h:10,9=i:10,10=j:10",
         "cluster.members: more than 9 members"},
        {"", "cluster.members: required (ID=HOST:PORT, comma-separated)"},
        {"   ", "cluster.members: required (ID=HOST:PORT, comma-separated)"},
        {"1=a:1,", "cluster.members: empty entry (entry 2)"},
        {",1=a:1", "cluster.members: empty entry (entry 1)"},
        {"1=a:1,,2=b:1", "cluster.members: empty entry (entry 2)"},
        {"127.0.0.1:7410", "cluster.members: bad entry '127.0.0.1:7410': expected ID=HOST:PORT"},
        {"1=127.0.0.1", "cluster.members: bad entry '1=127.0.0.1': expected ID=HOST:PORT"},
        {"1=:7410", "cluster.members: bad entry '1=:7410': expected ID=HOST:PORT"},
        {"x=a:1", "cluster.members: bad entry 'x=a:1': node id must be 1..64"},
        {"0=a:1", "cluster.members: bad entry '0=a:1': node id must be 1..64"},
        {"65=a:1", "cluster.members: bad entry '65=a:1': node id must be 1..64"},
        {"-1=a:1", "cluster.members: bad entry '-1=a:1': node id must be 1..64"},
        {"1=a:0", "cluster.members: bad entry '1=a:0': port must be 1..65533 (the node also "
                  "listens on PORT+1 and PORT+2)"},
        {"1=a:65534", "cluster.members: bad entry '1=a:65534': port must be 1..65533 (the node "
                      "also listens on PORT+1 and PORT+2)"},
        {"1=a:99999999999", "cluster.members: bad entry '1=a:99999999999': port must be "
                            "1..65533 (the node also listens on PORT+1 and PORT+2)"},
        {"1=a:7x", "cluster.members: bad entry '1=a:7x': port must be 1..65533 (the node also "
                   "listens on PORT+1 and PORT+2)"},
        {"1=a b:1", "cluster.members: bad entry '1=a b:1': bad host"},
        {"1=::1:7410", "cluster.members: bad entry '1=::1:7410': IPv6 addresses go in "
                       "brackets, ID=[ADDR]:PORT"},
        {"1=[::1]7410", "cluster.members: bad entry '1=[::1]7410': expected ID=[ADDR]:PORT"},
        {"1=a:1,1=b:1", "cluster.members: node id 1 listed twice ('1=b:1')"},
        {"3=a:7410, 2=b:7410 ,3=c:7410", "cluster.members: node id 3 listed twice ('3=c:7410')"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        node_member m[NODECFG_MAX_MEMBERS];
        uint32_t n = 99;
        char err[256] = "";
        int rc = nodecfg_parse_members(cases[i].text, m, &n, err, sizeof err);
        if (!cases[i].want) {
            if (rc)
                fail_msg("'%s': %s", cases[i].text, err);
            assert_true(n >= 1);
        } else {
            if (rc != HERALD_EINVAL)
                fail_msg("'%s' was accepted", cases[i].text);
            assert_string_equal(err, cases[i].want);
            assert_int_equal(n, 0);
        }
    }
    {
        node_member m[NODECFG_MAX_MEMBERS];
        uint32_t n;
        char err[256];
        assert_int_equal(nodecfg_parse_members("  7 =h:10,\t8= h:20  ", m, &n, err, sizeof err),
                         0);
        assert_int_equal(n, 2);
        assert_int_equal(m[1].id, 8);
        assert_string_equal(m[1].host, "h");
        assert_string_equal(m[1].raft_url, "tcp://h:20");
    }
}

enum mutation {
    M_NO_DATA,
    M_NO_ID,
    M_ID_ABSENT,
    M_REPLICATION_LOW,
    M_REPLICATION_HIGH,
    M_BAD_MEMBERS,
    M_HEARTBEAT_EQ,
    M_HEARTBEAT_GT,
    M_TRAILING_EQ,
    M_NO_TENANTS,
    M_BAD_TENANT,
    M_EMPTY_TENANT,
    M_TOO_MANY_TENANTS,
    M_LOG_LEVEL,
    M_HTTP_TLS_PLAIN,
};

static void test_node_errors_name_the_key(void **state)
{
    static const struct {
        enum mutation m; /* what to break in a good config */
        const char *want; /* the error */
    } cases[] = {
        {M_NO_DATA, "node.data: required"},
        {M_NO_ID, "node.id: required (this node's id in cluster.members)"},
        {M_ID_ABSENT, "node.id: 4 is not in cluster.members"},
        {M_REPLICATION_LOW, "cluster.replication: must equal the number of cluster.members (3, "
                            "not 2): in this version every node holds a replica of every group"},
        {M_REPLICATION_HIGH, "cluster.replication: must equal the number of cluster.members "
                             "(1, not 3): in this version every node holds a replica of every "
                             "group"},
        {M_BAD_MEMBERS, "cluster.members: bad entry '2=127.0.0.1': expected ID=HOST:PORT"},
        {M_HEARTBEAT_EQ, "raft.heartbeat_ms: must be less than raft.election_ms (1000), not "
                         "1000"},
        {M_HEARTBEAT_GT, "raft.heartbeat_ms: must be less than raft.election_ms (200), not 300"},
        {M_TRAILING_EQ, "raft.snapshot_trailing: must be less than raft.snapshot_threshold "
                        "(4096), not 4096"},
        {M_NO_TENANTS, "cluster.tenants: required (comma-separated tenant ids)"},
        {M_BAD_TENANT, "cluster.tenants: 'ac me' is not a tenant id (1..128 of A-Z a-z 0-9 . _ "
                       "@ : -)"},
        {M_EMPTY_TENANT, "cluster.tenants: '' is not a tenant id (1..128 of A-Z a-z 0-9 . _ @ "
                         ": -)"},
        {M_TOO_MANY_TENANTS, "cluster.tenants: more than 16 tenants"},
        {M_LOG_LEVEL, "log.level: must be debug, info, warn or error, not 'loud'"},
        {M_HTTP_TLS_PLAIN, "node.http_tls: needs the node's certificate (cluster.tls_cert; not "
                           "with cluster.plaintext)"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        node_config c;
        char err[256] = "";
        good_node(&c);
        switch (cases[i].m) {
        case M_NO_DATA: c.data[0] = '\0'; break;
        case M_NO_ID: c.id = 0; break;
        case M_ID_ABSENT: c.id = 4; break;
        case M_REPLICATION_LOW: c.replication = 2; break;
        case M_REPLICATION_HIGH: strcpy(c.members, "2=h:1"); break;
        case M_BAD_MEMBERS: strcpy(c.members, "1=127.0.0.1:7410,2=127.0.0.1"); break;
        case M_HEARTBEAT_EQ: c.heartbeat_ms = 1000; break;
        case M_HEARTBEAT_GT:
            c.election_ms = 200;
            c.heartbeat_ms = 300;
            break;
        case M_TRAILING_EQ: c.snapshot_trailing = 4096; break;
        case M_NO_TENANTS: c.tenants[0] = '\0'; break;
        case M_BAD_TENANT: strcpy(c.tenants, "demo,ac me"); break;
        case M_EMPTY_TENANT: strcpy(c.tenants, "demo,,acme"); break;
        case M_TOO_MANY_TENANTS: strcpy(c.tenants, "a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,q"); break;
        case M_LOG_LEVEL: strcpy(c.log_level, "loud"); break;
        case M_HTTP_TLS_PLAIN: c.http_tls = true; break; /* plaintext, no certificate */
        }
        if (nodecfg_validate(&c, err, sizeof err) != HERALD_EINVAL)
            fail_msg("case %zu was accepted", i);
        assert_string_equal(err, cases[i].want);
        assert_int_equal(c.n_members, 0);
    }
}

static void test_node_bounds_from_the_table(void **state)
{
    static const struct {
        const char *text; /* file */
        const char *want; /* error after "PATH:" */
    } cases[] = {
        {"cluster.groups = 0\n", "1: cluster.groups: must be between 1 and 64, not 0"},
        {"cluster.groups = 65\n", "1: cluster.groups: must be between 1 and 64, not 65"},
        {"node.id = 65\n", "1: node.id: must be between 0 and 64, not 65"},
        {"cluster.replication = 10\n",
         "1: cluster.replication: must be between 1 and 9, not 10"},
        {"raft.heartbeat_ms = 5\n", "1: raft.heartbeat_ms: must be between 10 and 60000, not 5"},
        {"node.colour = red\n", "1: node.colour: unknown key"},
        {"gateway.rate = 5\n", "1: gateway.rate: unknown key"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        node_config c;
        char err[512], want[512];
        const char *p = write_file(cases[i].text);
        cfg_defaults(nodecfg_keys, nodecfg_nkeys, &c);
        assert_int_equal(cfg_load(nodecfg_keys, nodecfg_nkeys, &c, p, err, sizeof err),
                         HERALD_EINVAL);
        snprintf(want, sizeof want, "%s:%s", p, cases[i].want);
        assert_string_equal(err, want);
        unlink(p);
    }
}

static void test_gateway_errors_name_the_key(void **state)
{
    static const struct {
        const char *key;   /* key to set on a good config */
        const char *value; /* its value */
        const char *want;  /* the error from validate */
    } cases[] = {
        {"gateway.listen", "7400", "gateway.listen: expected HOST:PORT, not '7400'"},
        {"gateway.listen", ":7400", "gateway.listen: expected HOST:PORT, not ':7400'"},
        {"gateway.listen", "h:70000", "gateway.listen: expected HOST:PORT, not 'h:70000'"},
        {"cluster.members", "1=h:1,1=h:9", "cluster.members: node id 1 listed twice ('1=h:9')"},
        {"gateway.request_timeout_ms", "20000",
         "gateway.request_timeout_ms: must not exceed gateway.retry_ms (10000), not 20000"},
        {"log.level", "verbose", "log.level: must be debug, info, warn or error, not 'verbose'"},
    };
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        gateway_config c;
        char err[256] = "";
        good_gateway(&c);
        assert_int_equal(cfg_set(gwcfg_keys, gwcfg_nkeys, &c, cases[i].key, cases[i].value, err,
                                 sizeof err),
                         0);
        if (nodecfg_gateway_validate(&c, err, sizeof err) != HERALD_EINVAL)
            fail_msg("case %zu was accepted", i);
        assert_string_equal(err, cases[i].want);
        assert_int_equal(c.n_members, 0);
    }
}

/* Reads a whole file (NULL when missing). */
static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long len;
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    len = ftell(f);
    rewind(f);
    buf = malloc((size_t)len + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
    buf[len] = '\0';
    fclose(f);
    return buf;
}

/* deploy/NAME (found from this source file's path) holds a header ending
 * in a blank line and then exactly what cfg_write_sample writes; the
 * sample loads, and with the required keys set, validates. */
static void check_sample(const char *name, const cfg_key *tab, size_t n, void *target)
{
    char root[1024], path[1200], gen[64] = "/tmp/herald-nodecfg-XXXXXX", err[512];
    const char *slash = strstr(__FILE__, "tests/unit/test_nodecfg.c");
    char *committed, *generated, *body;
    FILE *f;

    snprintf(root, sizeof root, "%.*s", slash ? (int)(slash - __FILE__) : 0, __FILE__);
    snprintf(path, sizeof path, "%sdeploy/%s", root, name);
    close(mkstemp(gen));
    f = fopen(gen, "w");
    cfg_write_sample(tab, n, f);
    fclose(f);
    generated = slurp(gen);
    assert_non_null(generated);

    committed = slurp(path);
    if (!committed)
        fail_msg("%s is missing", path);
    body = strstr(committed, "\n\n");
    assert_non_null(body);
    if (strcmp(body + 2, generated) != 0)
        fail_msg("%s is stale: regenerate it with `heraldd sample-config`", path);

    cfg_defaults(tab, n, target);
    assert_int_equal(cfg_load(tab, n, target, path, err, sizeof err), 0);
    cfg_defaults(tab, n, target);
    assert_int_equal(cfg_load(tab, n, target, gen, err, sizeof err), 0);
    unlink(gen);
    free(generated);
    free(committed);
}

static void test_samples(void **state)
{
    node_config nc;
    gateway_config gc;
    char err[256];
    (void)state;
    check_sample("node.conf", nodecfg_keys, nodecfg_nkeys, &nc);
    strcpy(nc.data, "/tmp/x");
    strcpy(nc.members, "1=127.0.0.1:7410,2=127.0.0.1:7420,3=127.0.0.1:7430");
    nc.id = 1;
    /* The links need their TLS files (or, on loopback, plaintext said out loud). */
    assert_int_equal(nodecfg_validate(&nc, err, sizeof err), HERALD_EINVAL);
    strcpy(nc.members, "1=127.0.0.1:7410,2=127.0.0.1:7420,3=127.0.0.1:7430");
    strcpy(nc.tls_ca, "/etc/herald/ca.pem");
    strcpy(nc.tls_cert, "/etc/herald/node-1.pem");
    assert_int_equal(nodecfg_validate(&nc, err, sizeof err), 0);
    check_sample("gateway.conf", gwcfg_keys, gwcfg_nkeys, &gc);
    strcpy(gc.members, "1=127.0.0.1:7410");
    strcpy(gc.tls_ca, "/etc/herald/ca.pem");
    strcpy(gc.tls_cert, "/etc/herald/gateway-1.pem");
    assert_int_equal(nodecfg_gateway_validate(&gc, err, sizeof err), 0);
    /* Every key has help; no two keys share a name. */
    for (size_t i = 0; i < nodecfg_nkeys; i++) {
        assert_true(nodecfg_keys[i].help && *nodecfg_keys[i].help);
        for (size_t j = i + 1; j < nodecfg_nkeys; j++)
            assert_string_not_equal(nodecfg_keys[i].name, nodecfg_keys[j].name);
    }
    for (size_t i = 0; i < gwcfg_nkeys; i++) {
        assert_true(gwcfg_keys[i].help && *gwcfg_keys[i].help);
        for (size_t j = i + 1; j < gwcfg_nkeys; j++)
            assert_string_not_equal(gwcfg_keys[i].name, gwcfg_keys[j].name);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_good_files),
        cmocka_unit_test(test_members),
        cmocka_unit_test(test_node_errors_name_the_key),
        cmocka_unit_test(test_node_bounds_from_the_table),
        cmocka_unit_test(test_gateway_errors_name_the_key),
        cmocka_unit_test(test_samples),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
