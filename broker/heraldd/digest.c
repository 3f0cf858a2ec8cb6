/* digest.c — `heraldd digest --data DIR`: one line per group store of a
 * stopped node, "group G applied A sha256 HEX". Replicas that applied the
 * same index must print the same digest. */
#include <herald/error.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster.h"
#include "store.h"
#include "store_snap.h"

int digest_run(int argc, char **argv)
{
    const char *data = NULL;
    unsigned shown = 0;

    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--data") == 0)
            data = argv[++i];
    if (!data || argc != 2) {
        fprintf(stderr, "usage: heraldd digest --data DIR   (a stopped node's node.data)\n");
        return 2;
    }
    for (uint32_t gi = 0; gi < 65; gi++) {
        char path[PATH_MAX];
        struct stat sb;
        store_config sc = {.no_sync = true, .group = gi};
        store *st = NULL;
        uint8_t d[STORE_SNAP_DIGEST_LEN];
        uint64_t applied = 0;
        int rc;

        snprintf(path, sizeof path, "%s/groups/g%u", data, gi);
        if (stat(path, &sb) != 0)
            break;
        sc.dir = path;
        rc = store_open(&sc, &st);
        if (rc == 0)
            rc = store_digest(st, d, &applied);
        if (st)
            store_close(st);
        if (rc) {
            fprintf(stderr, "heraldd: digest: %s: %s\n", path, herald_strerror(rc));
            return 1;
        }
        printf("group %u applied %llu sha256 ", gi, (unsigned long long)applied);
        for (size_t k = 0; k < sizeof d; k++)
            printf("%02x", d[k]);
        printf("\n");
        shown++;
    }
    if (!shown) {
        fprintf(stderr, "heraldd: digest: no group stores under %s/groups\n", data);
        return 1;
    }
    return 0;
}
