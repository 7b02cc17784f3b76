/* ----------------------------------------------------------------------------
 * test_footprint.c: af_get_footprint reports what each system library knows,
 * marks the rest unknown, and refuses our own allocators.
 *
 * Per library: the figures it can give are marked known (and only those);
 * the bytes it says are allocated or mapped grow when a 16 MiB block is
 * allocated and touched through the allocator; the same works through
 * af_locked_new (the wrapper the Python layer uses). Under valgrind, whose
 * malloc replaces glibc's (and hides mallinfo2's figures), the glibc growth
 * check is skipped, and so is mimalloc when valgrind intercepts it.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "check.h"

#include <inttypes.h>
#include <stdlib.h>


static bool under_valgrind(void) { return getenv("AF_VALGRIND") != NULL; }

#define BIG ((size_t)16 << 20)

typedef struct expectation {
  const char *allocator;
  uint32_t known;             /* exactly these bits */
  uint32_t grows;             /* the figure that must follow a BIG block: ALLOCATED (grows by BIG) or
                                 MAPPED (at least BIG: mimalloc commits whole segments ahead) */
} expectation;

static const expectation EXPECTED[] = {
  {"libc", AF_FOOTPRINT_ALLOCATED | AF_FOOTPRINT_MAPPED, AF_FOOTPRINT_ALLOCATED},
  {"mimalloc",
   AF_FOOTPRINT_MAPPED | AF_FOOTPRINT_PEAK_MAPPED | AF_FOOTPRINT_PROCESS_PEAK_RESIDENT, AF_FOOTPRINT_MAPPED},
  {"mimalloc-heap",
   AF_FOOTPRINT_MAPPED | AF_FOOTPRINT_PEAK_MAPPED | AF_FOOTPRINT_PROCESS_PEAK_RESIDENT, AF_FOOTPRINT_MAPPED},
  {"jemalloc", AF_FOOTPRINT_ALLOCATED | AF_FOOTPRINT_ACTIVE | AF_FOOTPRINT_RESIDENT | AF_FOOTPRINT_MAPPED,
   AF_FOOTPRINT_ALLOCATED},
  {"jemalloc-arena", AF_FOOTPRINT_ALLOCATED | AF_FOOTPRINT_ACTIVE | AF_FOOTPRINT_RESIDENT | AF_FOOTPRINT_MAPPED,
   AF_FOOTPRINT_ALLOCATED},
  {"tcmalloc", AF_FOOTPRINT_ALLOCATED | AF_FOOTPRINT_RESIDENT | AF_FOOTPRINT_MAPPED, AF_FOOTPRINT_ALLOCATED},
};

static uint64_t figure(const af_footprint *f, uint32_t bit) {
  return bit == AF_FOOTPRINT_ALLOCATED ? f->allocated_bytes : f->mapped_bytes;
}

static void check_system(const expectation *e, bool locked) {
  af_error err = {0};
  if (af_available(e->allocator, &err) != AF_OK) {
    CHECKF(under_valgrind() && strncmp(e->allocator, "mimalloc", 8) == 0, "%s: %s", e->allocator, err.message);
    printf("skip %s: %s\n", e->allocator, err.message);
    return;
  }
  af_allocator *a = af_create(e->allocator, &err);
  CHECKF(a != NULL, "%s: %s", e->allocator, err.message);
  if (a == NULL) return;
  if (locked) a = af_locked_new(a, &err);
  af_footprint before, after;
  CHECKF(af_get_footprint(a, &before) == AF_OK, "%s", e->allocator);
  CHECKF(before.known == e->known, "%s: known %#x, expected %#x", e->allocator, before.known, e->known);
  uint8_t *p = af_alloc(a, BIG, 16);
  CHECKF(p != NULL, "%s: no 16 MiB block", e->allocator);
  if (p != NULL) memset(p, 1, BIG);
  CHECKF(af_get_footprint(a, &after) == AF_OK && after.known == e->known, "%s again", e->allocator);
  bool skip_growth = under_valgrind() && strcmp(e->allocator, "libc") == 0;
  if (!skip_growth)
    CHECKF(figure(&after, e->grows) >= (e->grows == AF_FOOTPRINT_ALLOCATED ? figure(&before, e->grows) : 0) + BIG,
          "%s: %" PRIu64 " -> %" PRIu64, e->allocator, figure(&before, e->grows), figure(&after, e->grows));
  if (after.known & AF_FOOTPRINT_RESIDENT)
    CHECKF(after.resident_bytes > 0 && after.resident_bytes <= after.mapped_bytes, "%s resident %" PRIu64,
          e->allocator, after.resident_bytes);
  if (after.known & AF_FOOTPRINT_PEAK_MAPPED)
    CHECKF(after.peak_mapped_bytes >= after.mapped_bytes, "%s peak below current", e->allocator);
  if (p != NULL) af_free(a, p, BIG, 16);
  af_destroy(a);
  printf("ok   %s%s: known %#x\n", e->allocator, locked ? " (locked)" : "", e->known);
}

static void check_ours(void) {
  static const char *const ours[] = {"bump", "slab", "large", "mmap", "null"};
  for (size_t i = 0; i < sizeof ours / sizeof ours[0]; i++) {
    af_allocator *a = af_create(ours[i], NULL);
    af_footprint f;
    memset(&f, 0xff, sizeof f);
    CHECKF(af_get_footprint(a, &f) == AF_ERR_UNSUPPORTED && f.known == 0, "%s: known %#x", ours[i], f.known);
    af_destroy(a);
  }
  CHECKF(af_get_footprint(NULL, NULL) == AF_ERR_INVALID, "NULL accepted");
  printf("ok   ours and the baselines: unsupported, nothing known\n");
}

int main(void) {
  for (size_t i = 0; i < sizeof EXPECTED / sizeof EXPECTED[0]; i++) {
    check_system(&EXPECTED[i], false);
    check_system(&EXPECTED[i], true);
  }
  check_ours();
  return check_summary();
}
