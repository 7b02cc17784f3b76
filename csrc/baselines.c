/* ----------------------------------------------------------------------------
 * baselines.c: the two reference points of the benchmark.
 *
 * "mmap": every allocation is its own mapping (page-rounded) and every free
 * unmaps it, what an allocator without any reuse costs.
 *
 * "null": the cheapest correct-looking allocator, to measure the benchmark
 * engine itself. Each instance maps one 8 MiB buffer at creation (so one
 * instance per thread never shares memory) and hands out consecutive
 * aligned pieces of it, starting over at the beginning when the end is
 * reached; free does nothing. Blocks therefore stay intact until 8 MiB more
 * have been handed out, which covers the live sets of the benchmark's
 * small-block workloads. A request too large for that buffer comes from a
 * second one, NULL_LARGE_SIZE bytes (1 GiB and a page), mapped at the first
 * such request and used the same way, so that every size a workload may name
 * (up to AF_SPEC_MAX_SIZE, 1 GiB) runs on null as on every other allocator.
 * Only requests above NULL_LARGE_MAX_REQUEST fail, with AF_ERR_NOMEM.
 *
 * Its alloc is the floor the engine measures, so it does only what a correct
 * answer needs (wrap, bump; align only beyond 16). null keeps NO alloc, free,
 * byte or live-block statistics (even one counter costs ~0.25 ns per call):
 * its stats count reallocs, resets and failures; the rest stays 0.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "os.h"

#include <stdlib.h>

/* ----------------------------------------------------------------------------
 * mmap: one mapping per block
 * ------------------------------------------------------------------------- */

typedef struct mmap_allocator {
  af_allocator base;              /* first: vtable and last_error */
  af_counters counters;
  uint64_t os_maps, os_unmaps;    /* calls made by this instance */
  uint64_t os_bytes;              /* bytes of live mappings */
  size_t page;                    /* the page size */
} mmap_allocator;

/* Bytes mapped for a block of `size` (size 0 still gets its own page). */
static inline size_t mmap_length(const mmap_allocator *m, size_t size) {
  return af_align_up(size == 0 ? 1 : size, m->page);
}

static void *mmap_alloc(af_allocator *self, size_t size, size_t align) {
  mmap_allocator *m = (mmap_allocator *)self;
  (void)align; /* <= AF_MAX_ALIGN <= page: every mapping is aligned enough */
  size_t length = mmap_length(m, size);
  void *p;
  if (_af_os_map(length, m->page, &p) != AF_OK) return af_fail(self, &m->counters, AF_ERR_NOMEM);
  m->os_maps++;
  m->os_bytes += length;
  af_count_alloc(&m->counters, size);
  return p;
}

/* Fresh mappings are zero. */
static void *mmap_calloc(af_allocator *self, size_t size, size_t align) { return mmap_alloc(self, size, align); }

static int mmap_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  mmap_allocator *m = (mmap_allocator *)self;
  (void)align;
  if ((uintptr_t)ptr % m->page != 0) return AF_ERR_NOT_OWNED; /* every block starts a mapping */
  size_t length = mmap_length(m, size);
  if (_af_os_unmap(ptr, length) != AF_OK) return AF_ERR_NOT_OWNED;
  m->os_unmaps++;
  m->os_bytes -= length;
  af_count_free(&m->counters, size);
  return AF_OK;
}

static void *mmap_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  mmap_allocator *m = (mmap_allocator *)self;
  size_t old_length = mmap_length(m, old_size), new_length = mmap_length(m, new_size);
  if (new_length == old_length) {
    af_count_realloc(&m->counters, old_size, new_size);
    return ptr; /* the mapping already fits */
  }
  void *p;
  if (_af_os_map(new_length, m->page, &p) != AF_OK) return af_fail(self, &m->counters, AF_ERR_NOMEM);
  memcpy(p, ptr, old_size < new_size ? old_size : new_size);
  (void)_af_os_unmap(ptr, old_length);
  (void)align;
  m->os_maps++;
  m->os_unmaps++;
  m->os_bytes = m->os_bytes - old_length + new_length;
  af_count_realloc(&m->counters, old_size, new_size);
  return p;
}

static size_t mmap_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)ptr, (void)align;
  return mmap_length((mmap_allocator *)self, size);
}

static int mmap_owns(af_allocator *self, const void *ptr) {
  (void)self, (void)ptr;
  return -1;
}
static int mmap_reset(af_allocator *self) {
  (void)self;
  return AF_ERR_UNSUPPORTED;
}
static void mmap_trim(af_allocator *self) { (void)self; }

static void mmap_get_stats(af_allocator *self, af_stats *out) {
  mmap_allocator *m = (mmap_allocator *)self;
  af_counters_fill(&m->counters, out);
  out->os_maps = m->os_maps;
  out->os_unmaps = m->os_unmaps;
  out->os_bytes = m->os_bytes;
}

/* Live blocks are left mapped: the caller may still use them. */
static void mmap_destroy(af_allocator *self) { free(self); }

static const af_vtable mmap_vtable = {
  "mmap", AF_CAP_FREE, mmap_alloc, mmap_calloc, mmap_free, mmap_realloc, mmap_usable_size,
  mmap_owns, mmap_reset, mmap_trim, mmap_get_stats, mmap_destroy, NULL, NULL, /* wraps nothing */
};

af_allocator *af_mmap_new(af_error *err) {
  mmap_allocator *m = calloc(1, sizeof *m);
  if (m == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "out of memory creating the mmap allocator");
    return NULL;
  }
  m->base.vt = &mmap_vtable;
  m->page = _af_os_page_size();
  return &m->base;
}

/* ----------------------------------------------------------------------------
 * null: pieces of one buffer, never reclaimed
 * ------------------------------------------------------------------------- */

#define NULL_BUFFER_SIZE ((size_t)8 << 20)
/* Largest request of the small buffer: any alignment up to AF_MAX_ALIGN fits from offset 0. */
#define NULL_MAX_REQUEST (NULL_BUFFER_SIZE - AF_MAX_ALIGN)
/* The large buffer holds the engine's largest size (AF_SPEC_MAX_SIZE) at any alignment. */
#define NULL_LARGE_SIZE (((size_t)1 << 30) + AF_MAX_ALIGN)
#define NULL_LARGE_MAX_REQUEST (NULL_LARGE_SIZE - AF_MAX_ALIGN)

/* One buffer handed out front to back, starting over when the end is reached. */
typedef struct null_region {
  char *buffer;                   /* `size` bytes, page-aligned; NULL until first needed */
  size_t size;
  size_t cursor;                  /* next free offset, a multiple of 16, <= size */
} null_region;

typedef struct null_allocator {
  af_allocator base;              /* first: vtable and last_error */
  null_region small;              /* NULL_BUFFER_SIZE, mapped at creation: every request up to NULL_MAX_REQUEST */
  null_region large;              /* NULL_LARGE_SIZE, mapped at the first larger request */
  af_counters counters;           /* failures, reallocs, resets only (see the banner) */
} null_allocator;

/* Bytes a block of `size` takes: at least one (size 0 still moves on),
   rounded up to 16 so that the cursor stays 16-aligned. */
static inline size_t null_step(size_t size) { return af_align_up(size + (size == 0), AF_DEFAULT_ALIGN); }

/* size at most r->size - AF_MAX_ALIGN, any alignment up to AF_MAX_ALIGN. */
static void *null_take(null_region *r, size_t size, size_t align) {
  size_t at = af_align_up(r->cursor, align);
  if (at + null_step(size) > r->size) at = 0; /* start over */
  r->cursor = at + null_step(size);
  return r->buffer + at;
}

/* The region that serves `size`, the large one mapped if needed; NULL: out of memory. */
static null_region *null_region_for(null_allocator *n, size_t size) {
  if (size <= NULL_MAX_REQUEST) return &n->small;
  if (size > NULL_LARGE_MAX_REQUEST) return NULL;
  if (n->large.buffer == NULL) {
    void *buffer = NULL;
    if (_af_os_map(NULL_LARGE_SIZE, _af_os_page_size(), &buffer) != AF_OK) return NULL;
    n->large = (null_region){.buffer = buffer, .size = NULL_LARGE_SIZE, .cursor = 0};
  }
  return &n->large;
}

static __attribute__((noinline)) void *null_alloc_slow(null_allocator *n, size_t size, size_t align) {
  null_region *r = null_region_for(n, size);
  if (r == NULL) return af_fail(&n->base, &n->counters, AF_ERR_NOMEM);
  return null_take(r, size, align);
}

/* The fast path: the cursor is already aligned enough, so the only chain
   from one call to the next is cursor + step; nothing is counted. */
static void *null_alloc(af_allocator *self, size_t size, size_t align) {
  null_allocator *n = (null_allocator *)self;
  if (af_unlikely(size > NULL_MAX_REQUEST || align > AF_DEFAULT_ALIGN)) return null_alloc_slow(n, size, align);
  size_t at = n->small.cursor, end = at + null_step(size);
  if (af_unlikely(end > NULL_BUFFER_SIZE)) at = 0, end = null_step(size); /* start over */
  n->small.cursor = end;
  return n->small.buffer + at;
}

static void *null_calloc(af_allocator *self, size_t size, size_t align) {
  void *p = null_alloc(self, size, align);
  if (p != NULL) memset(p, 0, size); /* the buffer is reused: never assume zero */
  return p;
}

static int null_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  (void)self, (void)ptr, (void)size, (void)align;
  return AF_OK;
}

static void *null_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  null_allocator *n = (null_allocator *)self;
  null_region *r = null_region_for(n, new_size);
  if (af_unlikely(r == NULL)) return af_fail(self, &n->counters, AF_ERR_NOMEM);
  void *p = null_take(r, new_size, align);
  memmove(p, ptr, old_size < new_size ? old_size : new_size); /* after a wrap they may overlap */
  n->counters.reallocs++;
  return p;
}

static size_t null_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)self, (void)ptr, (void)align;
  return size;
}

static int null_owns(af_allocator *self, const void *ptr) {
  const null_allocator *n = (null_allocator *)self;
  return (uintptr_t)ptr - (uintptr_t)n->small.buffer < n->small.size ||
         (n->large.buffer != NULL && (uintptr_t)ptr - (uintptr_t)n->large.buffer < n->large.size);
}

static int null_reset(af_allocator *self) {
  null_allocator *n = (null_allocator *)self;
  n->small.cursor = 0;
  n->large.cursor = 0;
  n->counters.resets++;
  return AF_OK;
}

static void null_trim(af_allocator *self) { (void)self; }

static void null_get_stats(af_allocator *self, af_stats *out) {
  const null_allocator *n = (const null_allocator *)self;
  af_counters_fill(&n->counters, out); /* alloc, free, byte and live counts: all 0 */
  out->os_bytes = n->small.size + n->large.size;
  out->os_maps = 1 + (n->large.buffer != NULL);
}

static void null_destroy(af_allocator *self) {
  null_allocator *n = (null_allocator *)self;
  (void)_af_os_unmap(n->small.buffer, n->small.size);
  if (n->large.buffer != NULL) (void)_af_os_unmap(n->large.buffer, n->large.size);
  free(n);
}

static const af_vtable null_vtable = {
  "null", AF_CAP_FREE | AF_CAP_RESET, null_alloc, null_calloc, null_free, null_realloc,
  null_usable_size, null_owns, null_reset, null_trim, null_get_stats, null_destroy, NULL, NULL, /* wraps nothing */
};

af_allocator *af_null_new(af_error *err) {
  null_allocator *n = calloc(1, sizeof *n);
  void *buffer = NULL;
  if (n == NULL || _af_os_map(NULL_BUFFER_SIZE, _af_os_page_size(), &buffer) != AF_OK) {
    free(n);
    _af_error_set(err, AF_ERR_NOMEM, "out of memory mapping the null allocator's 8 MiB buffer");
    return NULL;
  }
  n->base.vt = &null_vtable;
  n->small = (null_region){.buffer = buffer, .size = NULL_BUFFER_SIZE, .cursor = 0};
  return &n->base;
}
