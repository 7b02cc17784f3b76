/* A program that stops on time, not on work, and prints its own throughput: the score test.
 *
 *   fixed_duration MS      churns malloc/free for MS milliseconds, then prints "ops/s: N"
 *
 * Like larson, its wall time is the same under every allocator; only its score differs. The test's
 * "slower allocator": when SLOW_UNDER names the allocator it runs under (seen from symbols only
 * that library defines: tests/data/allocator_seen.h), every operation also sleeps a little, so
 * its rate falls about tenfold and the harness must call that allocator worse.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../data/allocator_seen.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: fixed_duration MS\n");
    return 2;
  }
  double duration = atof(argv[1]) / 1000.0;
  const char *slow = getenv("SLOW_UNDER");
  int slowed = slow != NULL && strcmp(slow, allocator_seen()) == 0;
  const struct timespec pause = {0, 20000}; /* 20 us per batch of 16 operations */
  void *keep[256] = {0};
  unsigned long ops = 0;
  double start = now_s(), end = start;
  while (end - start < duration) {
    for (int i = 0; i < 16; i++, ops++) {
      size_t slot = (ops * 7919) % 256;
      free(keep[slot]);
      keep[slot] = malloc(16 + (ops * 31) % 2000);
      if (keep[slot] != NULL) memset(keep[slot], (int)ops, 16);
    }
    if (slowed) nanosleep(&pause, NULL);
    end = now_s();
  }
  for (int i = 0; i < 256; i++) free(keep[i]);
  printf("ran %.3f s\nops/s: %.0f\n", end - start, (double)ops / (end - start));
  return 0;
}
