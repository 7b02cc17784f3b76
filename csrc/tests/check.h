/* ----------------------------------------------------------------------------
 * check.h: the few helpers the C test programs share (header only).
 *
 * CHECK(cond), CHECK_EQ(a, b) and CHECKF(cond, fmt, ...) count a pass or report
 * a failure (file, line, expression; the values for CHECK_EQ, the formatted
 * explanation for CHECKF) and carry on; check_summary() prints the
 * final line "N passed, M failed" and returns the process exit status.
 * test_scale() reads AF_TEST_SCALE (default 1.0; valgrind runs use 0.05) so
 * tests can scale their operation counts.
 * ------------------------------------------------------------------------- */
#ifndef AF_TESTS_CHECK_H
#define AF_TESTS_CHECK_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static atomic_ulong check_passes;
static atomic_ulong check_failures;

/* Only the first failures are printed: a broken invariant in a loop would
   otherwise bury the useful first report. */
#define CHECK_MAX_REPORTS 25

static inline void check_report(const char *file, int line, const char *what) {
  if (atomic_fetch_add(&check_failures, 1) < CHECK_MAX_REPORTS) fprintf(stderr, "FAIL %s:%d: %s\n", file, line, what);
}

#define CHECK(cond)                                                                                                  \
  do {                                                                                                               \
    if (cond) atomic_fetch_add_explicit(&check_passes, 1, memory_order_relaxed);                                     \
    else check_report(__FILE__, __LINE__, #cond);                                                                    \
  } while (0)

#define CHECK_EQ(a, b)                                                                                               \
  do {                                                                                                               \
    uint64_t check_a_ = (uint64_t)(a), check_b_ = (uint64_t)(b);                                                     \
    if (check_a_ == check_b_) {                                                                                      \
      atomic_fetch_add_explicit(&check_passes, 1, memory_order_relaxed);                                             \
    } else {                                                                                                         \
      char check_msg_[256];                                                                                          \
      snprintf(check_msg_, sizeof check_msg_, "%s == %s (%" PRIu64 " != %" PRIu64 ")", #a, #b, check_a_, check_b_); \
      check_report(__FILE__, __LINE__, check_msg_);                                                                  \
    }                                                                                                                \
  } while (0)

/* CHECK with a printf-style explanation of what was seen. */
#define CHECKF(cond, ...)                                                                                          \
  do {                                                                                                             \
    if (cond) atomic_fetch_add_explicit(&check_passes, 1, memory_order_relaxed);                                   \
    else check_reportf(__FILE__, __LINE__, #cond, __VA_ARGS__);                                                    \
  } while (0)

static inline void check_reportf(const char *file, int line, const char *what, const char *format, ...)
    __attribute__((format(printf, 4, 5)));
static inline void check_reportf(const char *file, int line, const char *what, const char *format, ...) {
  char message[512];
  int used = snprintf(message, sizeof message, "%s: ", what);
  if (used >= 0 && (size_t)used < sizeof message) {
    va_list ap;
    va_start(ap, format);
    vsnprintf(message + used, sizeof message - (size_t)used, format, ap);
    va_end(ap);
  }
  check_report(file, line, message);
}

static inline double test_scale(void) {
  const char *s = getenv("AF_TEST_SCALE");
  double v = s != NULL ? atof(s) : 1.0;
  return v > 0 ? v : 1.0;
}

/* n scaled by AF_TEST_SCALE, at least `floor`. */
static inline uint64_t scaled(uint64_t n, uint64_t floor) {
  double v = (double)n * test_scale();
  return v < (double)floor ? floor : (uint64_t)v;
}

/* splitmix64: a small deterministic PRNG for the tests. */
static inline uint64_t test_rand(uint64_t *state) {
  uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

static inline int check_summary(void) {
  unsigned long passed = atomic_load(&check_passes), failed = atomic_load(&check_failures);
  printf("%lu passed, %lu failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}

#endif /* AF_TESTS_CHECK_H */
