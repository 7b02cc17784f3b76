/* ----------------------------------------------------------------------------
 * test_engine.c: the benchmark engine (csrc/bench) against every allocator.
 *
 * Checks what the engine promises, never how fast anything is:
 * - every workload runs on every available allocator with the ops asked for;
 * - the checksum and bytes_requested depend only on (workload, seed, ops):
 *   equal across runs, across correct allocators and across free/arena mode,
 *   and different for different seeds;
 * - the time-budget mode runs a prefix of the same stream;
 * - threads-N, error reporting and the stats are consistent.
 * AF_TEST_SCALE (e.g. 0.05 under valgrind) scales the op counts.
 * ALLOCFFI_REQUIRE_ALL=1 turns a missing system allocator into a failure.
 * ------------------------------------------------------------------------- */
#include "bench/bench.h"

#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int passed, failed;

#define CHECK(cond, ...)                                    \
  do {                                                      \
    if (cond) {                                             \
      passed++;                                             \
    } else {                                                \
      failed++;                                             \
      fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
      fprintf(stderr, __VA_ARGS__);                         \
      fputc('\n', stderr);                                  \
    }                                                       \
  } while (0)

static double scale = 1.0;

/* n ops scaled by AF_TEST_SCALE, at least `floor`. */
static uint64_t scaled(uint64_t n, uint64_t floor) {
  uint64_t s = (uint64_t)((double)n * scale);
  return s < floor ? floor : s;
}

static int run(const char *workload, const char *allocator, uint64_t ops, uint64_t seed, af_bench_result *r,
               af_error *err) {
  af_bench_config config = {.workload = workload, .allocator = allocator, .ops = ops, .seed = seed};
  memset(err, 0, sizeof *err);
  return af_bench_run(&config, r, err);
}

/* ----------------------------------------------------------------------------
 * Allocators under test
 * ------------------------------------------------------------------------- */
static const char *const ALL_ALLOCATORS[] = {"null", "bump", "slab", "large", "libc", "mmap", "mimalloc",
                                             "jemalloc", "tcmalloc", "mimalloc-heap", "jemalloc-arena"};
enum { ALLOCATOR_SLOTS = sizeof ALL_ALLOCATORS / sizeof ALL_ALLOCATORS[0] };
static const char *allocators[ALLOCATOR_SLOTS];
static size_t allocator_count;

static bool is_system(const char *name) {
  return strcmp(name, "mimalloc") == 0 || strcmp(name, "jemalloc") == 0 || strcmp(name, "tcmalloc") == 0 ||
         strcmp(name, "mimalloc-heap") == 0 || strcmp(name, "jemalloc-arena") == 0;
}

static void find_allocators(void) {
  bool require_all = getenv("ALLOCFFI_REQUIRE_ALL") != NULL && strcmp(getenv("ALLOCFFI_REQUIRE_ALL"), "1") == 0;
  for (size_t i = 0; i < ALLOCATOR_SLOTS; i++) {
    af_error err = {0};
    int status = af_available(ALL_ALLOCATORS[i], &err);
    if (status == AF_OK) {
      allocators[allocator_count++] = ALL_ALLOCATORS[i];
    } else {
      /* ours and the baselines must always work; system ones may be missing */
      CHECK(is_system(ALL_ALLOCATORS[i]) && !require_all, "%s unavailable: %s", ALL_ALLOCATORS[i], err.message);
      fprintf(stderr, "note: %s unavailable (%s), skipped\n", ALL_ALLOCATORS[i], err.message);
    }
  }
}

/* ----------------------------------------------------------------------------
 * The workload table
 * ------------------------------------------------------------------------- */
static bool has_workload(const char *name) {
  for (size_t i = 0; i < af_bench_workload_count(); i++)
    if (strcmp(af_bench_workload_name(i), name) == 0) return true;
  return false;
}

static void test_table(void) {
  static const char *const required[] = {
    "fixed-48", "fixed-256", "fixed-4096", "copy-48", "copy-256", "copy-4096", "pool-64", "pool-1024",
    "batch-100", "mixed", "small", "large", "exact", "inexact", "oversize", "high-frequency", "memory-pressure",
    "large-cycle", "stress", "threads-2", "threads-4"};
  for (size_t i = 0; i < sizeof required / sizeof required[0]; i++)
    CHECK(has_workload(required[i]), "workload %s missing from the table", required[i]);
  size_t n = af_bench_workload_count();
  for (size_t i = 0; i < n; i++) {
    const char *d = af_bench_workload_description(i);
    CHECK(d != NULL && strlen(d) > 10, "workload %s has no description", af_bench_workload_name(i));
    for (size_t j = i + 1; j < n; j++)
      CHECK(strcmp(af_bench_workload_name(i), af_bench_workload_name(j)) != 0, "duplicate %s",
            af_bench_workload_name(i));
  }
  CHECK(af_bench_workload_name(n) == NULL && af_bench_workload_description(n) == NULL, "index %zu past the end", n);
}

/* ----------------------------------------------------------------------------
 * Every workload on every allocator: ops honoured, checksums agree
 * ------------------------------------------------------------------------- */

/* Workloads that hold blocks while allocating others (null may recycle those). */
static bool holds_blocks(const char *workload) {
  return strncmp(workload, "pool-", 5) == 0 || strcmp(workload, "mixed") == 0 ||
         strcmp(workload, "batch-100") == 0 || strcmp(workload, "memory-pressure") == 0 ||
         strcmp(workload, "stress") == 0 || strncmp(workload, "threads-", 8) == 0 || strncmp(workload, "live-", 5) == 0;
}

static void test_every_workload(void) {
  /* 12000 ops complete at least one phase of every workload (the longest is 10000). */
  uint64_t ops = scaled(12000, 40);
  for (size_t w = 0; w < af_bench_workload_count(); w++) {
    const char *workload = af_bench_workload_name(w);
    bool have_reference = false;
    af_bench_result reference = {0}, null_result = {0};
    bool have_null = false;
    for (size_t i = 0; i < allocator_count; i++) {
      const char *name = allocators[i];
      af_bench_result r;
      af_error err;
      int status = run(workload, name, ops, 42, &r, &err);
      CHECK(status == AF_OK, "%s on %s: status %d: %s", workload, name, status, err.message);
      if (status != AF_OK) continue;
      CHECK(r.ops == ops, "%s on %s: %" PRIu64 " ops, asked %" PRIu64, workload, name, r.ops, ops);
      CHECK(r.bytes_requested >= 8 * ops, "%s on %s: bytes_requested %" PRIu64, workload, name, r.bytes_requested);
      CHECK(r.threads >= 1, "%s on %s: threads %u", workload, name, r.threads);
      CHECK(r.ns_per_op >= 0.0 && r.peak_rss_bytes > 0, "%s on %s: bad measurements", workload, name);
      if (strcmp(name, "null") == 0) {
        null_result = r;
        have_null = true;
      } else {
        CHECK(r.stats.allocs >= r.ops, "%s on %s: stats.allocs %" PRIu64 " < ops", workload, name, r.stats.allocs);
        CHECK(r.stats.failures == 0, "%s on %s: %" PRIu64 " failures", workload, name, r.stats.failures);
        if (!have_reference) {
          reference = r;
          have_reference = true;
        } else {
          CHECK(r.checksum == reference.checksum, "%s on %s: checksum %016" PRIx64 " differs from %016" PRIx64,
                workload, name, r.checksum, reference.checksum);
        }
      }
      if (have_reference)
        CHECK(r.bytes_requested == reference.bytes_requested, "%s on %s: bytes_requested differs", workload, name);
    }
    if (have_null && have_reference) {
      CHECK(null_result.bytes_requested == reference.bytes_requested, "%s: null bytes_requested differs", workload);
      /* null recycles its buffer, but a block read back at once is intact */
      if (!holds_blocks(workload))
        CHECK(null_result.checksum == reference.checksum, "%s: null checksum differs on a pairs workload", workload);
    }
  }
}

/* ----------------------------------------------------------------------------
 * The checksum sees overlapping blocks: a broken allocator that hands out the
 * same memory every time, driven through the kernels directly, must change
 * the checksum of every workload that holds blocks.
 * ------------------------------------------------------------------------- */
static _Alignas(4096) uint8_t same_buffer[8u << 20];
static void *same_alloc(af_allocator *a, size_t size, size_t align) {
  (void)a, (void)size, (void)align;
  return same_buffer;
}
static int same_free(af_allocator *a, void *p, size_t size, size_t align) {
  (void)a, (void)p, (void)size, (void)align;
  return AF_OK;
}
static int same_reset(af_allocator *a) {
  (void)a;
  return AF_OK;
}
static const af_vtable same_vtable = {.name = "same", .alloc = same_alloc, .free = same_free, .reset = same_reset};

/* Runs `ops` ops of table entry w on allocator a (free mode), then the teardown; returns the sum. */
static uint64_t kernel_sum(const bench_workload *w, af_allocator *a, uint64_t ops, const uint8_t *src) {
  bench_ctx c = {.a = a, .alloc = a->vt->alloc, .free = a->vt->free, .reset = a->vt->reset, .rng = 12345,
                 .src = src, .live_cap = w->live_slots};
  c.live = calloc(c.live_cap + 1, sizeof *c.live);
  if (w->prepare != NULL) CHECK(w->prepare(&c) == AF_OK, "%s: prepare failed", w->name);
  uint64_t done = w->run_free(&c, ops);
  CHECK(done == ops && c.status == AF_OK, "%s: kernel ran %" PRIu64 " of %" PRIu64, w->name, done, ops);
  CHECK(_af_bench_release_all(&c, false) == AF_OK, "%s: teardown failed", w->name);
  free(c.live);
  free(c.order);
  return c.sum;
}

static void test_checksum_sees_overlap(void) {
  static uint8_t src[BENCH_SRC_SIZE];
  for (size_t i = 0; i < sizeof src; i++) src[i] = (uint8_t)(i * 7 + 1);
  af_allocator same = {.vt = &same_vtable};
  af_error err = {0};
  af_allocator *libc = af_create("libc", &err);
  CHECK(libc != NULL, "libc: %s", err.message);
  if (libc == NULL) return;
  uint64_t ops = scaled(3000, 300);
  for (size_t i = 0; i < _af_bench_workload_total; i++) {
    const bench_workload *w = &_af_bench_workloads[i];
    uint64_t good = kernel_sum(w, libc, ops, src), bad = kernel_sum(w, &same, ops, src);
    if (holds_blocks(w->name))
      CHECK(good != bad, "%s: checksum blind to overlapping blocks", w->name);
    else
      CHECK(good == bad, "%s: pairs read back at once should not notice", w->name);
  }
  af_destroy(libc);
}

/* ----------------------------------------------------------------------------
 * Determinism and seeds
 * ------------------------------------------------------------------------- */
static bool random_sizes(const char *workload) {
  static const char *const names[] = {"mixed", "small", "large", "exact", "inexact", "oversize",
                                      "memory-pressure", "stress", "threads-2", "threads-4",
                                      "live-mixed-1e6-random", "live-mixed-1e6-inorder",
                                      "live-large-1e2-random", "live-large-1e3-random",
                                      "live-large-1e3-inorder"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(workload, names[i]) == 0) return true;
  return false;
}

static void test_determinism(void) {
  uint64_t ops = scaled(5000, 100);
  static const char *const names[] = {"libc", "bump"};
  for (size_t w = 0; w < af_bench_workload_count(); w++) {
    const char *workload = af_bench_workload_name(w);
    for (size_t i = 0; i < 2; i++) {
      af_bench_result a, b, c;
      af_error err;
      CHECK(run(workload, names[i], ops, 7, &a, &err) == AF_OK, "%s: %s", workload, err.message);
      CHECK(run(workload, names[i], ops, 7, &b, &err) == AF_OK, "%s: %s", workload, err.message);
      CHECK(run(workload, names[i], ops, 8, &c, &err) == AF_OK, "%s: %s", workload, err.message);
      CHECK(a.checksum == b.checksum && a.bytes_requested == b.bytes_requested, "%s on %s: same seed, different run",
            workload, names[i]);
      /* every tag comes from the seeded stream */
      CHECK(a.checksum != c.checksum, "%s on %s: seeds 7 and 8 give the same checksum", workload, names[i]);
      if (random_sizes(workload))
        CHECK(a.bytes_requested != c.bytes_requested, "%s on %s: seeds 7 and 8 request the same bytes", workload,
              names[i]);
    }
  }
  /* seed 0 means "a fixed default", so it is reproducible too */
  af_bench_result a, b;
  af_error err;
  CHECK(run("mixed", "libc", ops, 0, &a, &err) == AF_OK && run("mixed", "libc", ops, 0, &b, &err) == AF_OK &&
            a.checksum == b.checksum,
        "seed 0 not reproducible");
}

/* ----------------------------------------------------------------------------
 * Time-budget mode: some ops, and a prefix of the same stream
 * ------------------------------------------------------------------------- */
static void test_time_budget(void) {
  static const char *const workloads[] = {"fixed-48", "mixed", "pool-64", "memory-pressure", "large-cycle"};
  static const char *const names[] = {"libc", "bump"};
  for (size_t w = 0; w < sizeof workloads / sizeof workloads[0]; w++) {
    for (size_t i = 0; i < 2; i++) {
      af_bench_config config = {.workload = workloads[w], .allocator = names[i], .time_budget_ns = 2000000, .seed = 3};
      af_bench_result timed, fixed;
      af_error err = {0};
      CHECK(af_bench_run(&config, &timed, &err) == AF_OK, "%s: %s", workloads[w], err.message);
      CHECK(timed.ops > 0, "%s on %s: time budget ran no ops", workloads[w], names[i]);
      CHECK(run(workloads[w], names[i], timed.ops, 3, &fixed, &err) == AF_OK, "%s: %s", workloads[w], err.message);
      CHECK(fixed.checksum == timed.checksum && fixed.bytes_requested == timed.bytes_requested,
            "%s on %s: %" PRIu64 " timed ops differ from the same number of counted ops", workloads[w], names[i],
            timed.ops);
    }
  }
  /* threads in time-budget mode */
  af_bench_config config = {.workload = "threads-2", .allocator = "libc", .time_budget_ns = 2000000};
  af_bench_result r;
  af_error err = {0};
  CHECK(af_bench_run(&config, &r, &err) == AF_OK && r.ops > 0 && r.threads == 2, "threads-2 timed: %s", err.message);
}

/* ----------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------- */
static void test_threads(void) {
  uint64_t ops = scaled(8000, 100);
  af_bench_result mixed, one, two, two_bump, three, tiny;
  af_error err;
  CHECK(run("mixed", "libc", ops, 9, &mixed, &err) == AF_OK, "%s", err.message);
  CHECK(run("threads-1", "libc", ops, 9, &one, &err) == AF_OK, "threads-1: %s", err.message);
  CHECK(one.threads == 1 && one.checksum == mixed.checksum && one.bytes_requested == mixed.bytes_requested,
        "threads-1 should reproduce mixed");
  CHECK(run("threads-2", "libc", ops, 9, &two, &err) == AF_OK, "threads-2: %s", err.message);
  CHECK(two.threads == 2 && two.ops == ops, "threads-2: threads %u ops %" PRIu64, two.threads, two.ops);
  CHECK(two.stats.allocs >= ops, "threads-2: stats not summed (%" PRIu64 " allocs)", two.stats.allocs);
  CHECK(run("threads-2", "bump", ops, 9, &two_bump, &err) == AF_OK, "threads-2 bump: %s", err.message);
  CHECK(two_bump.checksum == two.checksum, "threads-2: bump and libc checksums differ");
  CHECK(run("threads-3", "slab", ops + 1, 9, &three, &err) == AF_OK, "threads-3: %s", err.message);
  CHECK(three.threads == 3 && three.ops == ops + 1, "threads-3: uneven split lost ops (%" PRIu64 ")", three.ops);
  /* fewer ops than threads: the spare thread does nothing rather than run on time */
  CHECK(run("threads-4", "libc", 1, 9, &tiny, &err) == AF_OK && tiny.ops == 1, "threads-4 with 1 op: %s",
        err.message);
}

/* ----------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */
static void test_errors(void) {
  af_bench_result r;
  af_error err;
  int status = run("no-such-workload", "libc", 10, 1, &r, &err);
  CHECK(status == AF_ERR_INVALID && err.code == AF_ERR_INVALID, "unknown workload: status %d", status);
  CHECK(strstr(err.message, "no-such-workload") != NULL && strstr(err.message, "fixed-48") != NULL &&
            strstr(err.message, "stress") != NULL && strstr(err.message, "threads-N") != NULL,
        "message should name the workload and list the valid ones: %s", err.message);
  static const char *const bad_threads[] = {"threads-0", "threads-", "threads-x", "threads-2x", "threads-100000",
                                            "threads--1", ""};
  for (size_t i = 0; i < sizeof bad_threads / sizeof bad_threads[0]; i++)
    CHECK(run(bad_threads[i], "libc", 10, 1, &r, &err) == AF_ERR_INVALID, "'%s' accepted", bad_threads[i]);
  status = run("mixed", "no-such-allocator", 10, 1, &r, &err);
  CHECK(status != AF_OK && err.code == status && err.message[0] != '\0', "unknown allocator: status %d", status);
  status = run("threads-2", "no-such-allocator", 10, 1, &r, &err);
  CHECK(status != AF_OK && err.message[0] != '\0', "unknown allocator with threads: status %d", status);
  af_bench_config config = {.workload = NULL, .allocator = "libc", .ops = 1};
  CHECK(af_bench_run(&config, &r, &err) == AF_ERR_INVALID, "NULL workload accepted");
  CHECK(af_bench_run(NULL, &r, &err) == AF_ERR_INVALID, "NULL config accepted");
  config.workload = "mixed";
  CHECK(af_bench_run(&config, NULL, &err) == AF_ERR_INVALID, "NULL result accepted");
  CHECK(af_bench_run(&config, &r, NULL) == AF_OK, "err may be NULL");
}

/* ----------------------------------------------------------------------------
 * Stats and free policy
 * ------------------------------------------------------------------------- */
static void test_stats(void) {
  af_bench_result r;
  af_error err;
  uint64_t ops = scaled(2500, 40);
  /* free mode: every pair freed at once */
  CHECK(run("fixed-48", "libc", ops, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.stats.allocs == ops && r.stats.frees == ops && r.stats.blocks_in_use == 0 && r.stats.resets == 0,
        "libc fixed-48: allocs %" PRIu64 " frees %" PRIu64 " live %" PRIu64, r.stats.allocs, r.stats.frees,
        r.stats.blocks_in_use);
  CHECK(r.bytes_requested == 48 * ops, "fixed-48 bytes_requested %" PRIu64, r.bytes_requested);
  /* arena mode: no frees, one reset per 1000 allocations */
  CHECK(run("fixed-48", "bump", ops, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.stats.allocs == ops && r.stats.resets == ops / 1000 && r.stats.blocks_in_use == ops % 1000,
        "bump fixed-48: allocs %" PRIu64 " resets %" PRIu64 " live %" PRIu64, r.stats.allocs, r.stats.resets,
        r.stats.blocks_in_use);
  /* batch-100 holds a phase's blocks, then frees all of them */
  CHECK(run("batch-100", "libc", 250, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.stats.allocs == 250 && r.stats.frees == 200 && r.stats.blocks_in_use == 50,
        "batch-100: allocs %" PRIu64 " frees %" PRIu64 " live %" PRIu64, r.stats.allocs, r.stats.frees,
        r.stats.blocks_in_use);
  CHECK(r.bytes_requested == 2 * (50 * 1024 + 50 * 4096) + 50 * 1024, "batch-100 bytes %" PRIu64, r.bytes_requested);
  /* memory-pressure: 25 frees per 50 allocations */
  CHECK(run("memory-pressure", "libc", 120, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.stats.frees == 50 && r.stats.blocks_in_use == 70, "memory-pressure: frees %" PRIu64 " live %" PRIu64,
        r.stats.frees, r.stats.blocks_in_use);
  /* pool: never more live blocks than slots */
  CHECK(run("pool-64", "libc", 3000, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.stats.blocks_in_use <= 1000 && r.stats.blocks_in_use > 900 && r.stats.allocs - r.stats.frees ==
        r.stats.blocks_in_use, "pool-64: live %" PRIu64, r.stats.blocks_in_use);
  CHECK(r.bytes_requested == 64 * 3000, "pool-64 bytes %" PRIu64, r.bytes_requested);
  /* large-cycle rotates 256 KiB, 1 MiB, 4 MiB */
  CHECK(run("large-cycle", "libc", 4, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.bytes_requested == (256 + 1024 + 4096 + 256) * 1024, "large-cycle bytes %" PRIu64, r.bytes_requested);
  /* time-budget mode reports the resources of the run */
  af_bench_config config = {.workload = "mixed", .allocator = "libc", .time_budget_ns = 1000000};
  CHECK(af_bench_run(&config, &r, &err) == AF_OK, "%s", err.message);
  CHECK(r.rss_before_bytes > 0 && r.rss_after_bytes > 0 && r.peak_rss_bytes >= r.rss_after_bytes / 2,
        "rss before %" PRIu64 " after %" PRIu64 " peak %" PRIu64, r.rss_before_bytes, r.rss_after_bytes,
        r.peak_rss_bytes);
  CHECK(r.ns_per_op > 0.0 && r.elapsed_ns > 0, "elapsed %" PRIu64, r.elapsed_ns);
}

int main(void) {
  const char *s = getenv("AF_TEST_SCALE");
  if (s != NULL && atof(s) > 0.0) scale = atof(s);
  test_table();
  find_allocators();
  test_every_workload();
  test_checksum_sees_overlap();
  test_determinism();
  test_time_budget();
  test_threads();
  test_errors();
  test_stats();
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
