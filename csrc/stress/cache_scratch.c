/* ----------------------------------------------------------------------------
 * cache_scratch.c: passive false sharing, after Hoard's cache-scratch
 * (Berger, McKinley, Blumofe and Wilson, "Hoard: a scalable memory allocator
 * for multithreaded applications", ASPLOS 2000).
 *
 * Models: objects that an allocator placed side by side for one thread and
 * then hands to several. The main thread allocates THREADS small objects back
 * to back (likely in one cache line) and gives one to each worker. Each worker
 * frees the object it was given, then OBJECTS / THREADS times allocates an
 * object of the same size, writes it PASSES times and frees it. An allocator
 * that recycles a freed block for the thread that freed it keeps giving each
 * worker a block in the line the others write: every write then moves the
 * line between cores. An allocator that returns a block to the heap it came
 * from does not.
 *
 * Measures: time. It stops on work (the same objects and writes on every
 * allocator): compare the wall time. It prints its own elapsed time for the
 * workers' part.
 *
 * Invariants:
 * - each object is written only by the thread that allocated (or was given)
 *   it; each given object is stamped by the main thread and verified by its
 *   worker before the free; each worker object's last pass is checked before
 *   its free;
 * - the workers start together (a barrier), so they share the machine for
 *   the whole run; the work is fixed by THREADS and SCALE, not by timing.
 * ------------------------------------------------------------------------- */
#include "stress/false_sharing.h"

typedef struct worker {
  crew_t *crew;
  void *given; /* allocated by the main thread, freed by this worker */
  uint64_t given_tag;
  uint64_t objects; /* allocations of this worker */
} worker_t;

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(&w->crew->start);
  stress_verify(w->given, OBJECT_SIZE, w->given_tag);
  free(w->given);
  churn_objects(w->objects, false);
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "cache-scratch");
  uint64_t objects = stress_scaled(BASE_OBJECTS, args.scale);
  uint64_t rng = bench_mix64(args.seed);
  static crew_t crew;
  worker_t workers[STRESS_MAX_THREADS];
  /* Back to back, before any worker runs: the given objects likely share cache lines. */
  for (int t = 0; t < args.threads; t++) {
    workers[t] = (worker_t){.crew = &crew, .given = stress_malloc(OBJECT_SIZE), .given_tag = bench_rand(&rng),
                            .objects = share_of(objects, args.threads, t)};
    stress_stamp(workers[t].given, OBJECT_SIZE, workers[t].given_tag);
  }
  if (args.corrupt) stress_damage(workers[0].given);
  crew_start(&crew, args.threads, worker_thread, workers, sizeof workers[0]);
  crew_finish(&crew, objects);
  return 0;
}
