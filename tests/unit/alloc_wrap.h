/*
 * alloc_wrap.h — allocation-failure injection for unit tests linked with
 * -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc (alloc_wrap.c, see
 * tests/CMakeLists.txt): our own allocations fail once alloc_fail_after
 * more have succeeded; -1 never fails. Shared libraries (msgpack-c, LMDB)
 * keep their allocator.
 */
#ifndef HERALD_TESTS_ALLOC_WRAP_H
#define HERALD_TESTS_ALLOC_WRAP_H

extern long alloc_fail_after;

#endif
