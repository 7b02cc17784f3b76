/* ----------------------------------------------------------------------------
 * false_sharing.h: what the two false-sharing programs share (cache_scratch.c,
 * cache_thrash.c, after Hoard's cache-scratch and cache-thrash). They differ
 * only in where each thread's first object comes from; the rest is here.
 *
 * An object's work: PASSES passes over its OBJECT_SIZE bytes, pass p storing
 * (p + k) into byte k and reading it back through a volatile pointer, so that
 * every pass really goes to the cache line (as the published tests do); then
 * the last pass's pattern is checked before the object is freed.
 *
 * The crew: the worker threads start their work together (a barrier they pass
 * with the main thread), so the timed part begins when all of them run and
 * they share the machine for the whole of it.
 * ------------------------------------------------------------------------- */
#ifndef AF_STRESS_FALSE_SHARING_H
#define AF_STRESS_FALSE_SHARING_H

#include "stress/stress.h"

#define OBJECT_SIZE 8       /* bytes: several objects per cache line */
#define PASSES 1000         /* writes of each object before it is freed */
#define BASE_OBJECTS 100000 /* objects allocated by all workers together at scale 1 */

static inline void write_object(void *object) {
  volatile unsigned char *bytes = object;
  for (unsigned p = 0; p < PASSES; p++) {
    for (unsigned k = 0; k < OBJECT_SIZE; k++) {
      bytes[k] = (unsigned char)(p + k);
      (void)bytes[k]; /* a volatile read: performed, never folded into the store */
    }
  }
}

/* Fails the program (exit 1) unless `object` holds the last pass of write_object. */
static inline void check_object(const void *object) {
  const unsigned char *bytes = object;
  for (unsigned k = 0; k < OBJECT_SIZE; k++) {
    unsigned char expected = (unsigned char)(PASSES - 1 + k);
    if (bytes[k] != expected)
      stress_fail("corrupted object %p: byte %u is %u after the last pass, expected %u", object, k, bytes[k], expected);
  }
}

/* A worker's work: `objects` times allocate, write, check and free an object. `corrupt`
   damages the first object between its writes and its check (--corrupt). */
static inline void churn_objects(uint64_t objects, bool corrupt) {
  for (uint64_t i = 0; i < objects; i++) {
    void *object = stress_malloc(OBJECT_SIZE);
    write_object(object);
    if (corrupt && i == 0) stress_damage(object);
    check_object(object);
    free(object);
  }
}

/* Worker t's part of the objects: equal shares, the first ones one more if they do not divide. */
static inline uint64_t share_of(uint64_t objects, int threads, int t) {
  return objects / (uint64_t)threads + ((uint64_t)t < objects % (uint64_t)threads);
}

typedef struct crew {
  pthread_t threads[STRESS_MAX_THREADS];
  pthread_barrier_t start; /* the workers and the main thread */
  int size;
} crew_t;

/* Starts worker t on body(args + t * arg_size); each worker must pass crew->start first. */
static inline void crew_start(crew_t *crew, int size, void *(*body)(void *), void *args, size_t arg_size) {
  crew->size = size;
  pthread_barrier_init(&crew->start, NULL, (unsigned)size + 1);
  for (int t = 0; t < size; t++) stress_thread_start(&crew->threads[t], body, (char *)args + (size_t)t * arg_size);
}

/* Releases the workers, waits for all of them and prints the figure of merit (elapsed). */
static inline void crew_finish(crew_t *crew, uint64_t objects) {
  double begin = stress_now(); /* before the release: the workers may finish before this thread runs again */
  pthread_barrier_wait(&crew->start);
  for (int t = 0; t < crew->size; t++) stress_thread_join(crew->threads[t]);
  double elapsed = stress_now() - begin;
  pthread_barrier_destroy(&crew->start);
  printf("%s: %d threads, %" PRIu64 " objects of %d bytes x %d passes, %.3f s\n", stress_name, crew->size, objects,
         OBJECT_SIZE, PASSES, elapsed);
}

#endif /* AF_STRESS_FALSE_SHARING_H */
