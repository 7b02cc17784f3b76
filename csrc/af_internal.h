/* ----------------------------------------------------------------------------
 * af_internal.h: what the C files of allocffi share and the outside does not.
 * Names shared between files start with `_af_` or are static inline here.
 * ------------------------------------------------------------------------- */
#ifndef AF_INTERNAL_H
#define AF_INTERNAL_H

#include "allocffi.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Assertions. AF_DEBUG 0: none; 1: cheap invariants; 2: expensive walks.
 * The sanitizer and valgrind builds use 2.
 * ------------------------------------------------------------------------- */
#ifndef AF_DEBUG
#define AF_DEBUG 0
#endif

void _af_assert_fail(const char *expr, const char *file, int line);

#if AF_DEBUG >= 1
#define af_assert(x) ((x) ? (void)0 : _af_assert_fail(#x, __FILE__, __LINE__))
#else
#define af_assert(x) ((void)0)
#endif
#if AF_DEBUG >= 2
#define af_assert_expensive(x) af_assert(x)
#else
#define af_assert_expensive(x) ((void)0)
#endif

#define af_likely(x) __builtin_expect(!!(x), 1)
#define af_unlikely(x) __builtin_expect(!!(x), 0)

/* ----------------------------------------------------------------------------
 * Arithmetic on sizes and addresses
 * ------------------------------------------------------------------------- */
static inline bool af_is_pow2(size_t x) { return x != 0 && (x & (x - 1)) == 0; }

/* Round up to a multiple of a power of two. Callers keep x <= AF_MAX_ALLOC_SIZE
   so this cannot overflow. */
static inline size_t af_align_up(size_t x, size_t align) { return (x + align - 1) & ~(align - 1); }
static inline uintptr_t af_align_up_ptr(uintptr_t x, size_t align) {
  return (x + align - 1) & ~(uintptr_t)(align - 1);
}

/* floor(log2(x)) for x > 0 */
static inline unsigned af_log2(size_t x) { return (unsigned)(63 - __builtin_clzll((unsigned long long)x)); }

/* ----------------------------------------------------------------------------
 * Counters every allocator keeps; af_counters_fill copies them into af_stats.
 * Plain integers: an allocator instance is single-threaded unless wrapped by
 * af_locked_new, which serialises every call.
 *
 * They sit on every fast path, so an alloc or free touches as few fields as
 * possible: live blocks are derived rather than counted, and the fields an
 * alloc (allocs, bytes) or a free (frees, bytes) updates are not neighbours,
 * which keeps GCC from merging the updates into vector code that costs more
 * than it saves.
 * ------------------------------------------------------------------------- */
typedef struct af_counters {
  uint64_t allocs;            /* successful alloc/calloc */
  uint64_t failures;          /* calls that returned an error */
  uint64_t frees;             /* successful frees */
  uint64_t resets;            /* successful resets */
  uint64_t reallocs;          /* successful reallocs */
  uint64_t dropped;           /* blocks released by resets rather than frees */
  uint64_t bytes_in_use;      /* requested bytes of live blocks */
  uint64_t peak_bytes_in_use; /* >= bytes_in_use, never decreases */
} af_counters;

/* Live blocks: every alloc not yet matched by a free or dropped by a reset. */
static inline uint64_t af_counters_live(const af_counters *c) { return c->allocs - c->frees - c->dropped; }

static inline void af_count_alloc(af_counters *c, size_t size) {
  c->allocs++;
  c->bytes_in_use += size;
  if (c->bytes_in_use > c->peak_bytes_in_use) c->peak_bytes_in_use = c->bytes_in_use;
}
static inline void af_count_free(af_counters *c, size_t size) {
  c->frees++;
  c->bytes_in_use -= size;
}
static inline void af_count_realloc(af_counters *c, size_t old_size, size_t new_size) {
  c->reallocs++;
  c->bytes_in_use = c->bytes_in_use - old_size + new_size;
  if (c->bytes_in_use > c->peak_bytes_in_use) c->peak_bytes_in_use = c->bytes_in_use;
}
static inline void af_count_reset(af_counters *c) {
  c->resets++;
  c->dropped += af_counters_live(c);
  c->bytes_in_use = 0;
}
static inline void af_counters_fill(const af_counters *c, af_stats *out) {
  out->allocs = c->allocs;
  out->frees = c->frees;
  out->reallocs = c->reallocs;
  out->failures = c->failures;
  out->resets = c->resets;
  out->blocks_in_use = af_counters_live(c);
  out->bytes_in_use = c->bytes_in_use;
  out->peak_bytes_in_use = c->peak_bytes_in_use;
}

/* Record a failure on the allocator and its counters; returns NULL so that
   `return af_fail(...)` reads naturally in alloc paths. */
static inline void *af_fail(af_allocator *self, af_counters *c, int status) {
  self->last_error = status;
  c->failures++;
  return NULL;
}

/* ----------------------------------------------------------------------------
 * Errors (errors_and_clock.c)
 * ------------------------------------------------------------------------- */
/* printf-style fill of *err (err may be NULL). Returns code. */
int _af_error_set(af_error *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* ----------------------------------------------------------------------------
 * Time (errors_and_clock.c): monotonic nanoseconds (vDSO clock_gettime, ~20 ns: keep it off hot paths).
 * ------------------------------------------------------------------------- */
uint64_t _af_now_ns(void);

/* ----------------------------------------------------------------------------
 * Wrappers (locked.c). Introspection that is specific to one allocator (the
 * slab's class stats) and the batch path unwrap through the vtable: acquire
 * returns the inner allocator with the wrapper's lock held (or `a` itself
 * when it wraps nothing); release drops the lock again.
 * ------------------------------------------------------------------------- */
static inline af_allocator *_af_inner_acquire(af_allocator *a) {
  return a->vt->acquire_inner != NULL ? a->vt->acquire_inner(a) : a;
}
static inline void _af_inner_release(af_allocator *a) {
  if (a->vt->release_inner != NULL) a->vt->release_inner(a);
}

/* ----------------------------------------------------------------------------
 * Slab observers (slab.c). An observer is told of every slab a slab allocator
 * maps (mapped: true, before any block of it is handed out) and unmaps
 * (mapped: false, before the unmap); a status other than AF_OK on a mapping
 * makes that slab fail as if the OS had refused it. afmalloc keeps its map of
 * which thread's heap owns an address this way. `a` must be a bare slab
 * allocator (not wrapped) with no slab mapped yet.
 * ------------------------------------------------------------------------- */
typedef int (*_af_slab_observer)(void *arg, uintptr_t base, size_t bytes, bool mapped);
void _af_slab_observe(af_allocator *a, _af_slab_observer observer, void *arg);

#endif /* AF_INTERNAL_H */
