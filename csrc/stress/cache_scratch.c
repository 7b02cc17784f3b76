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
#include "stress/stress.h"

#define OBJECT_SIZE 8       /* bytes: several objects per cache line */
#define PASSES 1000         /* writes of each object before it is freed */
#define BASE_OBJECTS 100000 /* objects allocated by all workers together at scale 1 */

typedef struct worker {
  pthread_barrier_t *start;
  void *given;       /* allocated by the main thread, freed by this worker */
  uint64_t given_tag;
  uint64_t objects;  /* allocations of this worker */
} worker_t;

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(w->start);
  stress_verify(w->given, OBJECT_SIZE, w->given_tag);
  free(w->given);
  for (uint64_t i = 0; i < w->objects; i++) {
    void *object = stress_malloc(OBJECT_SIZE);
    stress_write_object(object, OBJECT_SIZE, PASSES);
    stress_check_object(object, OBJECT_SIZE, PASSES);
    free(object);
  }
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "cache-scratch");
  uint64_t objects = stress_scaled(BASE_OBJECTS, args.scale);
  uint64_t rng = bench_mix64(args.seed);
  worker_t workers[STRESS_MAX_THREADS];
  pthread_t threads[STRESS_MAX_THREADS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)args.threads + 1);
  for (int t = 0; t < args.threads; t++) {
    /* Every worker gets its share; the first ones one more if it does not divide. */
    uint64_t share = objects / (uint64_t)args.threads + ((uint64_t)t < objects % (uint64_t)args.threads);
    workers[t] = (worker_t){.start = &start, .given = stress_malloc(OBJECT_SIZE), .given_tag = bench_rand(&rng),
                            .objects = share};
    stress_stamp(workers[t].given, OBJECT_SIZE, workers[t].given_tag);
  }
  if (args.corrupt) stress_damage(workers[0].given);
  for (int t = 0; t < args.threads; t++) stress_thread_start(&threads[t], worker_thread, &workers[t]);
  double begin = stress_now();
  pthread_barrier_wait(&start);
  for (int t = 0; t < args.threads; t++) stress_thread_join(threads[t]);
  double elapsed = stress_now() - begin;
  pthread_barrier_destroy(&start);
  printf("cache-scratch: %d threads, %" PRIu64 " objects of %d bytes x %d passes, %.3f s\n", args.threads, objects,
         OBJECT_SIZE, PASSES, elapsed);
  return 0;
}
