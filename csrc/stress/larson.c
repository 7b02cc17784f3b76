/* ----------------------------------------------------------------------------
 * larson.c: a long-running server, after Larson and Krishnan's benchmark
 * ("Memory allocation for long-running server applications", ISMM 1998).
 *
 * Models: a server whose requests are served by short-lived threads. Each of
 * THREADS lanes owns an array of SLOTS live blocks (8-1023 bytes, uniform).
 * The lane's thread repeatedly picks a random slot, frees its block and
 * allocates a new one of a random size. After ROUND_OPS replacements it starts
 * a new thread, hands it the array and exits: the successor frees blocks that
 * its predecessor allocated (the cross-thread "bleeding" the paper observed in
 * servers), and every allocator must cope with threads that come and go while
 * their blocks live on. The main thread allocates the first blocks of every
 * lane, so even the first round frees foreign blocks.
 *
 * Measures: throughput. It stops on time, not on work: it runs for SCALE x 1 s
 * and prints "throughput N ops/s" (one op = one free + one malloc), summed
 * over the lanes. Its wall time is the same under every allocator; compare the
 * throughput.
 *
 * Invariants:
 * - a lane belongs to exactly one running thread at a time: the successor is
 *   started only after the lane's last write, and joins its predecessor first;
 * - every block is stamped when allocated and verified just before it is freed
 *   (by the lane's later thread, or by the main thread at the end), so blocks
 *   the allocator lets overlap fail the run;
 * - each lane's sequence of sizes and slots depends only on the seed and the
 *   lane's index (its generator travels with the array), not on timing.
 * ------------------------------------------------------------------------- */
#include "stress/stress.h"

#include <stdatomic.h>

#define SLOTS 4096            /* live blocks per lane */
#define MIN_SIZE 8            /* block sizes: uniform in [MIN_SIZE, MAX_SIZE) */
#define MAX_SIZE 1024
#define ROUND_OPS (8 * SLOTS) /* replacements before the lane moves to a new thread (~2 ms) */
#define BASE_SECONDS 1.0      /* the run's duration at scale 1 */

typedef struct slot {
  void *block;
  uint64_t tag; /* the block's stamp */
  uint32_t size;
} slot_t;

typedef struct lane {
  slot_t *slots;         /* SLOTS live blocks */
  uint64_t rng;          /* travels with the slots: the lane's work is the same on every run */
  uint64_t ops;          /* replacements done before the stop */
  uint64_t rounds;       /* threads the lane has had */
  pthread_t predecessor; /* joined by the lane's next thread (valid iff rounds > 0) */
  pthread_t last;        /* the lane's final thread, set before it reports done */
} lane_t;

static atomic_bool stop_requested;
static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;
static int lanes_done; /* guarded by done_lock */

static void fill_slot(slot_t *slot, uint64_t *rng) {
  uint64_t r = bench_rand(rng);
  slot->size = (uint32_t)(MIN_SIZE + bench_below_hi(r, MAX_SIZE - MIN_SIZE));
  slot->tag = bench_rand(rng);
  slot->block = stress_malloc(slot->size);
  stress_stamp(slot->block, slot->size, slot->tag);
}

static void release_slot(slot_t *slot) {
  stress_verify(slot->block, slot->size, slot->tag);
  free(slot->block);
}

/* One thread of a lane: replace blocks for a round, then pass the lane on. */
static void *lane_thread(void *arg) {
  lane_t *lane = arg;
  if (lane->rounds > 0) stress_thread_join(lane->predecessor);
  lane->rounds++;
  uint64_t i = 0;
  for (; i < ROUND_OPS && !atomic_load_explicit(&stop_requested, memory_order_relaxed); i++) {
    slot_t *slot = &lane->slots[bench_below_lo(bench_rand(&lane->rng), SLOTS)];
    release_slot(slot);
    fill_slot(slot, &lane->rng);
  }
  lane->ops += i;
  if (i == ROUND_OPS && !atomic_load_explicit(&stop_requested, memory_order_relaxed)) {
    lane->predecessor = pthread_self();
    pthread_t successor;
    stress_thread_start(&successor, lane_thread, lane);
    return NULL; /* the lane is the successor's now: not touched again here */
  }
  pthread_mutex_lock(&done_lock);
  lane->last = pthread_self();
  lanes_done++;
  pthread_cond_signal(&done_cond);
  pthread_mutex_unlock(&done_lock);
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "larson");
  double duration = BASE_SECONDS * args.scale;
  lane_t *lanes = calloc((size_t)args.threads, sizeof *lanes);
  if (lanes == NULL) stress_fail("out of memory for %d lanes", args.threads);
  for (int t = 0; t < args.threads; t++) {
    lanes[t].rng = bench_mix64(args.seed * 0x9e3779b97f4a7c15ULL + (uint64_t)t);
    lanes[t].slots = stress_malloc(SLOTS * sizeof(slot_t));
    for (int s = 0; s < SLOTS; s++) fill_slot(&lanes[t].slots[s], &lanes[t].rng);
  }
  if (args.corrupt) stress_damage(lanes[0].slots[0].block);

  double start = stress_now();
  for (int t = 0; t < args.threads; t++) {
    pthread_t first;
    stress_thread_start(&first, lane_thread, &lanes[t]);
  }
  stress_sleep(duration);
  atomic_store(&stop_requested, true);
  double elapsed = stress_now() - start;

  pthread_mutex_lock(&done_lock);
  while (lanes_done < args.threads) pthread_cond_wait(&done_cond, &done_lock);
  pthread_mutex_unlock(&done_lock);
  uint64_t ops = 0, rounds = 0;
  for (int t = 0; t < args.threads; t++) {
    stress_thread_join(lanes[t].last);
    ops += lanes[t].ops;
    rounds += lanes[t].rounds;
    for (int s = 0; s < SLOTS; s++) release_slot(&lanes[t].slots[s]);
    free(lanes[t].slots);
  }
  free(lanes);
  printf("larson: %d threads, %.2f s, %" PRIu64 " ops in %" PRIu64 " thread rounds, throughput %.0f ops/s\n",
         args.threads, elapsed, ops, rounds, (double)ops / elapsed);
  return 0;
}
