/*
 * replay.c — runs a libFuzzer target over a corpus without libFuzzer, so
 * ctest replays every corpus as a regression test (built with the normal
 * compiler and sanitizers).
 *
 * Usage: replay_NAME PATH...   (each PATH a file, or a directory whose
 * regular files are run; subdirectories are not descended into).
 * Exit status: 0 when at least one input ran; 1 when none were found (a
 * missing or empty corpus must fail the test); 2 on an I/O error. A crash
 * in the target aborts the process, which fails the test too.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Largest input replayed; libFuzzer runs use -max_len=4096, so anything far
 * bigger is not a corpus file. */
#define REPLAY_MAX_INPUT (16u << 20)

/* Reads all of `path` and runs the target on it. 0, or -1 on an I/O error
 * (reported on stderr). */
static int run_file(const char *path, size_t *ran)
{
    FILE *f = fopen(path, "rb");
    struct stat st;
    uint8_t *buf;
    size_t n;

    if (!f) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || st.st_size < 0 || (uint64_t)st.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: cannot size or too large\n", path);
        goto fail_file;
    }
    /* +1: malloc(0) may return NULL, and the target must not see past size. */
    buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        fprintf(stderr, "replay: %s: out of memory\n", path);
        goto fail_file;
    }
    n = fread(buf, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        fprintf(stderr, "replay: %s: read error\n", path);
        goto fail_buf;
    }
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    (*ran)++;
    return 0;

fail_buf:
    free(buf);
fail_file:
    fclose(f);
    return -1;
}

/* Runs every regular file directly inside directory `dir`. */
static int run_dir(const char *dir, size_t *ran)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int rc = 0;

    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(path, sizeof path, "%s/%s", dir, e->d_name) >= (int)sizeof path) {
            fprintf(stderr, "replay: %s/%s: path too long\n", dir, e->d_name);
            rc = -1;
            continue;
        }
        if (stat(path, &st) != 0 || !S_ISREG(st.st_mode))
            continue;
        if (run_file(path, ran) != 0)
            rc = -1;
    }
    closedir(d);
    return rc;
}

int main(int argc, char **argv)
{
    size_t ran = 0;
    int io_error = 0;

    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            io_error = 1;
            continue;
        }
        if ((S_ISDIR(st.st_mode) ? run_dir(argv[i], &ran) : run_file(argv[i], &ran)) != 0)
            io_error = 1;
    }
    printf("replay: ran %zu inputs\n", ran);
    if (ran == 0) {
        fprintf(stderr, "replay: no inputs found\n");
        return 1;
    }
    return io_error ? 2 : 0;
}
