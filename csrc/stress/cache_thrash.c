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
#include "stress/false_sharing.h"

typedef struct worker {
  crew_t *crew;
  uint64_t objects; /* allocations of this worker */
  bool corrupt;     /* damage the first object between its writes and its check */
} worker_t;

static void *worker_thread(void *arg) {
  worker_t *w = arg;
  pthread_barrier_wait(&w->crew->start);
  churn_objects(w->objects, w->corrupt);
  return NULL;
}

int main(int argc, char **argv) {
  stress_args_t args = stress_parse_args(argc, argv, "cache-thrash");
  uint64_t objects = stress_scaled(BASE_OBJECTS, args.scale);
  static crew_t crew;
  worker_t workers[STRESS_MAX_THREADS];
  for (int t = 0; t < args.threads; t++) {
    workers[t] = (worker_t){.crew = &crew, .objects = share_of(objects, args.threads, t), .corrupt = args.corrupt};
    args.corrupt = false; /* only the first worker's first object */
  }
  crew_start(&crew, args.threads, worker_thread, workers, sizeof workers[0]);
  crew_finish(&crew, objects);
  return 0;
}
