/* ----------------------------------------------------------------------------
 * cache_thrash.c: active false sharing, after Hoard's cache-thrash (Berger,
 * McKinley, Blumofe and Wilson, "Hoard: a scalable memory allocator for
 * multithreaded applications", ASPLOS 2000).
 *
 * Models: threads that each allocate small objects of their own and write
 * them hard. THREADS workers start together; each OBJECTS / THREADS times
 * allocates a small object, writes it PASSES times and frees it. An allocator
 * that serves concurrent threads from one heap places their objects side by
 * side, in one cache line, and every write moves the line between cores; an
 * allocator with a heap (or a cache) per thread does not.
 *
 * Measures: time. It stops on work (the same objects and writes on every
 * allocator): compare the wall time. It prints its own elapsed time for the
 * workers' part.
 *
 * Invariants:
 * - each object is written only by the thread that allocated it, and its last
 *   pass is checked before its free;
 * - the workers start together (a barrier), so they share the machine for
 *   the whole run; the work is fixed by THREADS and SCALE, not by timing.
 * ------------------------------------------------------------------------- */
#include "stress/stress.h"

#define OBJECT_SIZE 8       /* bytes: several objects per cache line */
#define PASSES 1000         /* writes of each object before it is freed */
#define BASE_OBJECTS 100000 /* objects allocated by all workers together at scale 1 */

typedef struct worker {
  pthread_barrier_t *start;
  uint64_t objects; /* allocations of this worker */
  bool corrupt;     /* damage the first object between its writes and its check */
} worker_t;

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(w->start);
  for (uint64_t i = 0; i < w->objects; i++) {
    void *object = stress_malloc(OBJECT_SIZE);
    stress_write_object(object, OBJECT_SIZE, PASSES);
    if (w->corrupt && i == 0) stress_damage(object);
    stress_check_object(object, OBJECT_SIZE, PASSES);
    free(object);
  }
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "cache-thrash");
  uint64_t objects = stress_scaled(BASE_OBJECTS, args.scale);
  worker_t workers[STRESS_MAX_THREADS];
  pthread_t threads[STRESS_MAX_THREADS];
  pthread_barrier_t start;
  pthread_barrier_init(&start, NULL, (unsigned)args.threads + 1);
  for (int t = 0; t < args.threads; t++) {
    uint64_t share = objects / (uint64_t)args.threads + ((uint64_t)t < objects % (uint64_t)args.threads);
    workers[t] = (worker_t){.start = &start, .objects = share, .corrupt = args.corrupt && t == 0};
    stress_thread_start(&threads[t], worker_thread, &workers[t]);
  }
  double begin = stress_now();
  pthread_barrier_wait(&start);
  for (int t = 0; t < args.threads; t++) stress_thread_join(threads[t]);
  double elapsed = stress_now() - begin;
  pthread_barrier_destroy(&start);
  printf("cache-thrash: %d threads, %" PRIu64 " objects of %d bytes x %d passes, %.3f s\n", args.threads, objects,
         OBJECT_SIZE, PASSES, elapsed);
  return 0;
}
