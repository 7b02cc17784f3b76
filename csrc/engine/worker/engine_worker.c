/* ----------------------------------------------------------------------------
 * engine_worker.c: one engine run in a fresh process, one JSON line out.
 *
 *   _engine_worker --allocator NAME --workload W --ops N --time-budget-ns T
 *                  --seed S --mode auto|free|arena [--direct]
 *
 * The harness (allocffi/harness/core/children.py) starts one of these per
 * (allocator, workload, repeat) of the engine's own workloads. It does what
 * `python -m allocffi.harness.bench.worker` does for them, without an interpreter:
 * a Python child spends ~70 ms starting up and importing before the run, ten
 * times a typical run's measured loop, and `make bench` makes ~1,500 of them.
 * The Python worker stays for a user's workload specs and for --probe.
 *
 * Output: the fields of af_bench_result under their C names ("stats" nested),
 * plus "process_peak_rss_bytes" (VmHWM, reset just before the run), exactly
 * the keys the Python worker prints (tests/test_engine_worker.py compares them
 * with cffi's view of the struct). The harness turns the numeric touch, shared
 * and mode fields into names (worker.describe_record). On refusal it prints
 * {"error": "[STATUS] message"} and exits 1; on a usage error it exits 2.
 *
 * Invariant: nothing runs between the start of the process and the engine
 * run but argument parsing; the parent supplies GLIBC_TUNABLES (jemalloc).
 * ------------------------------------------------------------------------- */
#include "afbench.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * The JSON line
 * ------------------------------------------------------------------------- */

/* One line per field, in struct order: the list the test checks against cffi. */
#define STATS_FIELDS(X)                                                                                   \
  X(allocs) X(frees) X(reallocs) X(failures) X(resets) X(blocks_in_use) X(bytes_in_use) X(peak_bytes_in_use) \
  X(os_bytes) X(chunks) X(capacity_bytes) X(slabs) X(oversize_allocs) X(oversize_in_use) X(os_maps)          \
  X(os_unmaps) X(cache_hits) X(cache_misses) X(cached_bytes) X(purged_bytes)

static void print_stats(const af_stats *s) {
  const char *sep = "";
  fputs("{", stdout);
#define PRINT_STAT(field)                                              \
  printf("%s\"" #field "\": %" PRIu64, sep, (uint64_t)s->field); \
  sep = ", ";
  STATS_FIELDS(PRINT_STAT)
#undef PRINT_STAT
  fputs("}", stdout);
}

/* The process's VmHWM in bytes, or 0 when /proc cannot say. */
static uint64_t process_peak_rss(void) {
  FILE *f = fopen("/proc/self/status", "r");
  if (f == NULL) return 0;
  char line[256];
  uint64_t kib = 0;
  while (fgets(line, sizeof line, f) != NULL) {
    if (strncmp(line, "VmHWM:", 6) == 0) {
      kib = strtoull(line + 6, NULL, 10);
      break;
    }
  }
  fclose(f);
  return kib * 1024;
}

/* Starts VmHWM afresh so the peak is the run's (Linux >= 4.0; best effort). */
static void reset_peak_rss(void) {
  FILE *f = fopen("/proc/self/clear_refs", "w");
  if (f == NULL) return;
  fputs("5", f);
  fclose(f);
}

static void print_result(const af_bench_result *r, uint64_t process_peak) {
  printf("{\"elapsed_ns\": %" PRIu64 ", \"ops\": %" PRIu64 ", \"ns_per_op\": %.17g, \"checksum\": %" PRIu64
         ", \"bytes_requested\": %" PRIu64 ", \"threads\": %" PRIu32 ", \"stats\": ",
         r->elapsed_ns, r->ops, r->ns_per_op, r->checksum, r->bytes_requested, r->threads);
  print_stats(&r->stats);
  printf(", \"rss_before_bytes\": %" PRIu64 ", \"rss_after_bytes\": %" PRIu64 ", \"peak_rss_bytes\": %" PRIu64
         ", \"minor_faults\": %" PRIu64 ", \"major_faults\": %" PRIu64 ", \"user_ns\": %" PRIu64
         ", \"sys_ns\": %" PRIu64 ", \"touch\": %" PRIu32 ", \"shared\": %" PRIu32 ", \"mode\": %d",
         r->rss_before_bytes, r->rss_after_bytes, r->peak_rss_bytes, r->minor_faults, r->major_faults, r->user_ns,
         r->sys_ns, r->touch, r->shared, r->mode);
  if (process_peak != 0) printf(", \"process_peak_rss_bytes\": %" PRIu64 "}\n", process_peak);
  else fputs(", \"process_peak_rss_bytes\": null}\n", stdout);
}

/* An engine message as a JSON string: quotes, backslashes and control bytes escaped. */
static void print_error(int status, const char *message) {
  printf("{\"error\": \"[%d] ", status);
  for (const unsigned char *p = (const unsigned char *)message; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\') printf("\\%c", *p);
    else if (*p < 0x20) printf("\\u%04x", *p);
    else putchar(*p);
  }
  fputs("\"}\n", stdout);
}

/* ----------------------------------------------------------------------------
 * Arguments
 * ------------------------------------------------------------------------- */

typedef struct worker_args {
  const char *allocator;
  const char *workload;
  uint64_t ops, time_budget_ns, seed;
  int mode;   /* an AF_BENCH_MODE_* */
  int direct; /* the calibration loop instead of the engine */
} worker_args;

static int usage(const char *why) {
  fprintf(stderr,
          "_engine_worker: %s\nusage: _engine_worker --allocator NAME --workload W --ops N "
          "--time-budget-ns T --seed S --mode auto|free|arena [--direct]\n",
          why);
  return 2;
}

static int parse_u64(const char *text, uint64_t *out) {
  char *end;
  if (text == NULL || *text == '\0' || *text == '-') return 0;
  *out = strtoull(text, &end, 10);
  return *end == '\0';
}

static int parse_args(int argc, char **argv, worker_args *a) {
  *a = (worker_args){.mode = AF_BENCH_MODE_AUTO};
  for (int i = 1; i < argc; i++) {
    const char *key = argv[i], *value = i + 1 < argc ? argv[i + 1] : NULL;
    if (strcmp(key, "--direct") == 0) {
      a->direct = 1;
      continue;
    }
    if (value == NULL) return usage("every option but --direct takes a value");
    i++;
    if (strcmp(key, "--allocator") == 0) a->allocator = value;
    else if (strcmp(key, "--workload") == 0) a->workload = value;
    else if (strcmp(key, "--ops") == 0) {
      if (!parse_u64(value, &a->ops)) return usage("--ops takes a whole number");
    } else if (strcmp(key, "--time-budget-ns") == 0) {
      if (!parse_u64(value, &a->time_budget_ns)) return usage("--time-budget-ns takes a whole number");
    } else if (strcmp(key, "--seed") == 0) {
      if (!parse_u64(value, &a->seed)) return usage("--seed takes a whole number");
    } else if (strcmp(key, "--mode") == 0) {
      if (strcmp(value, "auto") == 0) a->mode = AF_BENCH_MODE_AUTO;
      else if (strcmp(value, "free") == 0) a->mode = AF_BENCH_MODE_FREE;
      else if (strcmp(value, "arena") == 0) a->mode = AF_BENCH_MODE_ARENA;
      else return usage("--mode is auto, free or arena");
    } else {
      return usage("unknown option");
    }
  }
  if (a->allocator == NULL || a->workload == NULL) return usage("--allocator and --workload are required");
  return 0;
}

int main(int argc, char **argv) {
  worker_args args;
  int bad = parse_args(argc, argv, &args);
  if (bad) return bad;
  af_bench_result result;
  af_error err = {0};
  memset(&result, 0, sizeof result);
  reset_peak_rss();
  int status;
  if (args.direct) {
    status = af_calibrate_direct(args.allocator, args.workload, args.ops, args.seed, &result, &err);
  } else {
    af_bench_config config = {.workload = args.workload,
                              .allocator = args.allocator,
                              .ops = args.ops,
                              .time_budget_ns = args.time_budget_ns,
                              .seed = args.seed,
                              .mode = args.mode};
    status = af_bench_run(&config, &result, &err);
  }
  if (status != AF_OK) {
    print_error(status, err.message[0] != '\0' ? err.message : af_status_text(status));
    return 1;
  }
  print_result(&result, process_peak_rss());
  return fflush(stdout) == 0 ? 0 : 1;
}
