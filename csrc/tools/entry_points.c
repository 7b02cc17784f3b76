/* ----------------------------------------------------------------------------
 * entry_points.c: measures every candidate of tools/entry_points.h, the
 * evidence behind the table _af_entry_points in syslib.c.
 *
 *   build/tools/entry_points [--size N] [--ops N] [--rounds N] [--only LIB:ALLOC/FREE]
 *   build/tools/entry_points --list      (the candidates' LIB:ALLOC/FREE names)
 *   build/tools/entry_points --loop direct|engine --library LIB [--size N] [--ops N] [--mode 0|1|2]
 *
 * --loop runs the calibration's two loops once (af_calibrate_direct, or
 * af_bench_run on fixed-N): for callgrind, the instructions the wrapper adds
 * (`make calibrate-callgrind`).
 *
 * All candidates run in this one process, interleaved: each round runs
 * every candidate once, in an order rotated by one per round, so a burst of
 * machine noise hits them alike; the figure is the median over rounds of ns
 * per pair. A warm-up pass runs first. --only runs one candidate once and
 * prints nothing timed: for `valgrind --tool=callgrind`, where two runs with
 * different --ops give the instructions per pair by difference (`make
 * entry-points-callgrind`).
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "syslib.h"
#include "tools/entry_points.h"

#include <dlfcn.h>
#include <stdlib.h>
#include <time.h>

#define MAX_ROUNDS 101

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int compare_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

typedef struct bound {
  const ep_candidate *candidate;
  void *alloc, *free;
  bool chosen;                /* the pair _af_entry_points names */
  double samples[MAX_ROUNDS];
} bound;

/* The candidate's symbols in its library's handle; false when the library is
   unavailable here (the reason is printed once). */
static bool bind(const ep_candidate *c, bound *out) {
  af_direct_entry lib;
  af_error err = {0};
  if (_af_syslib_direct(c->library, &lib, &err) != AF_OK) {
    fprintf(stderr, "skipping %s: %s\n", c->library, err.message);
    return false;
  }
  out->candidate = c;
  out->alloc = dlsym(lib.handle, c->alloc);
  out->free = dlsym(lib.handle, c->free);
  if (out->alloc == NULL || out->free == NULL) {
    fprintf(stderr, "skipping %s %s/%s: not exported\n", c->library, c->alloc, c->free);
    return false;
  }
  out->chosen = strcmp(lib.choice->alloc, c->alloc) == 0 && strcmp(lib.choice->free, c->free) == 0;
  return true;
}

static double run_once(const bound *b, size_t size, uint64_t ops) {
  direct_state st = {.rng = bench_mix64(1)};
  uint64_t t0 = now_ns();
  uint64_t done = b->candidate->loop(b->alloc, b->free, size, ops, &st);
  uint64_t t1 = now_ns();
  if (done != ops) {
    fprintf(stderr, "%s %s/%s: allocation failed\n", b->candidate->library, b->candidate->alloc,
            b->candidate->free);
    exit(1);
  }
  return (double)(t1 - t0) / (double)ops;
}

/* One of the calibration's loops, once, untimed (for callgrind). */
static int run_calibration_loop(const char *loop, const char *library, size_t size, uint64_t ops, int mode) {
  char workload[32];
  snprintf(workload, sizeof workload, "fixed-%zu", size);
  af_bench_result r;
  af_error err = {0};
  int status;
  if (library != NULL && strcmp(loop, "direct") == 0) {
    status = af_calibrate_direct(library, workload, ops, 0, &r, &err);
  } else if (library != NULL && strcmp(loop, "engine") == 0) {
    af_bench_config config = {.workload = workload, .allocator = library, .ops = ops, .mode = mode};
    status = af_bench_run(&config, &r, &err);
  } else {
    fprintf(stderr, "--loop takes direct or engine, with --library LIB\n");
    return 2;
  }
  if (status != AF_OK) fprintf(stderr, "%s\n", err.message);
  return status == AF_OK ? 0 : 1;
}

static int usage(const char *argv0) {
  fprintf(stderr,
          "usage: %s [--size N] [--ops N] [--rounds N (1-%d)] [--only LIB:ALLOC/FREE] | --list | "
          "--loop direct|engine --library LIB\n",
          argv0,
          MAX_ROUNDS);
  return 2;
}

int main(int argc, char **argv) {
  size_t size = 48;
  uint64_t ops = 2000000;
  int rounds = 15;
  const char *only = NULL, *loop = NULL, *library = NULL;
  int mode = AF_BENCH_MODE_AUTO;
  if (argc == 2 && strcmp(argv[1], "--list") == 0) {
    for (size_t i = 0; i < EP_CANDIDATE_COUNT; i++)
      printf("%s:%s/%s\n", ep_candidates[i].library, ep_candidates[i].alloc, ep_candidates[i].free);
    return 0;
  }
  for (int i = 1; i < argc; i++) {
    if (i + 1 >= argc) return usage(argv[0]);
    if (strcmp(argv[i], "--size") == 0) size = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--ops") == 0) ops = strtoull(argv[++i], NULL, 10);
    else if (strcmp(argv[i], "--rounds") == 0) rounds = atoi(argv[++i]);
    else if (strcmp(argv[i], "--only") == 0) only = argv[++i];
    else if (strcmp(argv[i], "--loop") == 0) loop = argv[++i];
    else if (strcmp(argv[i], "--library") == 0) library = argv[++i];
    else if (strcmp(argv[i], "--mode") == 0) mode = atoi(argv[++i]);
    else return usage(argv[0]);
  }
  if (size < 16 || ops == 0 || rounds < 1 || rounds > MAX_ROUNDS) return usage(argv[0]);

  if (loop != NULL) return run_calibration_loop(loop, library, size, ops, mode);

  static bound all[EP_CANDIDATE_COUNT];
  size_t count = 0;
  for (size_t i = 0; i < EP_CANDIDATE_COUNT; i++) {
    const ep_candidate *c = &ep_candidates[i];
    if (only != NULL) {
      char name[128];
      snprintf(name, sizeof name, "%s:%s/%s", c->library, c->alloc, c->free);
      if (strcmp(name, only) != 0) continue;
    }
    if (bind(c, &all[count])) count++;
  }
  if (count == 0) {
    fprintf(stderr, "no candidate to run%s%s\n", only ? " matches " : "", only ? only : "");
    return 2;
  }
  if (only != NULL) {
    (void)run_once(&all[0], size, ops);
    return 0;
  }
  for (size_t k = 0; k < count; k++) (void)run_once(&all[k], size, ops / 4); /* warm-up */
  for (int r = 0; r < rounds; r++)
    for (size_t k = 0; k < count; k++) {
      bound *b = &all[(k + (size_t)r) % count];
      b->samples[r] = run_once(b, size, ops);
    }
  printf("%-9s %-28s %10s %10s %10s  (%zu B pairs, %llu ops, %d rounds)\n", "library", "alloc/free", "median",
         "min", "max", size, (unsigned long long)ops, rounds);
  for (size_t k = 0; k < count; k++) {
    bound *b = &all[k];
    qsort(b->samples, (size_t)rounds, sizeof b->samples[0], compare_double);
    char pair[96];
    snprintf(pair, sizeof pair, "%s/%s", b->candidate->alloc, b->candidate->free);
    printf("%-9s %-28s %8.2f ns %7.2f ns %7.2f ns%s\n", b->candidate->library, pair, b->samples[rounds / 2],
           b->samples[0], b->samples[rounds - 1], b->chosen ? "  <- chosen" : "");
  }
  return 0;
}
