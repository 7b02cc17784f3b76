/* ----------------------------------------------------------------------------
 * mstress.c: many threads churning blocks of mixed sizes, after mimalloc's
 * stress test (test/test-stress.c in microsoft/mimalloc, run as "mstress" by
 * the mimalloc-bench suite).
 *
 * Models: a program whose threads come and go while the objects they made
 * live on in shared structures. ROUNDS times, THREADS threads start, each
 * does its share of OPS random operations on its own array of LOCAL slots:
 * allocate a block into a slot (freeing what was there), free a slot, or swap
 * a slot with one of TRANSFER shared slots (an atomic exchange: the block it
 * receives was likely allocated by another thread, possibly one that has
 * exited). Sizes: mostly small (24-511 bytes), some medium (to 16 KiB), a few
 * large (to 256 KiB). When its operations are done a thread frees half of
 * what it holds and leaves the rest in the shared slots, then exits; the next
 * round's threads inherit those blocks. The main thread fills the shared
 * slots at the start and frees what is left at the end.
 *
 * Measures: time. It stops on work (the same operations on every allocator):
 * compare the wall time. It prints its own elapsed time.
 *
 * Invariants:
 * - a block is reachable from exactly one place: a thread's local slot or a
 *   shared slot (the exchange moves it atomically);
 * - every block describes itself (size, tag and a check of both in its first
 *   24 bytes, a stamp after them), because the thread that frees it may not be
 *   the one that made it; it is verified just before every free;
 * - each thread's operations and sizes depend only on the seed, the round and
 *   the thread's index; which block an exchange brings back depends on timing.
 * ------------------------------------------------------------------------- */
#include "stress/stress.h"

#include <stdatomic.h>

#define ROUNDS 10               /* generations of threads */
#define LOCAL 512               /* slots per thread */
#define TRANSFER 1024           /* shared slots */
#define BASE_OPS 4000000        /* operations of all threads over all rounds at scale 1 */
#define HEADER (3 * sizeof(uint64_t))

typedef struct header {
  uint64_t size;  /* the whole block, header included */
  uint64_t tag;   /* stamps the rest of the block */
  uint64_t check; /* mix(size ^ tag): a header that does not match was overwritten */
} header_t;

typedef struct worker {
  uint64_t rng;
  uint64_t ops;
  bool corrupt;
} worker_t;

static _Atomic(void *) transfer[TRANSFER];

static uint64_t random_size(uint64_t r) {
  uint64_t kind = bench_below_lo(r, 100), pick = r >> 32;
  if (kind < 89) return HEADER + pick % (512 - HEADER);   /* small */
  if (kind < 99) return 512 + pick % (16 * 1024 - 512);  /* medium */
  return 16 * 1024 + pick % (240 * 1024);                /* large, < 256 KiB */
}

static void *make_block(uint64_t *rng) {
  uint64_t size = random_size(bench_rand(rng)), tag = bench_rand(rng);
  header_t *h = stress_malloc(size);
  *h = (header_t){.size = size, .tag = tag, .check = bench_mix64(size ^ tag)};
  stress_stamp((char *)h + HEADER, size - HEADER, tag);
  return h;
}

static void release_block(void *block) {
  if (block == NULL) return;
  header_t *h = block;
  if (h->check != bench_mix64(h->size ^ h->tag))
    stress_fail("corrupted block %p: header size %" PRIu64 ", tag %016" PRIx64 ", check %016" PRIx64 " does not match",
                block, h->size, h->tag, h->check);
  stress_verify((char *)h + HEADER, h->size - HEADER, h->tag);
  free(block);
}

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  void *local[LOCAL] = {0};
  for (uint64_t i = 0; i < w->ops; i++) {
    uint64_t r = bench_rand(&w->rng);
    void **slot = &local[bench_below_lo(r, LOCAL)];
    switch ((r >> 32) & 3) {
      case 0:
      case 1:
        release_block(*slot);
        *slot = make_block(&w->rng);
        break;
      case 2:
        release_block(*slot);
        *slot = NULL;
        break;
      default:
        *slot = atomic_exchange(&transfer[bench_below_hi(r, TRANSFER)], *slot);
        break;
    }
  }
  /* Leave: free every other block, hand the rest to the shared slots. */
  for (int s = 0; s < LOCAL; s++) {
    if (s % 2 == 0) release_block(local[s]);
    else release_block(atomic_exchange(&transfer[bench_below_hi(bench_rand(&w->rng), TRANSFER)], local[s]));
  }
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "mstress");
  uint64_t ops = stress_scaled(BASE_OPS, args.scale);
  uint64_t shares = ROUNDS * (uint64_t)args.threads;
  uint64_t per_thread = (ops + shares - 1) / shares; /* rounded up: every thread works */
  uint64_t rng = bench_mix64(args.seed);
  for (int s = 0; s < TRANSFER; s++) atomic_store(&transfer[s], make_block(&rng));
  if (args.corrupt) stress_damage(atomic_load(&transfer[0]));

  worker_t workers[STRESS_MAX_THREADS];
  pthread_t threads[STRESS_MAX_THREADS];
  double start = stress_now();
  for (int round = 0; round < ROUNDS; round++) {
    for (int t = 0; t < args.threads; t++) {
      uint64_t stream = (uint64_t)round * STRESS_MAX_THREADS + (uint64_t)t;
      workers[t] = (worker_t){.rng = bench_mix64(args.seed * 0x9e3779b97f4a7c15ULL + stream), .ops = per_thread};
      stress_thread_start(&threads[t], worker_thread, &workers[t]);
    }
    for (int t = 0; t < args.threads; t++) stress_thread_join(threads[t]);
  }
  for (int s = 0; s < TRANSFER; s++) release_block(atomic_exchange(&transfer[s], NULL));
  double elapsed = stress_now() - start;
  printf("mstress: %d threads, %d rounds, %" PRIu64 " operations, %.3f s\n", args.threads, ROUNDS,
         per_thread * ROUNDS * (uint64_t)args.threads, elapsed);
  return 0;
}
