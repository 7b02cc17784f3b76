/* threads_exchange.c: THREADS threads (argv[1], default 2) each run ROUNDS
 * (argv[2], default 20000) rounds of: malloc(64), swap the block into a
 * shared slot, free the block it got out (which another thread allocated,
 * most of the time). Run with one arena and no tcache
 * (GLIBC_TUNABLES=glibc.malloc.tcache_count=0, MALLOC_ARENA_MAX=1) an
 * address one thread frees is at once handed to another thread's malloc:
 * a recorder that logged a free after the real free, or an allocation
 * before the real call returned, would invert some of those pairs, which
 * shows as unknown frees and blocks left live in the trace.
 * A third argument "kill" makes the process kill itself after the joins.
 * Every thread after the first frees at least one block another thread
 * allocated, however the threads are scheduled.
 * Calls: malloc THREADS*ROUNDS, free THREADS*ROUNDS (the last block left
 * in the slot is freed by main; the first swaps free NULL).
 */
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

static _Atomic(void *) slot;
static long rounds = 20000;
static pthread_barrier_t start; /* all threads begin together, so their rounds overlap */

static void *worker(void *arg) {
  (void)arg;
  pthread_barrier_wait(&start);
  for (long i = 0; i < rounds; i++) {
    void *mine = malloc(64);
    void *theirs = atomic_exchange(&slot, mine);
    free(theirs);
  }
  return NULL;
}

int main(int argc, char **argv) {
  int threads = argc > 1 ? atoi(argv[1]) : 2;
  if (argc > 2) rounds = atol(argv[2]);
  if (threads < 1 || threads > 64) return 2;
  pthread_t t[64];
  pthread_barrier_init(&start, NULL, (unsigned)threads);
  for (int i = 0; i < threads; i++) pthread_create(&t[i], NULL, worker, NULL);
  for (int i = 0; i < threads; i++) pthread_join(t[i], NULL);
  /* "kill": die before the main thread's buffer can be written (only what
     the exiting threads flushed survives) */
  if (argc > 3 && strcmp(argv[3], "kill") == 0) raise(SIGKILL);
  free(atomic_exchange(&slot, NULL));
  return 0;
}
