/* ----------------------------------------------------------------------------
 * test_entry_points.c: the entry points chosen in syslib.c's table
 * (_af_entry_points) are the ones bound, and every rival they were measured
 * against (tools/entry_points.h) exists in the library and works.
 *
 * Checked per library, for every library that loads here (all four must,
 * except mimalloc under valgrind's default interception, see syslib.c):
 * - the table has exactly one row per library and the chosen pair is one of
 *   the measured candidates, so the measurement covers the choice;
 * - the function the allocator calls is the chosen symbol in the library's
 *   own handle (for jemalloc: its malloc/free, not mallocx/dallocx);
 * - every candidate is exported and runs its direct loop (alloc, tag, read
 *   back, free) on 48 and 4096 B blocks with the same checksum as the
 *   chosen pair: the rivals do the same work;
 * - the jemalloc allocator's blocks with alignment > 16 still come from the
 *   flags API and free through the chosen free.
 * No timing is asserted.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "check.h"
#include "syslib.h"
#include "tools/entry_points.h"

#include <dlfcn.h>
#include <stdlib.h>


static bool under_valgrind(void) { return getenv("AF_VALGRIND") != NULL; }

static const char *const LIBRARIES[] = {"libc", "mimalloc", "jemalloc", "tcmalloc"};

static void check_table_shape(void) {
  CHECKF(_af_entry_point_count == 4, "expected one row per library, got %zu", _af_entry_point_count);
  for (size_t i = 0; i < 4; i++) {
    const af_entry_choice *row = _af_entry_choice(LIBRARIES[i]);
    CHECKF(row != NULL, "no row for %s", LIBRARIES[i]);
    if (row == NULL) continue;
    bool measured = false;
    for (size_t k = 0; k < EP_CANDIDATE_COUNT; k++) {
      const ep_candidate *c = &ep_candidates[k];
      if (strcmp(c->library, row->library) == 0 && strcmp(c->alloc, row->alloc) == 0 &&
          strcmp(c->free, row->free) == 0)
        measured = c->loop == ep_plain_plain; /* the chosen shape is void *(size_t) / void (void *) */
    }
    CHECKF(measured, "%s: the chosen %s/%s is not a measured plain candidate", row->library, row->alloc, row->free);
  }
  CHECKF(_af_entry_choice("nonsense") == NULL, "unknown library has a row");
  af_direct_entry entry;
  af_error err = {0};
  CHECKF(_af_syslib_direct("nonsense", &entry, &err) == AF_ERR_INVALID, "unknown library accepted");
  CHECKF(strstr(err.message, "expected libc") != NULL, "message: %s", err.message);
  printf("ok   the table: one measured, plain pair per library\n");
}

/* The checksum of n direct pairs from a fixed stream. */
static uint64_t direct_checksum(ep_loop loop, void *alloc, void *free_fn, size_t size, uint64_t n, bool *ok) {
  direct_state st = {.rng = bench_mix64(42)};
  *ok = loop(alloc, free_fn, size, n, &st) == n && st.bytes == n * size;
  return st.sum;
}

static void check_library(const char *library) {
  af_direct_entry entry;
  af_error err = {0};
  int status = _af_syslib_direct(library, &entry, &err);
  if (status != AF_OK && under_valgrind() && strcmp(library, "mimalloc") == 0) {
    printf("skip %s under valgrind: %s\n", library, err.message);
    return;
  }
  CHECKF(status == AF_OK, "%s does not load: %s", library, err.message);
  if (status != AF_OK) return;
  const af_entry_choice *row = entry.choice;
  CHECKF(row != NULL && strcmp(row->library, library) == 0, "wrong row for %s", library);
  void *alloc_sym = dlsym(entry.handle, row->alloc), *free_sym = dlsym(entry.handle, row->free);
  CHECKF(alloc_sym != NULL && (void *)entry.malloc == alloc_sym, "%s: bound alloc is not %s", library, row->alloc);
  CHECKF(free_sym != NULL && (void *)entry.free == free_sym, "%s: bound free is not %s", library, row->free);

  /* The allocator's own table (system.c) holds the same functions. */
  void *table_malloc = NULL, *table_free = NULL;
  if (strcmp(library, "libc") == 0) {
    const af_libc_api *api = _af_syslib_libc(NULL);
    table_malloc = (void *)api->malloc, table_free = (void *)api->free;
  } else if (strcmp(library, "mimalloc") == 0) {
    const af_mimalloc_api *api = _af_syslib_mimalloc(NULL);
    table_malloc = (void *)api->malloc, table_free = (void *)api->free;
  } else if (strcmp(library, "jemalloc") == 0) {
    const af_jemalloc_api *api = _af_syslib_jemalloc(NULL);
    table_malloc = (void *)api->malloc, table_free = (void *)api->free;
    CHECKF((void *)api->mallocx == dlsym(entry.handle, "mallocx"), "jemalloc: mallocx not bound for alignment > 16");
  } else {
    const af_tcmalloc_api *api = _af_syslib_tcmalloc(NULL);
    table_malloc = (void *)api->malloc, table_free = (void *)api->free;
  }
  CHECKF(table_malloc == alloc_sym && table_free == free_sym, "%s: the allocator's table differs from the choice",
        library);

  static const size_t sizes[] = {48, 4096};
  for (size_t s = 0; s < 2; s++) {
    bool ok;
    uint64_t expected = direct_checksum(ep_plain_plain, alloc_sym, free_sym, sizes[s], 1000, &ok);
    CHECKF(ok, "%s: the chosen pair failed on %zu B", library, sizes[s]);
    for (size_t k = 0; k < EP_CANDIDATE_COUNT; k++) {
      const ep_candidate *c = &ep_candidates[k];
      if (strcmp(c->library, library) != 0) continue;
      if (strcmp(c->alloc, "mi_malloc_small") == 0 && sizes[s] > 1024) continue; /* its limit */
      void *a = dlsym(entry.handle, c->alloc), *f = dlsym(entry.handle, c->free);
      CHECKF(a != NULL && f != NULL, "%s does not export %s/%s", library, c->alloc, c->free);
      if (a == NULL || f == NULL) continue;
      uint64_t sum = direct_checksum(c->loop, a, f, sizes[s], 1000, &ok);
      CHECKF(ok && sum == expected, "%s %s/%s on %zu B: ok %d, checksum %llx != %llx", library, c->alloc, c->free,
            sizes[s], ok, (unsigned long long)sum, (unsigned long long)expected);
    }
  }
  printf("ok   %s: %s/%s bound; every rival exported and working\n", library, row->alloc, row->free);
}

/* The jemalloc allocator: small blocks through malloc/free, aligned ones
   through mallocx, every one freed by the chosen free. */
static void check_jemalloc_allocator(void) {
  af_error err = {0};
  af_allocator *a = af_create("jemalloc", &err);
  CHECKF(a != NULL, "jemalloc: %s", err.message);
  if (a == NULL) return;
  static const size_t aligns[] = {1, 16, 64, 4096};
  for (size_t i = 0; i < 4; i++) {
    for (size_t size = 0; size < 10000; size = size * 3 + 1) {
      uint8_t *p = af_alloc(a, size, aligns[i]);
      CHECKF(p != NULL && ((uintptr_t)p % aligns[i]) == 0, "alloc %zu align %zu", size, aligns[i]);
      if (p == NULL) continue;
      memset(p, 0xab, size);
      p = af_realloc(a, p, size, size + 100, aligns[i]);
      CHECKF(p != NULL && ((uintptr_t)p % aligns[i]) == 0 && (size == 0 || p[size - 1] == 0xab),
            "realloc %zu align %zu", size, aligns[i]);
      CHECKF(af_free(a, p, size + 100, aligns[i]) == AF_OK, "free");
      uint8_t *z = af_calloc(a, size, aligns[i]);
      CHECKF(z != NULL && (size == 0 || (z[0] == 0 && z[size - 1] == 0)), "calloc %zu align %zu", size, aligns[i]);
      if (z != NULL) af_free(a, z, size, aligns[i]);
    }
  }
  af_stats st;
  af_get_stats(a, &st);
  CHECKF(st.blocks_in_use == 0 && st.failures == 0, "stats: %llu live, %llu failures",
        (unsigned long long)st.blocks_in_use, (unsigned long long)st.failures);
  af_destroy(a);
  printf("ok   jemalloc allocator: malloc/free below 16, mallocx above, one free for both\n");
}

int main(void) {
  check_table_shape();
  for (size_t i = 0; i < 4; i++) check_library(LIBRARIES[i]);
  check_jemalloc_allocator();
  return check_summary();
}
