/* shutdown.c — see shutdown.h. */
#include "shutdown.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Set once by shutdown_begin on the loop thread, read by the handlers: the
 * process-wide state a signal handler needs cannot be passed to it. */
static char shutdown_line[160];
static size_t shutdown_line_len;
static struct timespec shutdown_t0;

static void shutdown_now(int sig)
{
    (void)sig;
    if (write(STDERR_FILENO, shutdown_line, shutdown_line_len) < 0) {
        /* nothing more to do: we are leaving */
    }
    _exit(1);
}

void shutdown_begin(unsigned seconds, const char *who)
{
    struct sigaction sa;
    int n = snprintf(shutdown_line, sizeof shutdown_line,
                     "{\"lvl\":\"error\",\"id\":\"shutdown.budget\",\"msg\":\"%s: not "
                     "stopped %u s after the signal (or signalled again): exiting now\"}\n",
                     who, seconds);
    shutdown_line_len = n > 0 && (size_t)n < sizeof shutdown_line ? (size_t)n : 0;
    clock_gettime(CLOCK_MONOTONIC, &shutdown_t0);
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = shutdown_now;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    alarm(seconds ? seconds : SHUTDOWN_BUDGET_S_DEFAULT);
}

unsigned long shutdown_elapsed_ms(void)
{
    struct timespec now;
    if (!shutdown_t0.tv_sec && !shutdown_t0.tv_nsec)
        return 0;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (unsigned long)((now.tv_sec - shutdown_t0.tv_sec) * 1000 +
                           (now.tv_nsec - shutdown_t0.tv_nsec) / 1000000);
}
