/* ----------------------------------------------------------------------------
 * test_calibrate.c: af_calibrate_direct does the engine's work.
 *
 * For every library that loads and every fixed-N workload, the direct loop
 * and af_bench_run on the same seed and ops compute the same checksum and
 * bytes (so only the call path differs), the direct loop fills the result
 * it promises, and bad arguments are refused with a message. No timing is
 * asserted.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "afbench.h"
#include "check.h"

#include <inttypes.h>
#include <stdlib.h>


static const char *const LIBRARIES[] = {"libc", "mimalloc", "jemalloc", "tcmalloc"};
static const char *const WORKLOADS[] = {"fixed-48", "fixed-256", "fixed-4096"};

static void check_same_work(const char *library) {
  af_error err = {0};
  if (af_available(library, &err) != AF_OK) {
    /* mimalloc under valgrind's default interception; nothing else may be missing */
    CHECKF(getenv("AF_VALGRIND") != NULL && strcmp(library, "mimalloc") == 0, "%s: %s", library, err.message);
    printf("skip %s: %s\n", library, err.message);
    return;
  }
  for (size_t w = 0; w < 3; w++) {
    for (uint64_t seed = 0; seed < 2; seed++) {
      af_bench_result direct, engine;
      uint64_t ops = 2500 + seed;
      int status = af_calibrate_direct(library, WORKLOADS[w], ops, seed, &direct, &err);
      CHECKF(status == AF_OK, "%s %s direct: %s", library, WORKLOADS[w], err.message);
      af_bench_config config = {.workload = WORKLOADS[w], .allocator = library, .ops = ops, .seed = seed};
      status = af_bench_run(&config, &engine, &err);
      CHECKF(status == AF_OK, "%s %s engine: %s", library, WORKLOADS[w], err.message);
      CHECKF(direct.ops == ops && engine.ops == ops, "ops %" PRIu64 " / %" PRIu64, direct.ops, engine.ops);
      CHECKF(direct.checksum == engine.checksum, "%s %s seed %" PRIu64 ": checksum %016" PRIx64 " != engine %016" PRIx64,
            library, WORKLOADS[w], seed, direct.checksum, engine.checksum);
      CHECKF(direct.bytes_requested == engine.bytes_requested, "bytes %" PRIu64 " != %" PRIu64, direct.bytes_requested,
            engine.bytes_requested);
      CHECKF(direct.threads == 1 && direct.mode == AF_BENCH_MODE_FREE && engine.mode == AF_BENCH_MODE_FREE,
            "threads %u mode %d/%d", direct.threads, direct.mode, engine.mode);
      CHECKF(direct.elapsed_ns > 0 && direct.ns_per_op > 0.0, "elapsed %" PRIu64, direct.elapsed_ns);
    }
  }
  printf("ok   %s: direct loop == engine's work on fixed-48/256/4096\n", library);
}

static void check_errors(void) {
  af_bench_result r;
  af_error err = {0};
  CHECKF(af_calibrate_direct("bump", "fixed-48", 10, 0, &r, &err) == AF_ERR_INVALID &&
            strstr(err.message, "expected libc") != NULL,
        "bump: %s", err.message);
  CHECKF(af_calibrate_direct(NULL, "fixed-48", 10, 0, &r, &err) == AF_ERR_INVALID, "NULL library");
  CHECKF(af_calibrate_direct("libc", "mixed", 10, 0, &r, &err) == AF_ERR_INVALID && strstr(err.message, "mixed") != NULL,
        "mixed: %s", err.message);
  CHECKF(af_calibrate_direct("libc", NULL, 10, 0, &r, &err) == AF_ERR_INVALID, "NULL workload");
  CHECKF(af_calibrate_direct("libc", "fixed-48", 0, 0, &r, &err) == AF_ERR_INVALID, "0 ops");
  CHECKF(af_calibrate_direct("libc", "fixed-48", 10, 0, NULL, &err) == AF_ERR_INVALID, "NULL result");
  CHECKF(af_calibrate_direct("libc", "fixed-48", 10, 0, &r, NULL) == AF_OK, "err may be NULL");
  printf("ok   bad arguments refused\n");
}

int main(void) {
  for (size_t i = 0; i < 4; i++) check_same_work(LIBRARIES[i]);
  check_errors();
  return check_summary();
}
