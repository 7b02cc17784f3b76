/* ----------------------------------------------------------------------------
 * errors_and_clock.c: the small services every file shares and no alloc path calls:
 * status texts, error filling, assertion failure, the clock. They live apart
 * from the entry points (api.c) so that any file may use them without
 * depending on the dispatch layer.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"

#include <stdarg.h>
#include <stdlib.h>
#include <time.h>

const char *af_status_text(int status) {
  switch (status) {
    case AF_OK: return "ok";
    case AF_ERR_NOMEM: return "out of memory";
    case AF_ERR_LIMIT: return "byte limit reached";
    case AF_ERR_SIZE: return "size too large";
    case AF_ERR_ALIGN: return "alignment must be a power of two no larger than 4096";
    case AF_ERR_UNSUPPORTED: return "operation not supported by this allocator";
    case AF_ERR_NOT_OWNED: return "pointer not owned by this allocator";
    case AF_ERR_UNAVAILABLE: return "allocator unavailable";
    case AF_ERR_INVALID: return "invalid argument";
    case AF_ERR_THREAD: return "called from a thread this allocator is not bound to";
    default: return "unknown status";
  }
}

int _af_error_set(af_error *err, int code, const char *fmt, ...) {
  if (err != NULL) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return code;
}

void _af_assert_fail(const char *expr, const char *file, int line) {
  fprintf(stderr, "allocffi: assertion failed: %s (%s:%d)\n", expr, file, line);
  abort();
}

uint64_t _af_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

