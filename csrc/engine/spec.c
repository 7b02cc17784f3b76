/* ----------------------------------------------------------------------------
 * spec.c: workload specs (af_workload_spec, a user's own pattern): the
 * checks af_bench_run makes before running one, and the size table the
 * kernels draw from.
 *
 * The size table has BENCH_SPEC_TABLE_SIZE ranges; an op picks one with 10
 * random bits, then a size uniformly inside it (one lookup, one multiply: the
 * same cost as the built-in mixed workload). Entries get slots in
 * proportion to their weights (largest remainder, at least one slot each
 * for a weight > 0), so weights are honoured to within 1/1024. A uniform
 * entry puts its whole [min, max] in each of its slots. A log-normal entry
 * splits its slots at equal quantiles of the log-normal truncated to
 * [min, max]: slot j of k is uniform between the j/k and (j+1)/k quantiles,
 * a piecewise-uniform inverse CDF with k pieces. Everything here runs
 * before timing.
 * ------------------------------------------------------------------------- */
#include "engine/bench.h"

#include <math.h>

/* ----------------------------------------------------------------------------
 * Checks
 * ------------------------------------------------------------------------- */

static bool name_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '.' ||
         ch == '_' || ch == '-';
}

/* The spec's name for messages: never NULL, never overlong. */
static const char *shown_name(const af_workload_spec *spec) {
  return spec->name != NULL && strnlen(spec->name, AF_SPEC_MAX_NAME + 1) <= AF_SPEC_MAX_NAME ? spec->name : "?";
}

static int check_name(const af_workload_spec *spec, af_error *err) {
  const char *name = spec->name;
  size_t length = name == NULL ? 0 : strnlen(name, AF_SPEC_MAX_NAME + 1);
  if (length == 0 || length > AF_SPEC_MAX_NAME)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec: name must have 1 to %d characters",
                         AF_SPEC_MAX_NAME);
  for (size_t i = 0; i < length; i++)
    if (!name_char(name[i]))
      return _af_error_set(err, AF_ERR_INVALID,
                           "workload spec '%s': name may only hold letters, digits, '.', '_' and '-'", name);
  /* A name goes on command lines and into file names: never one read as an option or a hidden file. */
  if (name[0] == '-' || name[0] == '.')
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': name must start with a letter or a digit",
                         name);
  return AF_OK;
}

static int check_entry(const af_workload_spec *spec, size_t i, af_error *err) {
  const af_size_entry *e = &spec->sizes[i];
  const char *name = spec->name;
  if (e->min < AF_SPEC_MIN_SIZE || e->max > AF_SPEC_MAX_SIZE)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes[%zu]: sizes must be in [%d, %d] (got %llu..%llu)",
                         name, i, AF_SPEC_MIN_SIZE, AF_SPEC_MAX_SIZE, (unsigned long long)e->min,
                         (unsigned long long)e->max);
  if (e->min > e->max)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes[%zu]: min %llu > max %llu", name, i,
                         (unsigned long long)e->min, (unsigned long long)e->max);
  if (!(e->weight >= 0.0) || !isfinite(e->weight))
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes[%zu]: weight must be a finite number >= 0",
                         name, i);
  if (e->median == 0.0) {
    if (e->sigma != 0.0)
      return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes[%zu]: sigma without a log-normal median",
                           name, i);
    return AF_OK;
  }
  if (!(e->median >= (double)e->min && e->median <= (double)e->max))
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes[%zu]: median must lie in [min, max]", name,
                         i);
  if (!(e->sigma > 0.0 && e->sigma <= 10.0))
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes[%zu]: sigma must be in (0, 10]", name, i);
  return AF_OK;
}

int _af_bench_spec_check(const af_workload_spec *spec, af_error *err) {
  int status = check_name(spec, err);
  if (status != AF_OK) return status;
  const char *name = shown_name(spec);
  if (spec->kernel < AF_KERNEL_PAIRS || spec->kernel > AF_KERNEL_PRESSURE)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': unknown kernel %d", name, spec->kernel);
  if (spec->touch < AF_TOUCH_ENDS || spec->touch > AF_TOUCH_ALL)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': unknown touch policy %d", name, spec->touch);
  if (spec->sizes == NULL || spec->size_count == 0 || spec->size_count > AF_SPEC_MAX_ENTRIES)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': sizes must have 1 to %d entries", name,
                         AF_SPEC_MAX_ENTRIES);
  if (spec->phase == 0 || spec->phase > AF_SPEC_MAX_PHASE)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': phase must be in [1, %d]", name,
                         AF_SPEC_MAX_PHASE);
  if (spec->kernel == AF_KERNEL_REPLACE && (spec->live == 0 || spec->live > AF_SPEC_MAX_LIVE))
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': kernel replace needs live in [1, %d]", name,
                         AF_SPEC_MAX_LIVE);
  if (spec->kernel != AF_KERNEL_REPLACE && spec->live != 0)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': live is only for kernel replace", name);
  if (spec->threads > AF_SPEC_MAX_THREADS)
    return _af_error_set(err, AF_ERR_INVALID, "workload spec '%s': threads must be in [0, %d]", name,
                         AF_SPEC_MAX_THREADS);
  double total = 0.0;
  for (size_t i = 0; i < spec->size_count; i++) {
    status = check_entry(spec, i, err);
    if (status != AF_OK) return status;
    total += spec->sizes[i].weight;
  }
  if (!(total > 0.0) || !isfinite(total))
    return _af_error_set(err, AF_ERR_INVALID,
                         "workload spec '%s': the weights of sizes must add up to a finite number more than 0", name);
  return AF_OK;
}

/* ----------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------- */

/* Standard normal CDF and its inverse (bisection: set-up only, 1024 calls). */
static double normal_cdf(double z) { return 0.5 * erfc(-z / M_SQRT2); }

static double normal_quantile(double p) {
  double lo = -40.0, hi = 40.0;
  for (int i = 0; i < 200 && hi - lo > 1e-12; i++) {
    double mid = 0.5 * (lo + hi);
    if (normal_cdf(mid) < p) lo = mid;
    else hi = mid;
  }
  return 0.5 * (lo + hi);
}

/* The q-quantile (0 <= q <= 1) of the entry's log-normal truncated to [min, max]. */
static double lognormal_quantile(const af_size_entry *e, double q) {
  double mu = log(e->median);
  double lo = normal_cdf((log((double)e->min) - mu) / e->sigma);
  double hi = normal_cdf((log((double)e->max) - mu) / e->sigma);
  double x = exp(mu + e->sigma * normal_quantile(lo + q * (hi - lo)));
  if (!(x >= (double)e->min)) x = (double)e->min; /* also catches NaN */
  if (x > (double)e->max) x = (double)e->max;
  return x;
}

/* Slots per entry: at least one for each weight > 0, the rest by largest
   remainder of weight / total. */
static void share_slots(const af_workload_spec *spec, uint32_t *slots) {
  size_t n = spec->size_count, given = 0, positive = 0;
  double total = 0.0;
  for (size_t i = 0; i < n; i++) {
    slots[i] = spec->sizes[i].weight > 0.0;
    positive += slots[i];
    total += spec->sizes[i].weight;
  }
  size_t rest = BENCH_SPEC_TABLE_SIZE - positive;
  double remainder[AF_SPEC_MAX_ENTRIES];
  for (size_t i = 0; i < n; i++) {
    double exact = spec->sizes[i].weight / total * (double)rest;
    uint32_t whole = (uint32_t)exact;
    slots[i] += whole;
    given += whole;
    remainder[i] = spec->sizes[i].weight > 0.0 ? exact - whole : -1.0; /* weight 0: never a slot */
  }
  for (; given < rest; given++) {
    size_t best = 0;
    for (size_t i = 1; i < n; i++)
      if (remainder[i] > remainder[best]) best = i;
    slots[best]++;
    remainder[best] = -1.0;
  }
}

static size_range range_of(uint64_t lo, uint64_t hi) { return (size_range){lo, hi - lo + 1}; }

void _af_bench_spec_table(const af_workload_spec *spec, size_range *table) {
  uint32_t slots[AF_SPEC_MAX_ENTRIES];
  share_slots(spec, slots);
  size_t next = 0;
  for (size_t i = 0; i < spec->size_count; i++) {
    const af_size_entry *e = &spec->sizes[i];
    for (uint32_t j = 0; j < slots[i]; j++) {
      if (e->median == 0.0) {
        table[next++] = range_of(e->min, e->max);
        continue;
      }
      uint64_t lo = (uint64_t)llround(lognormal_quantile(e, (double)j / slots[i]));
      uint64_t hi = j + 1 == slots[i] ? e->max : (uint64_t)llround(lognormal_quantile(e, (double)(j + 1) / slots[i]));
      if (hi > lo && j + 1 < slots[i]) hi--; /* the next slot starts there */
      if (hi < lo) hi = lo;
      table[next++] = range_of(lo, hi);
    }
  }
}
