/* ----------------------------------------------------------------------------
 * malloc_pairs.c: a small driver of whatever malloc the process binds to
 * (run it with LD_PRELOAD of each library: the same binary for all), for
 * afmalloc's comparison (bench/afmalloc_compare.py).
 *
 *   malloc_pairs fixed48 N        N malloc(48)/free pairs
 *   malloc_pairs mixed N          N pairs over 64 live blocks of 16..1024 bytes
 *                                 (a fixed pseudo-random sequence of sizes)
 *   malloc_pairs threads T N      T threads, each N pairs of the mixed loop,
 *                                 every 4th block freed by the next thread
 *                                 (handed over through a lock-free slot ring);
 *                                 prints the wall time in seconds
 *
 * The loops keep every pointer observable (a volatile sink) so the compiler
 * cannot drop a malloc/free pair. Instructions per pair: callgrind on N and
 * 2N, the difference / N (start-up cancels out).
 * ------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define LIVE 64
#define SIZES 256
#define RING 1024

static void *volatile sink;
static size_t sizes[SIZES];

static void make_sizes(void) {
  uint64_t x = 88172645463325252ull; /* xorshift64: the same sizes on every run */
  for (int i = 0; i < SIZES; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    sizes[i] = 16 + (size_t)(x % 1009);
  }
}

static void fixed48(long n) {
  for (long i = 0; i < n; i++) {
    void *p = malloc(48);
    sink = p;
    free(p);
  }
}

static void mixed(long n) {
  void *live[LIVE] = {0};
  for (long i = 0; i < n; i++) {
    unsigned slot = (unsigned)i % LIVE;
    free(live[slot]);
    live[slot] = malloc(sizes[i % SIZES]);
    sink = live[slot];
  }
  for (int i = 0; i < LIVE; i++) free(live[i]);
}

/* ----------------------------------------------------------------------------
 * Threads: thread t hands every 4th block to thread (t + 1) % T
 * ------------------------------------------------------------------------- */
typedef struct ring {
  _Atomic(void *) slots[RING];
} ring;

typedef struct worker {
  pthread_t thread;
  ring *inbox, *outbox;
  long n;
} worker;

static void *churn(void *arg) {
  worker *w = arg;
  void *live[LIVE] = {0};
  for (long i = 0; i < w->n; i++) {
    unsigned slot = (unsigned)i % LIVE;
    void *p = malloc(sizes[i % SIZES]);
    memset(p, 1, 16);
    if (i % 4 == 0) { /* to the next thread; whatever was in its slot is freed here */
      free(atomic_exchange(&w->outbox->slots[(unsigned)(i / 4) % RING], p));
    } else {
      free(live[slot]);
      live[slot] = p;
    }
    void *mine = atomic_exchange(&w->inbox->slots[(unsigned)i % RING], NULL); /* another thread's block */
    free(mine);
  }
  for (int i = 0; i < LIVE; i++) free(live[i]);
  return NULL;
}

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static int threads(int t, long n) {
  ring *rings = calloc((size_t)t, sizeof *rings);
  worker *w = calloc((size_t)t, sizeof *w);
  if (rings == NULL || w == NULL) return 1;
  double start = now();
  for (int i = 0; i < t; i++) {
    w[i] = (worker){.inbox = &rings[i], .outbox = &rings[(i + 1) % t], .n = n};
    if (pthread_create(&w[i].thread, NULL, churn, &w[i]) != 0) return 1;
  }
  for (int i = 0; i < t; i++) pthread_join(w[i].thread, NULL);
  double elapsed = now() - start;
  for (int i = 0; i < t; i++)
    for (int s = 0; s < RING; s++) free(atomic_load(&rings[i].slots[s]));
  free(rings);
  free(w);
  printf("%.6f\n", elapsed);
  return 0;
}

int main(int argc, char **argv) {
  make_sizes();
  if (argc == 3 && strcmp(argv[1], "fixed48") == 0) fixed48(atol(argv[2]));
  else if (argc == 3 && strcmp(argv[1], "mixed") == 0) mixed(atol(argv[2]));
  else if (argc == 4 && strcmp(argv[1], "threads") == 0) return threads(atoi(argv[2]), atol(argv[3]));
  else {
    fprintf(stderr, "usage: %s fixed48 N | mixed N | threads T N\n", argv[0]);
    return 2;
  }
  return 0;
}
