/* ----------------------------------------------------------------------------
 * system.c: glibc malloc, mimalloc, jemalloc and tcmalloc behind the vtable.
 *
 * Each instance is a thin counting wrapper around the process-wide heap of
 * its library: the heap is thread-safe, the wrapper's counters are plain
 * integers, so one instance per thread (as the benchmark engine makes) is
 * safe, and one instance shared by threads needs af_locked_new.
 *
 * A call costs the vtable's indirect call, one indirect call into the
 * library through the copied function table, and the counter updates.
 *
 * Invariants of the fast paths:
 * - align <= 16 uses the library's plain malloc; mimalloc, jemalloc and
 *   tcmalloc align blocks of 8 bytes or less to 8 only, so requests below
 *   AF_SYSLIB_SMALL_FLOOR are rounded up to it (jemalloc's mallocx(0) is
 *   undefined, so its aligned paths ask for at least 1 byte). Larger alignments use the aligned
 *   entry point. Counters always count the requested size.
 * - align <= 16 calls the entry points chosen by measurement in syslib.c
 *   (_af_entry_points): malloc/free for glibc and jemalloc, mi_malloc/mi_free,
 *   tc_malloc/tc_free. Free is unsized everywhere: measured no slower than
 *   the sized variants, and it cannot disagree with a realloc that kept a
 *   block in place.
 * - realloc with align > 16 where the library has no aligned realloc (glibc,
 *   tcmalloc) is alloc + copy + free.
 * - free counts before it calls the library (a free cannot fail), so the
 *   wrapper keeps nothing across the call: no registers to save, 6 fewer
 *   instructions per free (callgrind, `make calibrate-callgrind`).
 * ------------------------------------------------------------------------- */
#include "syslib.h"

#include <stdlib.h>

static inline size_t small_floor(size_t size) {
  return size < AF_SYSLIB_SMALL_FLOOR ? AF_SYSLIB_SMALL_FLOOR : size;
}
static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Shared by the four wrappers: they differ only in the function table. */
#define SYSTEM_ALLOCATOR(api_type) \
  struct {                                                                        \
    af_allocator base;   /* first: vtable and last_error */                       \
    af_counters counters; /* this instance's calls only */                        \
    api_type api;        /* copy of the library's table: one load less per call */ \
  }

static int system_owns(af_allocator *self, const void *ptr) {
  (void)self, (void)ptr;
  return -1; /* a process-wide heap: anybody's block may be in it */
}
static int system_reset(af_allocator *self) {
  (void)self;
  return AF_ERR_UNSUPPORTED;
}
static void system_trim(af_allocator *self) { (void)self; }

#define SYSTEM_CAPS (AF_CAP_SYSTEM | AF_CAP_FREE)

/* ----------------------------------------------------------------------------
 * glibc: malloc aligns everything to 16 on x86-64, size 0 included.
 * ------------------------------------------------------------------------- */
typedef SYSTEM_ALLOCATOR(af_libc_api) libc_allocator;

static void *libc_alloc(af_allocator *self, size_t size, size_t align) {
  libc_allocator *a = (libc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? a->api.malloc(size) : a->api.aligned_alloc(align, size);
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static void *libc_calloc(af_allocator *self, size_t size, size_t align) {
  libc_allocator *a = (libc_allocator *)self;
  void *p;
  if (align <= AF_SYSLIB_MIN_ALIGN) {
    p = a->api.calloc(1, size); /* knows when its memory is fresh from the OS */
  } else {
    p = a->api.aligned_alloc(align, size);
    if (p != NULL) memset(p, 0, size);
  }
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static int libc_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  libc_allocator *a = (libc_allocator *)self;
  (void)align;
  af_count_free(&a->counters, size); /* first: nothing is needed after the call (see the banner) */
  a->api.free(ptr);
  return AF_OK;
}

static void *libc_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  libc_allocator *a = (libc_allocator *)self;
  void *p;
  if (align <= AF_SYSLIB_MIN_ALIGN) {
    p = a->api.realloc(ptr, new_size == 0 ? 1 : new_size); /* realloc(p, 0) would free p */
  } else {
    p = a->api.aligned_alloc(align, new_size);
    if (p != NULL) {
      memcpy(p, ptr, min_size(old_size, new_size));
      a->api.free(ptr);
    }
  }
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_realloc(&a->counters, old_size, new_size);
  return p;
}

static size_t libc_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  return ((libc_allocator *)self)->api.malloc_usable_size((void *)ptr);
}

static void libc_get_stats(af_allocator *self, af_stats *out) {
  af_counters_fill(&((libc_allocator *)self)->counters, out);
}

/* ----------------------------------------------------------------------------
 * mimalloc: aligned realloc and zeroing allocation of its own.
 * ------------------------------------------------------------------------- */
typedef SYSTEM_ALLOCATOR(af_mimalloc_api) mimalloc_allocator;

static void *mimalloc_alloc(af_allocator *self, size_t size, size_t align) {
  mimalloc_allocator *a = (mimalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? a->api.malloc(small_floor(size))
                                         : a->api.malloc_aligned(size, align);
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static void *mimalloc_calloc(af_allocator *self, size_t size, size_t align) {
  mimalloc_allocator *a = (mimalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? a->api.zalloc(small_floor(size))
                                         : a->api.zalloc_aligned(size, align);
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static int mimalloc_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  mimalloc_allocator *a = (mimalloc_allocator *)self;
  (void)align;
  af_count_free(&a->counters, size); /* first: nothing is needed after the call (see the banner) */
  a->api.free(ptr);
  return AF_OK;
}

static void *mimalloc_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size,
                              size_t align) {
  mimalloc_allocator *a = (mimalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? a->api.realloc(ptr, small_floor(new_size))
                                         : a->api.realloc_aligned(ptr, new_size, align);
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_realloc(&a->counters, old_size, new_size);
  return p;
}

static size_t mimalloc_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  return ((mimalloc_allocator *)self)->api.usable_size(ptr);
}

static void mimalloc_get_stats(af_allocator *self, af_stats *out) {
  af_counters_fill(&((mimalloc_allocator *)self)->counters, out);
}

/* ----------------------------------------------------------------------------
 * jemalloc: the standard names for align <= 16 (its fast path: mallocx and
 * dallocx cost 2.4x more per pair, see syslib.c), mallocx-style flags above.
 * ------------------------------------------------------------------------- */
typedef SYSTEM_ALLOCATOR(af_jemalloc_api) jemalloc_allocator;

static inline int jemalloc_align_flags(size_t align) { return AF_MALLOCX_LG_ALIGN(af_log2(align)); }

static void *jemalloc_alloc(af_allocator *self, size_t size, size_t align) {
  jemalloc_allocator *a = (jemalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? a->api.malloc(small_floor(size))
                                         : a->api.mallocx(size == 0 ? 1 : size, jemalloc_align_flags(align));
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static void *jemalloc_calloc(af_allocator *self, size_t size, size_t align) {
  jemalloc_allocator *a = (jemalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN
              ? a->api.calloc(1, small_floor(size))
              : a->api.mallocx(size == 0 ? 1 : size, jemalloc_align_flags(align) | AF_MALLOCX_ZERO);
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static int jemalloc_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  jemalloc_allocator *a = (jemalloc_allocator *)self;
  (void)align;
  af_count_free(&a->counters, size); /* first: nothing is needed after the call (see the banner) */
  a->api.free(ptr);
  return AF_OK;
}

static void *jemalloc_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size,
                              size_t align) {
  jemalloc_allocator *a = (jemalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN
              ? a->api.realloc(ptr, small_floor(new_size)) /* never 0: that would free ptr */
              : a->api.rallocx(ptr, new_size == 0 ? 1 : new_size, jemalloc_align_flags(align));
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_realloc(&a->counters, old_size, new_size);
  return p;
}

static size_t jemalloc_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  return ((jemalloc_allocator *)self)->api.sallocx(ptr, 0);
}

static void jemalloc_get_stats(af_allocator *self, af_stats *out) {
  af_counters_fill(&((jemalloc_allocator *)self)->counters, out);
}

/* ----------------------------------------------------------------------------
 * tcmalloc: no aligned realloc, no aligned calloc.
 * ------------------------------------------------------------------------- */
typedef SYSTEM_ALLOCATOR(af_tcmalloc_api) tcmalloc_allocator;

static void *tcmalloc_alloc(af_allocator *self, size_t size, size_t align) {
  tcmalloc_allocator *a = (tcmalloc_allocator *)self;
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? a->api.malloc(small_floor(size))
                                         : a->api.memalign(align, size);
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static void *tcmalloc_calloc(af_allocator *self, size_t size, size_t align) {
  tcmalloc_allocator *a = (tcmalloc_allocator *)self;
  void *p;
  if (align <= AF_SYSLIB_MIN_ALIGN) {
    p = a->api.calloc(1, small_floor(size));
  } else {
    p = a->api.memalign(align, size);
    if (p != NULL) memset(p, 0, size);
  }
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_alloc(&a->counters, size);
  return p;
}

static int tcmalloc_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  tcmalloc_allocator *a = (tcmalloc_allocator *)self;
  (void)align;
  af_count_free(&a->counters, size); /* first: nothing is needed after the call (see the banner) */
  a->api.free(ptr);
  return AF_OK;
}

static void *tcmalloc_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size,
                              size_t align) {
  tcmalloc_allocator *a = (tcmalloc_allocator *)self;
  void *p;
  if (align <= AF_SYSLIB_MIN_ALIGN) {
    p = a->api.realloc(ptr, small_floor(new_size)); /* never 0: that would free ptr */
  } else {
    p = a->api.memalign(align, new_size);
    if (p != NULL) {
      memcpy(p, ptr, min_size(old_size, new_size));
      a->api.free(ptr);
    }
  }
  if (af_unlikely(p == NULL)) return af_fail(self, &a->counters, AF_ERR_NOMEM);
  af_count_realloc(&a->counters, old_size, new_size);
  return p;
}

static size_t tcmalloc_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  return ((tcmalloc_allocator *)self)->api.malloc_size((void *)ptr);
}

static void tcmalloc_get_stats(af_allocator *self, af_stats *out) {
  af_counters_fill(&((tcmalloc_allocator *)self)->counters, out);
}

/* ----------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------- */

static void system_destroy(af_allocator *self) { free(self); }

#define SYSTEM_VTABLE(prefix, label)                                                      \
  static const af_vtable prefix##_vtable = {                                             \
    label, SYSTEM_CAPS, prefix##_alloc, prefix##_calloc, prefix##_free, prefix##_realloc, \
    prefix##_usable_size, system_owns, system_reset, system_trim, prefix##_get_stats,     \
    system_destroy, NULL, NULL, /* wraps nothing */                                       \
  }
SYSTEM_VTABLE(libc, "libc");
SYSTEM_VTABLE(mimalloc, "mimalloc");
SYSTEM_VTABLE(jemalloc, "jemalloc");
SYSTEM_VTABLE(tcmalloc, "tcmalloc");

/* A zeroed instance of `size` bytes with its vtable and a copy of `api`. */
static af_allocator *system_instance(const af_vtable *vt, size_t size, const void *api, size_t api_size,
                                     size_t api_offset, af_error *err) {
  if (api == NULL) return NULL; /* *err already says why */
  af_allocator *a = calloc(1, size);
  if (a == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "out of memory creating the %s allocator", vt->name);
    return NULL;
  }
  a->vt = vt;
  memcpy((char *)a + api_offset, api, api_size);
  return a;
}

#define SYSTEM_NEW(prefix, type, getter)                                                 \
  system_instance(&prefix##_vtable, sizeof(type), getter(err), sizeof(((type *)0)->api), \
                  offsetof(type, api), err)

af_allocator *af_system_new(const char *name, af_error *err) {
  if (name == NULL) name = "";
  if (strcmp(name, "libc") == 0) return SYSTEM_NEW(libc, libc_allocator, _af_syslib_libc);
  if (strcmp(name, "mimalloc") == 0) return SYSTEM_NEW(mimalloc, mimalloc_allocator, _af_syslib_mimalloc);
  if (strcmp(name, "jemalloc") == 0) return SYSTEM_NEW(jemalloc, jemalloc_allocator, _af_syslib_jemalloc);
  if (strcmp(name, "tcmalloc") == 0) return SYSTEM_NEW(tcmalloc, tcmalloc_allocator, _af_syslib_tcmalloc);
  if (strcmp(name, "mimalloc-heap") == 0) return _af_mimalloc_heap_new(err);
  if (strcmp(name, "jemalloc-arena") == 0) return _af_jemalloc_arena_new(err);
  _af_error_set(err, AF_ERR_INVALID,
                "unknown system allocator '%.64s': expected libc, mimalloc, jemalloc, tcmalloc, "
                "mimalloc-heap or jemalloc-arena",
                name);
  return NULL;
}
