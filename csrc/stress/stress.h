/* ----------------------------------------------------------------------------
 * stress.h: what the multi-threaded stress programs share (header only; each
 * program is one file, csrc/stress/<name>.c, built into its own executable).
 *
 * Command line, the same for every program:
 *
 *   NAME THREADS SCALE [--seed N] [--corrupt]
 *
 * THREADS (1-256) is the number of worker threads; SCALE (> 0, a decimal) multiplies the
 * program's default amount of work, or its default duration for a program that stops on
 * time. --seed (default 1) fixes every random choice: with the same seed each thread makes
 * the same sequence of operations (sizes, slots) on every allocator; how far a program that
 * stops on time gets, and how the threads interleave, is not fixed. --corrupt overwrites one
 * byte inside one live block on purpose, to prove that the program's own check catches it.
 *
 * Every block a program allocates carries a stamp (stress_stamp: a word derived from a
 * per-block tag, at its head) that is checked just before the block is freed
 * (stress_verify). An allocator that hands a block out twice, or writes into a block it
 * handed out, fails the check.
 *
 * Exit status: 0 done; 1 a check failed (corruption) or the system refused a thread or
 * memory, with one line on stderr saying which; 2 a bad command line, with the usage.
 * The last line on stdout is the program's figure of merit.
 * ------------------------------------------------------------------------- */
#ifndef AF_STRESS_H
#define AF_STRESS_H

#include "engine/rng.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STRESS_MAX_THREADS 256
#define STRESS_EXIT_FAILED 1 /* a check failed, or no memory / no thread */
#define STRESS_EXIT_USAGE 2

typedef struct stress_args {
  int threads;   /* worker threads, 1..STRESS_MAX_THREADS */
  double scale;  /* multiplies the default work (or duration), > 0 */
  uint64_t seed; /* every random choice derives from it */
  bool corrupt;  /* damage one live block on purpose (tests the checks) */
} stress_args_t;

static const char *stress_name = "stress"; /* the program, for messages */

/* ----------------------------------------------------------------------------
 * Failing
 * ------------------------------------------------------------------------- */

/* One line on stderr, then exit 1. Used from any thread: exit() flushes stdout,
   and no partial figure of merit is printed before it. */
__attribute__((noreturn, format(printf, 1, 2))) static inline void stress_fail(const char *fmt, ...) {
  char message[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(message, sizeof message, fmt, ap);
  va_end(ap);
  fprintf(stderr, "%s: %s\n", stress_name, message);
  exit(STRESS_EXIT_FAILED);
}

__attribute__((noreturn, format(printf, 1, 2))) static inline void stress_usage(const char *fmt, ...) {
  va_list ap;
  fprintf(stderr, "%s: ", stress_name);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fprintf(stderr, "\nusage: %s THREADS SCALE [--seed N] [--corrupt]\n", stress_name);
  exit(STRESS_EXIT_USAGE);
}

/* ----------------------------------------------------------------------------
 * Command line
 * ------------------------------------------------------------------------- */

static inline stress_args_t stress_parse_args(int argc, char **argv, const char *name) {
  stress_name = name;
  stress_args_t args = {.threads = 0, .scale = 0, .seed = 1, .corrupt = false};
  int positional = 0;
  for (int i = 1; i < argc; i++) {
    const char *arg = argv[i];
    char *end = NULL;
    errno = 0;
    if (strcmp(arg, "--corrupt") == 0) {
      args.corrupt = true;
    } else if (strcmp(arg, "--seed") == 0) {
      if (i + 1 == argc) stress_usage("--seed needs a value");
      args.seed = strtoull(argv[++i], &end, 10);
      if (errno != 0 || *end != '\0' || argv[i][0] == '-') stress_usage("--seed %s: not an unsigned integer", argv[i]);
    } else if (arg[0] == '-' && arg[1] == '-') {
      stress_usage("unknown option %s", arg);
    } else if (positional == 0) {
      long threads = strtol(arg, &end, 10);
      if (errno != 0 || *end != '\0' || threads < 1 || threads > STRESS_MAX_THREADS)
        stress_usage("THREADS %s: give a whole number from 1 to %d", arg, STRESS_MAX_THREADS);
      args.threads = (int)threads;
      positional++;
    } else if (positional == 1) {
      double scale = strtod(arg, &end);
      if (errno != 0 || *end != '\0' || !(scale > 0) || scale > 1e6) stress_usage("SCALE %s: give a number > 0", arg);
      args.scale = scale;
      positional++;
    } else {
      stress_usage("unexpected argument %s", arg);
    }
  }
  if (positional < 2) stress_usage("THREADS and SCALE are required");
  return args;
}

/* max(1, round(base * scale)): every scaled count does at least one unit of work. */
static inline uint64_t stress_scaled(double base, double scale) {
  double n = base * scale + 0.5;
  return n < 1 ? 1 : (uint64_t)n;
}

/* ----------------------------------------------------------------------------
 * Time, threads, memory
 * ------------------------------------------------------------------------- */

static inline double stress_now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static inline void stress_sleep(double seconds) {
  struct timespec ts = {.tv_sec = (time_t)seconds, .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9)};
  while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
  }
}

static inline void stress_thread_start(pthread_t *thread, void *(*body)(void *), void *arg) {
  int err = pthread_create(thread, NULL, body, arg);
  if (err != 0) stress_fail("cannot start a thread: %s", strerror(err));
}

static inline void stress_thread_join(pthread_t thread) {
  int err = pthread_join(thread, NULL);
  if (err != 0) stress_fail("cannot join a thread: %s", strerror(err));
}

/* malloc, the allocator under test (preloaded or glibc's); NULL is a failure. */
static inline void *stress_malloc(size_t size) {
  void *p = malloc(size);
  if (p == NULL) stress_fail("out of memory: malloc(%zu) returned NULL", size);
  return p;
}

/* ----------------------------------------------------------------------------
 * Block stamps
 *
 * One word at the head of the block (its first `size` bytes if it is smaller): a function
 * of the block's tag. The head is where a block handed out twice is written again, and
 * where an allocator that mistook a live block for a free one writes its free-list link;
 * it is also the cache line the allocator's own free touches, so the check costs every
 * allocator the same few instructions and no extra cache miss. (Stamping three words
 * across the block cost larson half its throughput on every allocator and shrank the
 * differences between them: 1.3-1.4x over glibc with the head alone, 0.9-1.3x with three.)
 * ------------------------------------------------------------------------- */

static inline void stress_stamp(void *block, size_t size, uint64_t tag) {
  uint64_t word = bench_mix64(tag);
  memcpy(block, &word, size < 8 ? size : 8);
}

/* Fails the program (exit 1) unless `block` still holds the stamp of `tag`. */
static inline void stress_verify(const void *block, size_t size, uint64_t tag) {
  uint64_t expected = bench_mix64(tag), found = expected;
  memcpy(&found, block, size < 8 ? size : 8);
  if (found != expected)
    stress_fail("corrupted block %p (%zu bytes): its first word is %016" PRIx64 ", expected %016" PRIx64, block, size,
                found, expected);
}

/* --corrupt: flip one stamped byte of a block, inside its bounds (no allocator metadata is
   touched; only the program's own check can notice). */
static inline void stress_damage(void *block) { ((unsigned char *)block)[0] ^= 0x5a; }

#endif /* AF_STRESS_H */
