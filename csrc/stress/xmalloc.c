/* ----------------------------------------------------------------------------
 * xmalloc.c: threads that only allocate and threads that only free, after
 * Lever and Boreham's malloc test ("malloc() Performance in a Multithreaded
 * Linux Environment", USENIX 2000, FREENIX track; known in allocator suites
 * as xmalloc-test).
 *
 * Models: an asymmetric pipeline, as those authors saw in servers: some
 * threads make objects, others consume and free them. Of THREADS threads,
 * THREADS / 2 are producers and the rest consumers. A producer allocates
 * batches of BATCH blocks (sizes from a table of 8-512 bytes) and hands them
 * to the consumers in turn; a consumer frees every block it is handed and
 * allocates nothing. So every block is freed by a thread that never
 * allocates: an allocator whose freed blocks pile up in the freeing thread's
 * cache must move them back to the allocating threads. With one thread, that
 * thread does both (the no-crossing case, by the same code). Each (producer,
 * consumer) pair has its own single-producer, single-consumer inbox (no lock
 * of ours to hide the allocator's cost); the published test shares one queue.
 *
 * Measures: throughput. It stops on time, not on work: it runs for SCALE x 1 s
 * and prints "throughput N blocks/s" (blocks allocated and then freed by a
 * consumer within the run). Its wall time is the same under every allocator;
 * compare the throughput.
 *
 * Invariants:
 * - a batch belongs to one thread at a time: its producer until the release
 *   store that publishes it, then its consumer (acquire load);
 * - every block is stamped by its producer and verified by its consumer just
 *   before its free; at the end every thread stops producing (a barrier)
 *   before the inboxes are drained, so no block is left behind;
 * - each producer's sizes come from its own generator (seed and index).
 * ------------------------------------------------------------------------- */
#include "stress/stress.h"

#include <sched.h>
#include <stdatomic.h>

#define BATCH 64          /* blocks per batch */
#define INBOX 16          /* batches in flight to one thread; a power of two */
#define BASE_SECONDS 1.0  /* the run's duration at scale 1 */

static const uint32_t block_sizes[] = {8, 16, 24, 32, 48, 64, 96, 128, 192, 256, 384, 512};
#define BLOCK_SIZES (sizeof block_sizes / sizeof block_sizes[0])

typedef struct batch {
  void *blocks[BATCH];
  uint64_t tags[BATCH];
  uint32_t sizes[BATCH];
} batch_t;

/* One (producer, consumer) pair's inbox: written by the producer only, read by the consumer only. */
typedef struct inbox {
  _Alignas(64) atomic_size_t head; /* next batch to take; advanced by the consumer */
  _Alignas(64) atomic_size_t tail; /* next free place; advanced by the producer; tail - head <= INBOX */
  batch_t *batches[INBOX];
} inbox_t;

typedef struct worker {
  inbox_t *inboxes;        /* [producer * consumers + consumer] */
  int producers, consumers;
  int producer;            /* this thread's index among the producers, or -1 */
  int consumer;            /* this thread's index among the consumers, or -1 */
  uint64_t rng;
  uint64_t freed;          /* blocks freed before the stop */
  bool corrupt;            /* damage the first block of the first batch */
  pthread_barrier_t *sync; /* start together; stop producing together */
} worker_t;

static atomic_bool stop_requested;

static bool inbox_push(inbox_t *box, batch_t *batch) {
  size_t tail = atomic_load_explicit(&box->tail, memory_order_relaxed);
  if (tail - atomic_load_explicit(&box->head, memory_order_acquire) == INBOX) return false;
  box->batches[tail % INBOX] = batch;
  atomic_store_explicit(&box->tail, tail + 1, memory_order_release);
  return true;
}

static batch_t *inbox_pop(inbox_t *box) {
  size_t head = atomic_load_explicit(&box->head, memory_order_relaxed);
  if (head == atomic_load_explicit(&box->tail, memory_order_acquire)) return NULL;
  batch_t *batch = box->batches[head % INBOX];
  atomic_store_explicit(&box->head, head + 1, memory_order_release);
  return batch;
}

static batch_t *make_batch(uint64_t *rng) {
  batch_t *batch = stress_malloc(sizeof *batch);
  for (int i = 0; i < BATCH; i++) {
    uint64_t r = bench_rand(rng);
    batch->sizes[i] = block_sizes[bench_below_lo(r, BLOCK_SIZES)];
    batch->tags[i] = r;
    batch->blocks[i] = stress_malloc(batch->sizes[i]);
    stress_stamp(batch->blocks[i], batch->sizes[i], batch->tags[i]);
  }
  return batch;
}

static void free_batch(batch_t *batch) {
  for (int i = 0; i < BATCH; i++) {
    stress_verify(batch->blocks[i], batch->sizes[i], batch->tags[i]);
    free(batch->blocks[i]);
  }
  free(batch);
}

/* A consumer frees every batch waiting for it; returns the blocks freed. */
static uint64_t drain(const worker_t *w) {
  uint64_t blocks = 0;
  for (int p = 0; p < w->producers; p++) {
    inbox_t *box = &w->inboxes[p * w->consumers + w->consumer];
    for (batch_t *batch; (batch = inbox_pop(box)) != NULL; blocks += BATCH) free_batch(batch);
  }
  return blocks;
}

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  batch_t *pending = NULL; /* made, not yet accepted by a consumer */
  int next = w->producer < 0 ? 0 : w->producer % w->consumers; /* the consumer to hand the next batch to */
  pthread_barrier_wait(w->sync);
  while (!atomic_load_explicit(&stop_requested, memory_order_relaxed)) {
    if (w->consumer >= 0) {
      uint64_t freed = drain(w);
      w->freed += freed;
      if (w->producer < 0) {
        if (freed == 0) sched_yield(); /* nothing to free: let the producers run */
        continue;
      }
    }
    if (pending == NULL) {
      pending = make_batch(&w->rng);
      if (w->corrupt) {
        stress_damage(pending->blocks[0]);
        w->corrupt = false;
      }
    }
    if (inbox_push(&w->inboxes[w->producer * w->consumers + next], pending)) pending = NULL;
    else sched_yield(); /* that consumer is behind: let it run */
    next = (next + 1) % w->consumers;
  }
  if (pending != NULL) free_batch(pending);
  pthread_barrier_wait(w->sync); /* nobody produces any more */
  if (w->consumer >= 0) drain(w);
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "xmalloc");
  double duration = BASE_SECONDS * args.scale;
  int n = args.threads;
  /* One thread plays both parts; otherwise half produce (at least one) and the rest consume. */
  int producers = n == 1 ? 1 : n / 2, consumers = n == 1 ? 1 : n - n / 2;
  worker_t *workers = calloc((size_t)n, sizeof *workers);
  pthread_t *threads = calloc((size_t)n, sizeof *threads);
  inbox_t *inboxes = aligned_alloc(64, (size_t)(producers * consumers) * sizeof *inboxes);
  if (workers == NULL || threads == NULL || inboxes == NULL) stress_fail("out of memory for %d threads", n);
  memset(inboxes, 0, (size_t)(producers * consumers) * sizeof *inboxes);
  pthread_barrier_t sync;
  pthread_barrier_init(&sync, NULL, (unsigned)n + 1);
  for (int t = 0; t < n; t++) {
    bool produces = n == 1 || t < producers, consumes = n == 1 || t >= producers;
    workers[t] = (worker_t){.inboxes = inboxes,
                            .producers = producers,
                            .consumers = consumers,
                            .producer = produces ? t : -1,
                            .consumer = consumes ? (n == 1 ? 0 : t - producers) : -1,
                            .rng = bench_mix64(args.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)t),
                            .corrupt = args.corrupt && t == 0,
                            .sync = &sync};
  }
  for (int t = 0; t < n; t++) stress_thread_start(&threads[t], worker_thread, &workers[t]);

  double start = stress_now(); /* before the release: the workers start at once */
  pthread_barrier_wait(&sync);
  stress_sleep(duration);
  atomic_store(&stop_requested, true);
  double elapsed = stress_now() - start;
  pthread_barrier_wait(&sync);

  uint64_t freed = 0;
  for (int t = 0; t < n; t++) {
    stress_thread_join(threads[t]);
    freed += workers[t].freed;
  }
  pthread_barrier_destroy(&sync);
  free(inboxes);
  free(threads);
  free(workers);
  printf("xmalloc: %d threads (%d allocating, %d freeing), %.2f s, %" PRIu64 " blocks allocated and freed, "
         "throughput %.0f blocks/s\n",
         n, producers, consumers, elapsed, freed, (double)freed / elapsed);
  return 0;
}
