/* ----------------------------------------------------------------------------
 * calibrate.c: the engine's fixed-N work with the library called directly,
 * for `allocffi calibrate`.
 *
 * af_calibrate_direct runs the loop of engine/direct.h on one system library
 * through the entry points syslib.c chose for it (_af_entry_points), called
 * through plain function pointers: no vtable, no counters, no size floor.
 * af_bench_run on the same workload, allocator, seed and ops does the same
 * work through the allocator's vtable, so the difference of the two is what
 * allocffi's wrapper adds, and the checksums are equal (the test checks it).
 * ------------------------------------------------------------------------- */
#include "engine/bench.h"
#include "engine/direct.h"
#include "syslib.h"

DIRECT_PAIRS(calibrate_pairs, direct_malloc_fn, alloc_fn(size), direct_free_fn, free_fn(p))

/* The block size of "fixed-48", "fixed-256" or "fixed-4096"; 0 otherwise. */
static size_t fixed_size(const char *workload) {
  static const struct { const char *name; size_t size; } fixed[] = {
    {"fixed-48", 48}, {"fixed-256", 256}, {"fixed-4096", 4096}};
  for (size_t i = 0; workload != NULL && i < sizeof fixed / sizeof fixed[0]; i++)
    if (strcmp(workload, fixed[i].name) == 0) return fixed[i].size;
  return 0;
}

int af_calibrate_direct(const char *library, const char *workload, uint64_t ops, uint64_t seed,
                        af_bench_result *out, af_error *err) {
  if (out == NULL) return _af_error_set(err, AF_ERR_INVALID, "af_calibrate_direct needs a result");
  memset(out, 0, sizeof *out);
  size_t size = fixed_size(workload);
  if (size == 0)
    return _af_error_set(err, AF_ERR_INVALID, "calibration runs fixed-48, fixed-256 or fixed-4096, not '%.32s'",
                         workload == NULL ? "(null)" : workload);
  if (ops == 0) return _af_error_set(err, AF_ERR_INVALID, "calibration needs ops > 0");
  af_direct_entry entry;
  int status = _af_syslib_direct(library, &entry, err);
  if (status != AF_OK) return status;

  /* The stream of the engine's single worker (engine.c: worker_setup). */
  direct_state st = {.rng = bench_mix64(seed != 0 ? seed : BENCH_DEFAULT_SEED)};
  uint64_t start = _af_now_ns();
  uint64_t done = calibrate_pairs((void *)entry.malloc, (void *)entry.free, size, ops, &st);
  uint64_t end = _af_now_ns();
  if (done != ops)
    return _af_error_set(err, AF_ERR_NOMEM, "%s ran out of memory after %llu ops of %s", library,
                         (unsigned long long)done, workload);
  out->elapsed_ns = end - start;
  out->ops = done;
  out->ns_per_op = (double)out->elapsed_ns / (double)done;
  out->checksum = bench_mix64(st.sum); /* as af_bench_run folds its one worker's sum */
  out->bytes_requested = st.bytes;
  out->threads = 1;
  out->mode = AF_BENCH_MODE_FREE;
  return AF_OK;
}
