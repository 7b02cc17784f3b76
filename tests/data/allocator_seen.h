/* Which allocator serves this process, told from symbols only that library defines (mi_version,
 * mallctl, tc_version) or, for allocffi's own afmalloc, from the object that defines malloc: the test
 * programs' own view, independent of allocffi run's probe.
 * Include after defining _GNU_SOURCE (RTLD_DEFAULT). */
#ifndef ALLOCFFI_TESTS_ALLOCATOR_SEEN_H
#define ALLOCFFI_TESTS_ALLOCATOR_SEEN_H
#include <dlfcn.h>
#include <stddef.h>
#include <string.h>

static const char *allocator_seen(void) {
  if (dlsym(RTLD_DEFAULT, "mi_version") != NULL) return "mimalloc";
  if (dlsym(RTLD_DEFAULT, "mallctl") != NULL) return "jemalloc";
  if (dlsym(RTLD_DEFAULT, "tc_version") != NULL) return "tcmalloc";
  Dl_info info;
  void *definition = dlsym(RTLD_DEFAULT, "malloc");
  if (definition != NULL && dladdr(definition, &info) != 0 && info.dli_fname != NULL &&
      strstr(info.dli_fname, "_afmalloc") != NULL)
    return "afmalloc";
  return "libc";
}
#endif
