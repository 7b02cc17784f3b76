/* A program whose allocator is known to itself: the test of `allocffi run`'s preload check.
 *
 *   known_alloc REPORT alloc N     N malloc/free pairs; writes to REPORT which allocator it saw
 *   known_alloc REPORT exit CODE   exits with CODE after allocating a little
 *   known_alloc REPORT sleep S     sleeps S seconds
 *   known_alloc REPORT reset-env   runs itself ("alloc") with an empty environment, as some
 *                                  wrappers do, so the child misses LD_PRELOAD
 *
 * It names its allocator from the symbols only that library defines (mi_version, mallctl,
 * tc_version), a check independent of the harness's dladdr probe. allocffi's own afmalloc exports
 * the malloc family only: it is named by the file that defines the malloc this program calls.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "allocator_seen.h"

static void churn(long n) {
  void *keep[64] = {0};
  for (long i = 0; i < n; i++) {
    size_t slot = (size_t)i % 64;
    free(keep[slot]);
    keep[slot] = malloc(16 + (size_t)(i % 200));
    if (keep[slot] != NULL) memset(keep[slot], 1, 16);
  }
  for (int i = 0; i < 64; i++) free(keep[i]);
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: %s REPORT alloc N | exit CODE | sleep S | reset-env\n", argv[0]);
    return 64;
  }
  const char *report = argv[1], *mode = argv[2];
  if (strcmp(mode, "reset-env") == 0) {
    /* execle, a list form: the probe wraps those too (csrc/exec_list.h), through its execve */
    char *empty[] = {NULL};
    execle("/proc/self/exe", argv[0], argv[1], "alloc", "1000", (char *)NULL, empty);
    perror("execle");
    return 65;
  }
  churn(1000);
  FILE *out = fopen(report, "a");
  if (out != NULL) {
    fprintf(out, "%s\n", allocator_seen());
    fclose(out);
  }
  if (strcmp(mode, "alloc") == 0 && argc > 3) churn(atol(argv[3]));
  if (strcmp(mode, "exit") == 0 && argc > 3) return atoi(argv[3]);
  if (strcmp(mode, "sleep") == 0 && argc > 3) sleep((unsigned)atoi(argv[3]));
  return 0;
}
