/* upgrade.c — `heraldd upgrade-data --data DIR`: converts the group stores
 * of a stopped dev data dir (DIR/gN) or node data dir (DIR/groups/gN) from
 * store format 1 to format 2, one line per store. */
#include <herald/error.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cluster.h"
#include "store.h"

#define UPGRADE_MAX_GROUPS 65u

int upgrade_run(int argc, char **argv)
{
    const char *data = NULL;
    unsigned done = 0;

    for (int i = 0; i + 1 < argc; i++)
        if (strcmp(argv[i], "--data") == 0)
            data = argv[++i];
    if (!data || argc != 2) {
        fprintf(stderr, "usage: heraldd upgrade-data --data DIR   (stopped: dev --data, or a "
                        "node's node.data)\n");
        return 2;
    }
    for (uint32_t gi = 0; gi < UPGRADE_MAX_GROUPS; gi++) {
        char path[PATH_MAX];
        struct stat sb;
        store_upgrade_report r;
        int rc;

        snprintf(path, sizeof path, "%s/groups/g%u", data, gi);
        if (stat(path, &sb) != 0) {
            snprintf(path, sizeof path, "%s/g%u", data, gi);
            if (stat(path, &sb) != 0)
                break;
        }
        rc = store_upgrade(path, &r);
        if (rc) {
            fprintf(stderr, "heraldd: upgrade-data: %s: %s (nothing changed in it)\n", path,
                    herald_strerror(rc));
            return 1;
        }
        if (r.already)
            printf("group %u applied %llu: format 2 already\n", gi,
                   (unsigned long long)r.applied);
        else
            printf("group %u applied %llu: %llu messages given positions; pointer logs "
                   "dropped\n",
                   gi, (unsigned long long)r.applied, (unsigned long long)r.messages);
        done++;
    }
    if (!done) {
        fprintf(stderr, "heraldd: upgrade-data: no group stores under %s (gN or groups/gN)\n",
                data);
        return 1;
    }
    return 0;
}
