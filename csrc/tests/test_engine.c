/* ----------------------------------------------------------------------------
 * test_engine.c: the benchmark engine (csrc/engine) against every allocator.
 *
 * Checks what the engine promises, never how fast anything is:
 * - every workload runs on every available allocator with the ops asked for;
 * - the checksum and bytes_requested depend only on (workload, seed, ops):
 *   equal across runs, across correct allocators and across free/arena mode,
 *   and different for different seeds;
 * - the time-budget mode runs a prefix of the same stream;
 * - threads-N, shared-threads-N, error reporting and the stats are consistent;
 * - touch policies write (and read back) what they say;
 * - workload specs: checked, deterministic across allocators, equal to the
 *   built-in workload they describe, sizes drawn as the table says.
 * - the run mode: free and arena for allocators that have both, auto picks
 *   free where the allocator can free, and a mode it cannot do is refused.
 * AF_TEST_SCALE (e.g. 0.05 under valgrind) scales the op counts.
 * ALLOCFFI_REQUIRE_ALL=1 turns a missing system allocator into a failure.
 * ------------------------------------------------------------------------- */
#include "engine/bench.h"
#include "check.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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
      CHECKF(is_system(ALL_ALLOCATORS[i]) && !require_all, "%s unavailable: %s", ALL_ALLOCATORS[i], err.message);
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
    CHECKF(has_workload(required[i]), "workload %s missing from the table", required[i]);
  size_t n = af_bench_workload_count();
  for (size_t i = 0; i < n; i++) {
    const char *d = af_bench_workload_description(i);
    CHECKF(d != NULL && strlen(d) > 10, "workload %s has no description", af_bench_workload_name(i));
    for (size_t j = i + 1; j < n; j++)
      CHECKF(strcmp(af_bench_workload_name(i), af_bench_workload_name(j)) != 0, "duplicate %s",
            af_bench_workload_name(i));
  }
  CHECKF(af_bench_workload_name(n) == NULL && af_bench_workload_description(n) == NULL, "index %zu past the end", n);
}

/* ----------------------------------------------------------------------------
 * Every workload on every allocator: ops honoured, checksums agree
 * ------------------------------------------------------------------------- */

/* Workloads that hold blocks while allocating others (null may recycle those). */
static bool holds_blocks(const char *workload) {
  return strncmp(workload, "pool-", 5) == 0 || strcmp(workload, "mixed") == 0 ||
         strcmp(workload, "batch-100") == 0 || strcmp(workload, "memory-pressure") == 0 ||
         strcmp(workload, "stress") == 0 || strncmp(workload, "threads-", 8) == 0 ||
         strncmp(workload, "shared-threads-", 15) == 0 || strncmp(workload, "live-", 5) == 0;
}

/* Allocators shared-threads-N refuses (thread-bound, or a free that reclaims nothing). */
static bool refuses_sharing(const char *allocator) {
  return strcmp(allocator, "bump") == 0 || strcmp(allocator, "mimalloc-heap") == 0;
}

static bool is_shared(const char *workload) { return strncmp(workload, "shared-threads-", 15) == 0; }

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
      if (is_shared(workload) && refuses_sharing(name)) {
        CHECKF(status == AF_ERR_UNSUPPORTED && strstr(err.message, name) != NULL && strstr(err.message, "threads-N"),
              "%s on %s: should be refused with a reason: %d %s", workload, name, status, err.message);
        continue;
      }
      CHECKF(status == AF_OK, "%s on %s: status %d: %s", workload, name, status, err.message);
      if (status != AF_OK) continue;
      CHECKF(r.ops == ops, "%s on %s: %" PRIu64 " ops, asked %" PRIu64, workload, name, r.ops, ops);
      CHECKF(r.bytes_requested >= 8 * ops, "%s on %s: bytes_requested %" PRIu64, workload, name, r.bytes_requested);
      CHECKF(r.threads >= 1, "%s on %s: threads %u", workload, name, r.threads);
      CHECKF(r.ns_per_op >= 0.0 && r.peak_rss_bytes > 0, "%s on %s: bad measurements", workload, name);
      if (strcmp(name, "null") == 0) {
        null_result = r;
        have_null = true;
      } else {
        CHECKF(r.stats.allocs >= r.ops, "%s on %s: stats.allocs %" PRIu64 " < ops", workload, name, r.stats.allocs);
        CHECKF(r.stats.failures == 0, "%s on %s: %" PRIu64 " failures", workload, name, r.stats.failures);
        if (!have_reference) {
          reference = r;
          have_reference = true;
        } else {
          CHECKF(r.checksum == reference.checksum, "%s on %s: checksum %016" PRIx64 " differs from %016" PRIx64,
                workload, name, r.checksum, reference.checksum);
        }
      }
      if (have_reference)
        CHECKF(r.bytes_requested == reference.bytes_requested, "%s on %s: bytes_requested differs", workload, name);
    }
    if (have_null && have_reference) {
      CHECKF(null_result.bytes_requested == reference.bytes_requested, "%s: null bytes_requested differs", workload);
      /* null recycles its buffer, but a block read back at once is intact */
      if (!holds_blocks(workload))
        CHECKF(null_result.checksum == reference.checksum, "%s: null checksum differs on a pairs workload", workload);
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
  if (w->prepare != NULL) CHECKF(w->prepare(&c) == AF_OK, "%s: prepare failed", w->name);
  uint64_t done = w->run_free(&c, ops);
  CHECKF(done == ops && c.status == AF_OK, "%s: kernel ran %" PRIu64 " of %" PRIu64, w->name, done, ops);
  CHECKF(_af_bench_release_all(&c, false) == AF_OK, "%s: teardown failed", w->name);
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
  CHECKF(libc != NULL, "libc: %s", err.message);
  if (libc == NULL) return;
  uint64_t ops = scaled(3000, 300);
  for (size_t i = 0; i < _af_bench_workload_total; i++) {
    const bench_workload *w = &_af_bench_workloads[i];
    uint64_t good = kernel_sum(w, libc, ops, src), bad = kernel_sum(w, &same, ops, src);
    if (holds_blocks(w->name))
      CHECKF(good != bad, "%s: checksum blind to overlapping blocks", w->name);
    else
      CHECKF(good == bad, "%s: pairs read back at once should not notice", w->name);
  }
  af_destroy(libc);
}

/* ----------------------------------------------------------------------------
 * Determinism and seeds
 * ------------------------------------------------------------------------- */
static bool random_sizes(const char *workload) {
  static const char *const names[] = {"mixed", "small", "large", "exact", "inexact", "oversize",
                                      "memory-pressure", "stress", "threads-2", "threads-4", "shared-threads-2",
                                      "shared-threads-4", "large-pages", "oversize-pages",
                                      "live-mixed-1e6-random", "live-mixed-1e6-inorder",
                                      "live-large-1e2-random", "live-large-1e3-random",
                                      "live-large-1e3-inorder"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
    if (strcmp(workload, names[i]) == 0) return true;
  return false;
}

static void test_determinism(void) {
  uint64_t ops = scaled(5000, 100);
  for (size_t w = 0; w < af_bench_workload_count(); w++) {
    const char *workload = af_bench_workload_name(w);
    const char *names[] = {"libc", is_shared(workload) ? "slab" : "bump"};
    for (size_t i = 0; i < 2; i++) {
      af_bench_result a, b, c;
      af_error err;
      CHECKF(run(workload, names[i], ops, 7, &a, &err) == AF_OK, "%s: %s", workload, err.message);
      CHECKF(run(workload, names[i], ops, 7, &b, &err) == AF_OK, "%s: %s", workload, err.message);
      CHECKF(run(workload, names[i], ops, 8, &c, &err) == AF_OK, "%s: %s", workload, err.message);
      CHECKF(a.checksum == b.checksum && a.bytes_requested == b.bytes_requested, "%s on %s: same seed, different run",
            workload, names[i]);
      /* every tag comes from the seeded stream */
      CHECKF(a.checksum != c.checksum, "%s on %s: seeds 7 and 8 give the same checksum", workload, names[i]);
      if (random_sizes(workload))
        CHECKF(a.bytes_requested != c.bytes_requested, "%s on %s: seeds 7 and 8 request the same bytes", workload,
              names[i]);
    }
  }
  /* seed 0 means "a fixed default", so it is reproducible too */
  af_bench_result a, b;
  af_error err;
  CHECKF(run("mixed", "libc", ops, 0, &a, &err) == AF_OK && run("mixed", "libc", ops, 0, &b, &err) == AF_OK &&
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
      CHECKF(af_bench_run(&config, &timed, &err) == AF_OK, "%s: %s", workloads[w], err.message);
      CHECKF(timed.ops > 0, "%s on %s: time budget ran no ops", workloads[w], names[i]);
      CHECKF(run(workloads[w], names[i], timed.ops, 3, &fixed, &err) == AF_OK, "%s: %s", workloads[w], err.message);
      CHECKF(fixed.checksum == timed.checksum && fixed.bytes_requested == timed.bytes_requested,
            "%s on %s: %" PRIu64 " timed ops differ from the same number of counted ops", workloads[w], names[i],
            timed.ops);
    }
  }
  /* threads in time-budget mode */
  af_bench_config config = {.workload = "threads-2", .allocator = "libc", .time_budget_ns = 2000000};
  af_bench_result r;
  af_error err = {0};
  CHECKF(af_bench_run(&config, &r, &err) == AF_OK && r.ops > 0 && r.threads == 2, "threads-2 timed: %s", err.message);
}

/* ----------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------- */
static void test_threads(void) {
  uint64_t ops = scaled(8000, 100);
  af_bench_result mixed, one, two, two_bump, three, tiny;
  af_error err;
  CHECKF(run("mixed", "libc", ops, 9, &mixed, &err) == AF_OK, "%s", err.message);
  CHECKF(run("threads-1", "libc", ops, 9, &one, &err) == AF_OK, "threads-1: %s", err.message);
  CHECKF(one.threads == 1 && one.checksum == mixed.checksum && one.bytes_requested == mixed.bytes_requested,
        "threads-1 should reproduce mixed");
  CHECKF(run("threads-2", "libc", ops, 9, &two, &err) == AF_OK, "threads-2: %s", err.message);
  CHECKF(two.threads == 2 && two.ops == ops, "threads-2: threads %u ops %" PRIu64, two.threads, two.ops);
  CHECKF(two.stats.allocs >= ops, "threads-2: stats not summed (%" PRIu64 " allocs)", two.stats.allocs);
  CHECKF(run("threads-2", "bump", ops, 9, &two_bump, &err) == AF_OK, "threads-2 bump: %s", err.message);
  CHECKF(two_bump.checksum == two.checksum, "threads-2: bump and libc checksums differ");
  CHECKF(run("threads-3", "slab", ops + 1, 9, &three, &err) == AF_OK, "threads-3: %s", err.message);
  CHECKF(three.threads == 3 && three.ops == ops + 1, "threads-3: uneven split lost ops (%" PRIu64 ")", three.ops);
  /* fewer ops than threads: the spare thread does nothing rather than run on time */
  CHECKF(run("threads-4", "libc", 1, 9, &tiny, &err) == AF_OK && tiny.ops == 1, "threads-4 with 1 op: %s",
        err.message);
}


/* ----------------------------------------------------------------------------
 * shared-threads-N: one instance, the same streams as threads-N
 * ------------------------------------------------------------------------- */
static bool available(const char *name) {
  for (size_t i = 0; i < allocator_count; i++)
    if (strcmp(allocators[i], name) == 0) return true;
  return false;
}

static void test_shared_threads(void) {
  uint64_t ops = scaled(8000, 100);
  af_bench_result mixed, per_thread, r;
  af_error err;
  CHECKF(run("mixed", "libc", ops, 11, &mixed, &err) == AF_OK, "%s", err.message);
  CHECKF(run("threads-3", "libc", ops, 11, &per_thread, &err) == AF_OK, "%s", err.message);
  CHECKF(per_thread.shared == 0, "threads-3 says it shared an instance");
  static const char *const names[] = {"slab", "large", "libc", "null", "mimalloc", "tcmalloc", "jemalloc",
                                      "jemalloc-arena"};
  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    if (!available(names[i])) continue;
    /* one thread on a shared instance runs mixed's stream, in free mode */
    CHECKF(run("shared-threads-1", names[i], ops, 11, &r, &err) == AF_OK, "%s: %s", names[i], err.message);
    if (strcmp(names[i], "null") != 0)
      CHECKF(r.checksum == mixed.checksum && r.shared == 1 && r.threads == 1, "shared-threads-1 on %s differs from mixed",
            names[i]);
    CHECKF(run("shared-threads-3", names[i], ops, 11, &r, &err) == AF_OK, "%s: %s", names[i], err.message);
    CHECKF(r.threads == 3 && r.shared == 1 && r.ops == ops, "shared-threads-3 on %s: threads %u ops %" PRIu64, names[i],
          r.threads, r.ops);
    if (strcmp(names[i], "null") == 0) continue; /* null hands the same memory to every thread */
    CHECKF(r.checksum == per_thread.checksum, "shared-threads-3 on %s: checksum differs from threads-3", names[i]);
    CHECKF(r.stats.allocs == ops && r.stats.failures == 0, "shared-threads-3 on %s: %" PRIu64 " allocs for %" PRIu64
          " ops", names[i], r.stats.allocs, ops);
    CHECKF(r.stats.resets == 0, "shared-threads-3 on %s: a shared instance was reset", names[i]);
    /* ns per op per thread: elapsed / (ops / threads) */
    CHECKF(fabs(r.ns_per_op - (double)r.elapsed_ns * 3.0 / (double)r.ops) <= 1e-6 * r.ns_per_op,
          "shared-threads-3 on %s: ns_per_op %.3f is not per thread", names[i], r.ns_per_op);
  }
  /* refused with the reason, by af_bench_check too */
  static const char *const refused[] = {"bump", "mimalloc-heap"};
  for (size_t i = 0; i < 2; i++) {
    if (!available(refused[i])) continue;
    af_bench_config config = {.workload = "shared-threads-2", .allocator = refused[i], .ops = 10};
    memset(&err, 0, sizeof err);
    CHECKF(af_bench_check(&config, &err) == AF_ERR_UNSUPPORTED && strstr(err.message, refused[i]) != NULL,
          "af_bench_check accepts %s on shared-threads-2: %s", refused[i], err.message);
    config.workload = "threads-2";
    CHECKF(af_bench_check(&config, &err) == AF_OK, "af_bench_check refuses %s on threads-2: %s", refused[i],
          err.message);
  }
  af_bench_config config = {.workload = "shared-threads-2", .allocator = "slab"};
  CHECKF(af_bench_check(&config, &err) == AF_OK, "af_bench_check refuses slab on shared-threads-2: %s", err.message);
  config.workload = "shared-threads-0";
  CHECKF(af_bench_check(&config, &err) == AF_ERR_INVALID, "af_bench_check accepts shared-threads-0");
  /* time-budget mode */
  config = (af_bench_config){.workload = "shared-threads-2", .allocator = "slab", .time_budget_ns = 2000000};
  CHECKF(af_bench_run(&config, &r, &err) == AF_OK && r.ops > 0 && r.threads == 2, "shared-threads-2 timed: %s",
        err.message);
}

/* ----------------------------------------------------------------------------
 * Touch policies
 * ------------------------------------------------------------------------- */

/* An allocator that hands out one 64 KiB buffer prefilled with a byte. */
static _Alignas(4096) uint8_t touch_buffer[64 * 1024];
static void *touch_alloc(af_allocator *a, size_t size, size_t align) {
  (void)a, (void)size, (void)align;
  return touch_buffer;
}
static const af_vtable touch_vtable = {.name = "touch", .alloc = touch_alloc, .free = same_free, .reset = same_reset};

/* Runs one op of a 64 KiB pairs spec with the given touch policy over a
   buffer prefilled with `fill`; returns the byte at offset 100. */
static uint8_t byte_after_one_op(int touch, uint8_t fill) {
  af_size_entry size = {.min = sizeof touch_buffer, .max = sizeof touch_buffer, .weight = 1};
  af_workload_spec spec = {.name = "t", .kernel = AF_KERNEL_PAIRS, .sizes = &size, .size_count = 1, .phase = 1,
                           .touch = touch};
  bench_workload w;
  _af_bench_spec_workload(&spec, &w);
  static size_range table[BENCH_SPEC_TABLE_SIZE];
  _af_bench_spec_table(&spec, table);
  memset(touch_buffer, fill, sizeof touch_buffer);
  af_allocator a = {.vt = &touch_vtable};
  bench_ctx c = {.a = &a, .alloc = touch_alloc, .free = same_free, .reset = same_reset, .rng = 99, .touch = touch,
                 .spec_table = table, .spec_phase = 1};
  CHECKF(w.run_free(&c, 1) == 1, "touch %d: the op failed", touch);
  return touch_buffer[100];
}

static bool every_page_written(uint8_t fill) {
  for (size_t page = 0; page < sizeof touch_buffer; page += 4096) {
    bool written = false;
    for (size_t i = 0; i < 4096; i++) written |= touch_buffer[page + i] != fill;
    if (!written) return false;
  }
  return true;
}

static void test_touch(void) {
  /* ends and pages leave the middle of a page alone; all writes every byte */
  CHECKF(byte_after_one_op(AF_TOUCH_ENDS, 0x11) == 0x11, "ends wrote the middle of the block");
  CHECKF(!every_page_written(0x11), "ends wrote every page of a 64 KiB block");
  CHECKF(byte_after_one_op(AF_TOUCH_PAGES, 0x11) == 0x11, "pages wrote the middle of a page");
  CHECKF(every_page_written(0x11), "pages missed a page");
  uint8_t a = byte_after_one_op(AF_TOUCH_ALL, 0x11), b = byte_after_one_op(AF_TOUCH_ALL, 0x22);
  CHECKF(a == b, "all left bytes unwritten (%#x vs %#x)", a, b);
  CHECKF(every_page_written(0x22), "all missed a page");

  /* -pages variants: same operations, more words read back, the policy reported */
  uint64_t ops = scaled(200, 20);
  static const char *const pairs[][2] = {{"large", "large-pages"}, {"oversize", "oversize-pages"},
                                         {"large-cycle", "large-cycle-pages"}};
  for (size_t i = 0; i < 3; i++) {
    af_bench_result ends, pages, pages_bump;
    af_error err;
    CHECKF(run(pairs[i][0], "libc", ops, 5, &ends, &err) == AF_OK, "%s", err.message);
    CHECKF(run(pairs[i][1], "libc", ops, 5, &pages, &err) == AF_OK, "%s", err.message);
    CHECKF(run(pairs[i][1], "large", ops, 5, &pages_bump, &err) == AF_OK, "%s", err.message);
    CHECKF(ends.touch == AF_TOUCH_ENDS && pages.touch == AF_TOUCH_PAGES, "%s: touch %u / %u", pairs[i][1], ends.touch,
          pages.touch);
    CHECKF(ends.bytes_requested == pages.bytes_requested, "%s: different requests", pairs[i][1]);
    CHECKF(ends.checksum != pages.checksum, "%s: page words not read back", pairs[i][1]);
    CHECKF(pages.checksum == pages_bump.checksum, "%s: checksum depends on the allocator", pairs[i][1]);
  }
}

/* ----------------------------------------------------------------------------
 * Workload specs
 * ------------------------------------------------------------------------- */
static int run_spec(const af_workload_spec *spec, const char *allocator, uint64_t ops, uint64_t seed,
                    af_bench_result *r, af_error *err) {
  af_bench_config config = {.allocator = allocator, .ops = ops, .seed = seed, .spec = spec};
  memset(err, 0, sizeof *err);
  return af_bench_run(&config, r, err);
}

static void test_spec_equals_builtin(void) {
  /* a spec describing a built-in workload runs exactly its operations */
  uint64_t ops = scaled(12000, 200);
  af_size_entry s48 = {.min = 48, .max = 48, .weight = 1}, s64 = {.min = 64, .max = 64, .weight = 2.5};
  af_workload_spec fixed = {.name = "my-fixed-48", .kernel = AF_KERNEL_PAIRS, .sizes = &s48, .size_count = 1,
                            .phase = 1000};
  af_workload_spec pool = {.name = "my-pool", .kernel = AF_KERNEL_REPLACE, .sizes = &s64, .size_count = 1,
                           .live = 1000, .phase = 10000};
  static const char *const names[] = {"libc", "bump", "slab"};
  for (size_t i = 0; i < 3; i++) {
    af_bench_result a, b;
    af_error err;
    CHECKF(run("fixed-48", names[i], ops, 3, &a, &err) == AF_OK, "%s", err.message);
    CHECKF(run_spec(&fixed, names[i], ops, 3, &b, &err) == AF_OK, "%s", err.message);
    CHECKF(a.checksum == b.checksum && a.bytes_requested == b.bytes_requested && a.stats.resets == b.stats.resets,
          "spec fixed-48 on %s differs from fixed-48", names[i]);
    CHECKF(run("pool-64", names[i], ops, 3, &a, &err) == AF_OK, "%s", err.message);
    CHECKF(run_spec(&pool, names[i], ops, 3, &b, &err) == AF_OK, "%s", err.message);
    CHECKF(a.checksum == b.checksum && a.bytes_requested == b.bytes_requested, "spec pool-64 on %s differs",
          names[i]);
  }
}

static void test_spec_across_allocators(void) {
  uint64_t ops = scaled(6000, 300);
  af_size_entry sizes[] = {
    {.min = 16, .max = 64, .weight = 6},
    {.min = 16, .max = 65536, .median = 300, .sigma = 1.5, .weight = 3},
    {.min = 200000, .max = 200000, .weight = 0.05},
    {.min = 1000, .max = 1000, .weight = 0},
  };
  static const int kernels[] = {AF_KERNEL_PAIRS, AF_KERNEL_REPLACE, AF_KERNEL_BURST, AF_KERNEL_PRESSURE};
  static const int touches[] = {AF_TOUCH_ENDS, AF_TOUCH_PAGES, AF_TOUCH_ALL, AF_TOUCH_ENDS};
  for (size_t k = 0; k < 4; k++) {
    af_workload_spec spec = {.name = "mine", .kernel = kernels[k], .sizes = sizes, .size_count = 4,
                             .live = kernels[k] == AF_KERNEL_REPLACE ? 300 : 0, .phase = 700, .touch = touches[k]};
    af_bench_result reference = {0};
    bool have_reference = false;
    for (size_t i = 0; i < allocator_count; i++) {
      const char *name = allocators[i];
      if (strcmp(name, "null") == 0) continue;
      af_bench_result r, again, other_seed;
      af_error err;
      int status = run_spec(&spec, name, ops, 21, &r, &err);
      CHECKF(status == AF_OK, "spec kernel %d on %s: %s", kernels[k], name, err.message);
      if (status != AF_OK) continue;
      CHECKF(r.ops == ops && r.touch == (uint32_t)touches[k] && r.stats.failures == 0, "spec kernel %d on %s", kernels[k],
            name);
      if (!have_reference) {
        reference = r;
        have_reference = true;
        CHECKF(run_spec(&spec, name, ops, 21, &again, &err) == AF_OK && again.checksum == r.checksum,
              "spec kernel %d: same seed, different run", kernels[k]);
        CHECKF(run_spec(&spec, name, ops, 22, &other_seed, &err) == AF_OK && other_seed.checksum != r.checksum &&
                  other_seed.bytes_requested != r.bytes_requested,
              "spec kernel %d: seeds 21 and 22 agree", kernels[k]);
      } else {
        CHECKF(r.checksum == reference.checksum && r.bytes_requested == reference.bytes_requested,
              "spec kernel %d on %s: checksum %016" PRIx64 " differs from %016" PRIx64, kernels[k], name, r.checksum,
              reference.checksum);
      }
    }
  }
  /* on threads, and in time-budget mode */
  af_workload_spec spec = {.name = "mine", .kernel = AF_KERNEL_REPLACE, .sizes = sizes, .size_count = 2, .live = 64,
                           .phase = 500, .threads = 2};
  af_bench_result r;
  af_error err;
  CHECKF(run_spec(&spec, "slab", ops, 1, &r, &err) == AF_OK && r.threads == 2 && r.ops == ops, "spec threads: %s",
        err.message);
  af_bench_config config = {.allocator = "libc", .time_budget_ns = 2000000, .spec = &spec};
  CHECKF(af_bench_run(&config, &r, &err) == AF_OK && r.ops > 0, "spec timed: %s", err.message);
}

static void test_spec_table(void) {
  static size_range table[BENCH_SPEC_TABLE_SIZE];
  /* weights 3:1 between two fixed sizes */
  af_size_entry two[] = {{.min = 64, .max = 64, .weight = 3}, {.min = 4096, .max = 4096, .weight = 1}};
  af_workload_spec spec = {.name = "w", .kernel = AF_KERNEL_PAIRS, .sizes = two, .size_count = 2, .phase = 1};
  _af_bench_spec_table(&spec, table);
  size_t small = 0;
  for (size_t i = 0; i < BENCH_SPEC_TABLE_SIZE; i++) small += table[i].lo == 64 && table[i].span == 1;
  CHECKF(small == 768, "weights 3:1 gave %zu of 1024 slots to the first entry", small);
  af_bench_result r;
  af_error err;
  uint64_t ops = scaled(40000, 4000);
  CHECKF(run_spec(&spec, "libc", ops, 2, &r, &err) == AF_OK, "%s", err.message);
  double mean = (double)r.bytes_requested / (double)r.ops, expected = (3 * 64 + 4096) / 4.0;
  CHECKF(fabs(mean - expected) < 0.1 * expected, "mean request %.1f, expected about %.1f", mean, expected);
  /* a log-normal: ranges ascend inside [min, max], the middle slot at the median */
  af_size_entry lognormal = {.min = 16, .max = 1 << 20, .median = 1000, .sigma = 1.0, .weight = 1};
  spec.sizes = &lognormal;
  spec.size_count = 1;
  _af_bench_spec_table(&spec, table);
  bool ordered = table[0].lo == 16 && table[BENCH_SPEC_TABLE_SIZE - 1].lo + table[BENCH_SPEC_TABLE_SIZE - 1].span - 1 ==
                                          (1u << 20);
  for (size_t i = 1; i < BENCH_SPEC_TABLE_SIZE; i++)
    ordered &= table[i].span >= 1 && table[i].lo >= table[i - 1].lo && table[i].lo + table[i].span - 1 <= (1u << 20);
  CHECKF(ordered, "log-normal table out of order or out of [min, max]");
  uint64_t middle = table[BENCH_SPEC_TABLE_SIZE / 2].lo;
  CHECKF(middle > 900 && middle < 1100, "log-normal median slot starts at %" PRIu64 ", expected about 1000", middle);
}

static void test_spec_refused(void) {
  af_size_entry good = {.min = 16, .max = 64, .weight = 1};
  af_workload_spec base = {.name = "bad", .kernel = AF_KERNEL_PAIRS, .sizes = &good, .size_count = 1, .phase = 10};
  struct {
    const char *why, *needle;
    af_workload_spec spec;
    af_size_entry entry;
  } cases[] = {
    {"NULL name", "name", base, good},
    {"empty name", "name", base, good},
    {"bad name", "name", base, good},
    {"kernel", "kernel", base, good},
    {"negative kernel", "kernel", base, good},
    {"touch", "touch", base, good},
    {"no sizes", "sizes", base, good},
    {"too many sizes", "sizes", base, good},
    {"min below 8", "sizes[0]", base, {.min = 4, .max = 64, .weight = 1}},
    {"max too big", "sizes[0]", base, {.min = 8, .max = ((uint64_t)1 << 30) + 1, .weight = 1}},
    {"min > max", "min 64 > max 16", base, {.min = 64, .max = 16, .weight = 1}},
    {"negative weight", "weight", base, {.min = 16, .max = 64, .weight = -1}},
    {"NaN weight", "weight", base, {.min = 16, .max = 64, .weight = NAN}},
    {"zero weight sum", "weights", base, {.min = 16, .max = 64, .weight = 0}},
    {"median outside", "median", base, {.min = 16, .max = 64, .median = 100, .sigma = 1, .weight = 1}},
    {"sigma 0", "sigma", base, {.min = 16, .max = 64, .median = 32, .sigma = 0, .weight = 1}},
    {"sigma without median", "sigma", base, {.min = 16, .max = 64, .sigma = 1, .weight = 1}},
    {"phase 0", "phase", base, good},
    {"replace without live", "live", base, good},
    {"live on pairs", "live", base, good},
    {"threads", "threads", base, good},
  };
  enum { CASES = sizeof cases / sizeof cases[0] };
  for (size_t i = 0; i < CASES; i++) cases[i].spec.sizes = &cases[i].entry;
  cases[0].spec.name = NULL;
  cases[1].spec.name = "";
  cases[2].spec.name = "has space";
  cases[3].spec.kernel = 4;
  cases[4].spec.kernel = -1;
  cases[5].spec.touch = 3;
  cases[6].spec.sizes = NULL;
  cases[7].spec.size_count = AF_SPEC_MAX_ENTRIES + 1;
  cases[17].spec.phase = 0;
  cases[18].spec.kernel = AF_KERNEL_REPLACE;
  cases[19].spec.live = 5;
  cases[20].spec.threads = AF_SPEC_MAX_THREADS + 1;
  for (size_t i = 0; i < CASES; i++) {
    af_bench_result r;
    af_error err;
    int status = run_spec(&cases[i].spec, "libc", 10, 1, &r, &err);
    CHECKF(status == AF_ERR_INVALID && strstr(err.message, cases[i].needle) != NULL, "%s: status %d: %s",
          cases[i].why, status, err.message);
    af_bench_config config = {.allocator = "libc", .spec = &cases[i].spec};
    CHECKF(af_bench_check(&config, &err) == AF_ERR_INVALID, "%s: af_bench_check accepts it", cases[i].why);
  }
}

/* ----------------------------------------------------------------------------
 * Errors
 * ------------------------------------------------------------------------- */
static void test_errors(void) {
  af_bench_result r;
  af_error err;
  int status = run("no-such-workload", "libc", 10, 1, &r, &err);
  CHECKF(status == AF_ERR_INVALID && err.code == AF_ERR_INVALID, "unknown workload: status %d", status);
  CHECKF(strstr(err.message, "no-such-workload") != NULL && strstr(err.message, "fixed-48") != NULL &&
            strstr(err.message, "mixed") != NULL && strstr(err.message, "threads-N") != NULL,
        "message should name the workload and list the valid ones: %s", err.message);
  static const char *const bad_threads[] = {"threads-0", "threads-", "threads-x", "threads-2x", "threads-100000",
                                            "threads--1", "", "threads-257", "shared-threads-0",
                                            "shared-threads-257", "shared-threads-", "shared-threads-1x"};
  for (size_t i = 0; i < sizeof bad_threads / sizeof bad_threads[0]; i++)
    CHECKF(run(bad_threads[i], "libc", 10, 1, &r, &err) == AF_ERR_INVALID, "'%s' accepted", bad_threads[i]);
  status = run("mixed", "no-such-allocator", 10, 1, &r, &err);
  CHECKF(status != AF_OK && err.code == status && err.message[0] != '\0', "unknown allocator: status %d", status);
  status = run("threads-2", "no-such-allocator", 10, 1, &r, &err);
  CHECKF(status != AF_OK && err.message[0] != '\0', "unknown allocator with threads: status %d", status);
  af_bench_config config = {.workload = NULL, .allocator = "libc", .ops = 1};
  CHECKF(af_bench_run(&config, &r, &err) == AF_ERR_INVALID, "NULL workload accepted");
  CHECKF(af_bench_run(NULL, &r, &err) == AF_ERR_INVALID, "NULL config accepted");
  config.workload = "mixed";
  CHECKF(af_bench_run(&config, NULL, &err) == AF_ERR_INVALID, "NULL result accepted");
  CHECKF(af_bench_run(&config, &r, NULL) == AF_OK, "err may be NULL");
}

/* ----------------------------------------------------------------------------
 * Stats and free policy
 * ------------------------------------------------------------------------- */
static void test_stats(void) {
  af_bench_result r;
  af_error err;
  uint64_t ops = scaled(2500, 40);
  /* free mode: every pair freed at once */
  CHECKF(run("fixed-48", "libc", ops, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.stats.allocs == ops && r.stats.frees == ops && r.stats.blocks_in_use == 0 && r.stats.resets == 0,
        "libc fixed-48: allocs %" PRIu64 " frees %" PRIu64 " live %" PRIu64, r.stats.allocs, r.stats.frees,
        r.stats.blocks_in_use);
  CHECKF(r.bytes_requested == 48 * ops, "fixed-48 bytes_requested %" PRIu64, r.bytes_requested);
  /* arena mode: no frees, one reset per 1000 allocations */
  CHECKF(run("fixed-48", "bump", ops, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.stats.allocs == ops && r.stats.resets == ops / 1000 && r.stats.blocks_in_use == ops % 1000,
        "bump fixed-48: allocs %" PRIu64 " resets %" PRIu64 " live %" PRIu64, r.stats.allocs, r.stats.resets,
        r.stats.blocks_in_use);
  /* batch-100 holds a phase's blocks, then frees all of them */
  CHECKF(run("batch-100", "libc", 250, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.stats.allocs == 250 && r.stats.frees == 200 && r.stats.blocks_in_use == 50,
        "batch-100: allocs %" PRIu64 " frees %" PRIu64 " live %" PRIu64, r.stats.allocs, r.stats.frees,
        r.stats.blocks_in_use);
  CHECKF(r.bytes_requested == 2 * (50 * 1024 + 50 * 4096) + 50 * 1024, "batch-100 bytes %" PRIu64, r.bytes_requested);
  /* memory-pressure: 25 frees per 50 allocations */
  CHECKF(run("memory-pressure", "libc", 120, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.stats.frees == 50 && r.stats.blocks_in_use == 70, "memory-pressure: frees %" PRIu64 " live %" PRIu64,
        r.stats.frees, r.stats.blocks_in_use);
  /* pool: never more live blocks than slots */
  CHECKF(run("pool-64", "libc", 3000, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.stats.blocks_in_use <= 1000 && r.stats.blocks_in_use > 900 && r.stats.allocs - r.stats.frees ==
        r.stats.blocks_in_use, "pool-64: live %" PRIu64, r.stats.blocks_in_use);
  CHECKF(r.bytes_requested == 64 * 3000, "pool-64 bytes %" PRIu64, r.bytes_requested);
  /* large-cycle rotates 256 KiB, 1 MiB, 4 MiB */
  CHECKF(run("large-cycle", "libc", 4, 1, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.bytes_requested == (256 + 1024 + 4096 + 256) * 1024, "large-cycle bytes %" PRIu64, r.bytes_requested);
  /* time-budget mode reports the resources of the run */
  af_bench_config config = {.workload = "mixed", .allocator = "libc", .time_budget_ns = 1000000};
  CHECKF(af_bench_run(&config, &r, &err) == AF_OK, "%s", err.message);
  CHECKF(r.rss_before_bytes > 0 && r.rss_after_bytes > 0 && r.peak_rss_bytes >= r.rss_after_bytes / 2,
        "rss before %" PRIu64 " after %" PRIu64 " peak %" PRIu64, r.rss_before_bytes, r.rss_after_bytes,
        r.peak_rss_bytes);
  CHECKF(r.ns_per_op > 0.0 && r.elapsed_ns > 0, "elapsed %" PRIu64, r.elapsed_ns);
}

/* ----------------------------------------------------------------------------
 * Run modes
 * ------------------------------------------------------------------------- */
static int run_mode(const char *workload, const char *allocator, int mode, uint64_t ops, af_bench_result *r,
                    af_error *err) {
  af_bench_config config = {.workload = workload, .allocator = allocator, .ops = ops, .seed = 7, .mode = mode};
  memset(err, 0, sizeof *err);
  return af_bench_run(&config, r, err);
}

static bool is_available(const char *name) {
  for (size_t i = 0; i < allocator_count; i++)
    if (strcmp(allocators[i], name) == 0) return true;
  return false;
}

static void test_modes(void) {
  af_bench_result r, reference;
  af_error err;
  uint64_t ops = scaled(2500, 40);
  CHECKF(run_mode("fixed-48", "libc", AF_BENCH_MODE_AUTO, ops, &reference, &err) == AF_OK, "%s", err.message);
  CHECKF(reference.mode == AF_BENCH_MODE_FREE, "libc auto mode: %d", reference.mode);
  static const char *const both[] = {"mimalloc-heap", "jemalloc-arena", "null"};
  for (size_t i = 0; i < sizeof both / sizeof both[0]; i++) {
    if (!is_available(both[i])) continue;
    CHECKF(run_mode("fixed-48", both[i], AF_BENCH_MODE_AUTO, ops, &r, &err) == AF_OK, "%s", err.message);
    CHECKF(r.mode == AF_BENCH_MODE_FREE, "%s: auto should free, got mode %d", both[i], r.mode);
    CHECKF(run_mode("fixed-48", both[i], AF_BENCH_MODE_FREE, ops, &r, &err) == AF_OK, "%s", err.message);
    bool counts_frees = strcmp(both[i], "null") != 0; /* null's free does nothing, not even count */
    CHECKF(r.mode == AF_BENCH_MODE_FREE && (!counts_frees || r.stats.frees == ops) && r.stats.resets == 0 &&
              r.checksum == reference.checksum,
          "%s free mode: mode %d frees %" PRIu64 " resets %" PRIu64, both[i], r.mode, r.stats.frees, r.stats.resets);
    CHECKF(run_mode("fixed-48", both[i], AF_BENCH_MODE_ARENA, ops, &r, &err) == AF_OK, "%s", err.message);
    CHECKF(r.mode == AF_BENCH_MODE_ARENA && r.stats.frees == 0 && r.stats.resets == ops / 1000 &&
              r.checksum == reference.checksum,
          "%s arena mode: mode %d frees %" PRIu64 " resets %" PRIu64, both[i], r.mode, r.stats.frees, r.stats.resets);
    /* a workload that holds blocks: same checksum in both modes */
    af_bench_result freed, reset;
    CHECKF(run_mode("mixed", both[i], AF_BENCH_MODE_FREE, ops, &freed, &err) == AF_OK, "%s", err.message);
    CHECKF(run_mode("mixed", both[i], AF_BENCH_MODE_ARENA, ops, &reset, &err) == AF_OK, "%s", err.message);
    CHECKF(strcmp(both[i], "null") == 0 || freed.checksum == reset.checksum, "%s mixed: modes disagree", both[i]);
  }
  CHECKF(run_mode("fixed-48", "bump", AF_BENCH_MODE_AUTO, ops, &r, &err) == AF_OK && r.mode == AF_BENCH_MODE_ARENA,
        "bump auto mode: %d", r.mode);
  CHECKF(run_mode("fixed-48", "bump", AF_BENCH_MODE_FREE, ops, &r, &err) == AF_ERR_UNSUPPORTED &&
            strstr(err.message, "arena mode") != NULL,
        "bump in free mode: %s", err.message);
  CHECKF(run_mode("fixed-48", "libc", AF_BENCH_MODE_ARENA, ops, &r, &err) == AF_ERR_UNSUPPORTED &&
            strstr(err.message, "no reset") != NULL,
        "libc in arena mode: %s", err.message);
  CHECKF(run_mode("threads-2", "bump", AF_BENCH_MODE_FREE, ops, &r, &err) == AF_ERR_UNSUPPORTED,
        "bump in free mode on threads: %s", err.message);
  /* a shared instance frees: arena mode is refused, auto frees */
  if (is_available("jemalloc-arena")) {
    CHECKF(run_mode("shared-threads-2", "jemalloc-arena", AF_BENCH_MODE_ARENA, ops, &r, &err) == AF_ERR_UNSUPPORTED &&
              strstr(err.message, "shared instance") != NULL,
          "shared arena mode: %s", err.message);
    CHECKF(run_mode("shared-threads-2", "jemalloc-arena", AF_BENCH_MODE_AUTO, ops, &r, &err) == AF_OK &&
              r.mode == AF_BENCH_MODE_FREE,
          "shared auto mode: %d %s", r.mode, err.message);
  }
  CHECKF(run_mode("fixed-48", "libc", 3, ops, &r, &err) == AF_ERR_INVALID && strstr(err.message, "mode 3") != NULL,
        "mode 3: %s", err.message);
  CHECKF(run_mode("fixed-48", "libc", -1, ops, &r, &err) == AF_ERR_INVALID, "mode -1: %s", err.message);
}

int main(void) {
  test_table();
  find_allocators();
  test_every_workload();
  test_checksum_sees_overlap();
  test_determinism();
  test_time_budget();
  test_threads();
  test_shared_threads();
  test_touch();
  test_spec_equals_builtin();
  test_spec_across_allocators();
  test_spec_table();
  test_spec_refused();
  test_errors();
  test_stats();
  test_modes();
  return check_summary();
}
