/* ----------------------------------------------------------------------------
 * allocffi run's allocation counter: how many allocations does a program make?
 *
 * Preloaded (with glibc malloc, no other allocator) for one counting run of a
 * suite program. It defines malloc, calloc and realloc, counts each call and
 * forwards it to glibc's own entry points (__libc_malloc, ...), which never
 * come back here, so no bootstrap or recursion problem arises. free and the
 * aligned variants are not interposed: glibc serves them unchanged.
 *
 * At exit each process appends "count\tPID\tCALLS\n" to the file named by
 * ALLOCFFI_COUNT_FILE (one write on an O_APPEND file). A process that ends
 * with _exit, a signal or an exec reports nothing: the harness sums what it
 * gets, so the figure is a lower bound, which is what a coarse check needs.
 * -------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t count, size_t size);
extern void *__libc_realloc(void *ptr, size_t size);

static unsigned long long allocation_calls; /* relaxed atomics: a count, not an order */

static inline void counted(void) { __atomic_fetch_add(&allocation_calls, 1, __ATOMIC_RELAXED); }

void *malloc(size_t size) {
  counted();
  return __libc_malloc(size);
}

void *calloc(size_t count, size_t size) {
  counted();
  return __libc_calloc(count, size);
}

void *realloc(void *ptr, size_t size) {
  counted();
  return __libc_realloc(ptr, size);
}

__attribute__((destructor)) static void allocffi_count_report(void) {
  const char *report = getenv("ALLOCFFI_COUNT_FILE");
  if (report == NULL || report[0] == '\0') return;
  char line[64];
  int len = snprintf(line, sizeof line, "count\t%d\t%llu\n", (int)getpid(),
                     __atomic_load_n(&allocation_calls, __ATOMIC_RELAXED));
  int fd = open(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0 || len <= 0) return;
  (void)!write(fd, line, (size_t)len);
  close(fd);
}
