/* Which allocator serves this process, told from symbols only that library defines (mi_version,
 * mallctl, tc_version): the test programs' own view, independent of allocffi run's probe.
 * Include after defining _GNU_SOURCE (RTLD_DEFAULT). */
#ifndef ALLOCFFI_TESTS_ALLOCATOR_SEEN_H
#define ALLOCFFI_TESTS_ALLOCATOR_SEEN_H
#include <dlfcn.h>
#include <stddef.h>

static const char *allocator_seen(void) {
  if (dlsym(RTLD_DEFAULT, "mi_version") != NULL) return "mimalloc";
  if (dlsym(RTLD_DEFAULT, "mallctl") != NULL) return "jemalloc";
  if (dlsym(RTLD_DEFAULT, "tc_version") != NULL) return "tcmalloc";
  return "libc";
}
#endif
