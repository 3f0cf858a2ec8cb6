/*
 * shutdown.h — the shutdown budget of a heraldd process.
 *
 * SIGTERM / SIGINT break the loop and the process closes what it holds
 * (raft groups, stores, sockets), which normally takes milliseconds. The
 * budget bounds it whatever happens: when the cleanup has not finished
 * `seconds` after the signal, the process writes one log line and leaves
 * with _exit(1); a second signal ends it at once. Nothing acknowledged depends on
 * the cleanup (the raft log and the stores are durable when a reply goes
 * out), so this is as safe as kill -9, just prompt.
 */
#ifndef HERALD_HERALDD_SHUTDOWN_H
#define HERALD_HERALDD_SHUTDOWN_H

#define SHUTDOWN_BUDGET_S_DEFAULT 5u

/* Starts the budget (call from the signal's watcher, once). who names the
 * process in the log line ("node 2", "gateway 1", "dev"). Async-signal-safe
 * from then on: the deadline fires from SIGALRM; a second SIGTERM / SIGINT
 * ends the process at once. */
void shutdown_begin(unsigned seconds, const char *who);

/* Milliseconds since shutdown_begin (0 before it). */
unsigned long shutdown_elapsed_ms(void);

#endif
