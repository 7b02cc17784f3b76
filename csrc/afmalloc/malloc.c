/* ----------------------------------------------------------------------------
 * malloc.c: afmalloc's entry points, the malloc family as glibc defines it:
 * malloc, free, calloc, realloc, reallocarray, posix_memalign, aligned_alloc,
 * memalign, valloc, pvalloc and malloc_usable_size (no cfree: glibc 2.26
 * dropped it).
 *
 * Where a request goes:
 * - size <= AFM_SLAB_MAX, alignment <= a page: the thread's heap (heaps.c),
 *   no lock; an aligned request takes the first class whose size is a
 *   multiple of the alignment (slabs are 64 KiB aligned; the 1 MiB top class
 *   is a multiple of every alignment up to a page, so there always is one);
 * - larger, alignment <= a page: the shared region cache (regions.c);
 * - alignment above a page (rare: posix_memalign for huge pages and the like):
 *   the real allocator, which frees it again through the ownership lookup;
 * - a call made while the thread sets itself up (afmalloc.h), or by a thread
 *   past its exit destructor: the real allocator.
 * free, realloc and malloc_usable_size find the owner by address: a slab
 * block's heap (heaps.c), else a live region, else the real allocator.
 *
 * Failure is NULL with errno ENOMEM (EINVAL for a bad alignment), as glibc:
 * sizes above AF_MAX_ALLOC_SIZE (1 TiB) fail without asking the OS.
 * realloc(p, 0) frees p and returns NULL, realloc(NULL, n) is malloc(n).
 * ------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include "afmalloc.h"

#include "os.h"

#include <errno.h>
#include <stdlib.h>

/* ----------------------------------------------------------------------------
 * Slow paths
 * ------------------------------------------------------------------------- */

static void *fail(int error) {
  errno = error;
  return NULL;
}

/* A request the real allocator serves (it sets errno itself). */
static void *real_alloc(size_t size, size_t align, bool zero) {
  if (align <= AF_DEFAULT_ALIGN) return zero ? _afm_real_calloc(1, size) : _afm_real_malloc(size);
  void *p = _afm_real_memalign(align, size);
  if (p != NULL && zero) memset(p, 0, size);
  return p;
}

/* Every allocation that is not the fast path of malloc. align: a power of two. */
static __attribute__((noinline)) void *alloc_slow(size_t size, size_t align, bool zero) {
  if (_afm_self.inside) return real_alloc(size, align, zero); /* pthread_atfork & co. setting the thread up */
  if (size > AF_MAX_ALLOC_SIZE) return fail(ENOMEM);
  if (align > _af_os_page_size()) return real_alloc(size, align, zero);
  void *p;
  if (size > AFM_SLAB_MAX) {
    p = _afm_region_alloc(size, zero);
  } else {
    afm_heap *h = _afm_heap_acquire();
    if (h == NULL) return real_alloc(size, align, zero); /* exiting thread, or no memory for a heap */
    if (atomic_load_explicit(&h->remote, memory_order_relaxed) != NULL) _afm_drain(h);
    p = zero ? h->slab->vt->calloc(h->slab, size, align) : h->slab->vt->alloc(h->slab, size, align);
  }
  return p != NULL ? p : fail(ENOMEM);
}

/* malloc's fast path after taking back the blocks other threads freed (out
   of line, so that the fast path calls nothing and needs no stack frame). */
static __attribute__((noinline)) void *alloc_drained(afm_heap *h, size_t size) {
  _afm_drain(h);
  return h->slab->vt->alloc(h->slab, size, AF_DEFAULT_ALIGN);
}

static __attribute__((noinline)) void free_slow(void *p, afm_heap *owner) {
  if (p == NULL) return;
  if (owner != NULL) _afm_remote_free(owner, p); /* another thread's heap, or an orphan's */
  else if (!_afm_region_free(p)) _afm_real_free(p);
}

/* Usable bytes of a block of ours (0: not ours) and whether it is ours;
   `call` names the entry point in the report of a bad pointer. */
static size_t owned_usable(const char *call, void *p, bool *ours) {
  afm_heap *owner = _afm_owner_of(p);
  size_t n = 0;
  if (owner != NULL) {
    n = _afm_slab_usable(owner, p);
    if (n == 0) _afm_invalid_pointer(call, p); /* in our slab, not a live block */
  } else {
    n = _afm_region_usable(p);
  }
  *ours = n != 0;
  return n;
}

/* The allocation of the aligned family; align: a power of two. */
static void *aligned(size_t align, size_t size) {
  if (align <= AF_DEFAULT_ALIGN) return AFM_NAME(malloc)(size);
  return alloc_slow(size, align, false);
}

/* ----------------------------------------------------------------------------
 * Hot paths: the thread's heap, no lock, no atomic read-modify-write.
 * ------------------------------------------------------------------------- */

AFM_EXPORT void *AFM_NAME(malloc)(size_t size) {
  afm_heap *h = _afm_self.heap;
  if (af_likely(h != NULL && size <= AFM_SLAB_MAX)) {
    /* A plain load of a line other threads write only when they free into
       this heap: the price of taking remote frees back without a lock. */
    if (af_unlikely(atomic_load_explicit(&h->remote, memory_order_relaxed) != NULL)) return alloc_drained(h, size);
    /* A tail call: the slab returns NULL only when mmap or the real malloc
       refused it memory, and both have set errno to ENOMEM. */
    return h->slab->vt->alloc(h->slab, size, AF_DEFAULT_ALIGN);
  }
  return alloc_slow(size, AF_DEFAULT_ALIGN, false);
}

AFM_EXPORT void AFM_NAME(free)(void *p) {
  afm_heap *owner = _afm_owner_of(p); /* NULL for NULL: no slab at address 0 */
  afm_heap *h = _afm_self.heap;
  if (af_likely(owner != NULL && owner == h)) {
    int status = h->slab->vt->free(h->slab, p, 0, AF_DEFAULT_ALIGN); /* the size only feeds counters */
    if (af_likely(status == AF_OK)) return;
    _afm_invalid_pointer("free", p); /* double free, or not a block boundary */
  }
  free_slow(p, owner);
}

/* ----------------------------------------------------------------------------
 * The rest of the family
 * ------------------------------------------------------------------------- */

AFM_EXPORT void *AFM_NAME(calloc)(size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return fail(ENOMEM);
  return alloc_slow(total, AF_DEFAULT_ALIGN, true);
}

AFM_EXPORT void *AFM_NAME(realloc)(void *p, size_t size) {
  if (p == NULL) return AFM_NAME(malloc)(size);
  if (size == 0) {
    AFM_NAME(free)(p);
    return NULL;
  }
  bool ours;
  size_t old = owned_usable("realloc", p, &ours);
  if (!ours) return _afm_real_realloc(p, size);
  /* Stays where it is if it fits and would not waste more than half (the
     smallest class cannot shrink). */
  if (size <= old && (size >= old / 2 || old <= AF_DEFAULT_ALIGN)) return p;
  void *q = AFM_NAME(malloc)(size);
  if (q == NULL) return NULL; /* p untouched, errno set */
  memcpy(q, p, size < old ? size : old);
  AFM_NAME(free)(p);
  return q;
}

AFM_EXPORT void *AFM_NAME(reallocarray)(void *p, size_t n, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(n, size, &total)) return fail(ENOMEM);
  return AFM_NAME(realloc)(p, total);
}

AFM_EXPORT size_t AFM_NAME(malloc_usable_size)(void *p) {
  if (p == NULL) return 0;
  bool ours;
  size_t n = owned_usable("malloc_usable_size", p, &ours);
  return ours ? n : _afm_real_usable_size(p);
}

AFM_EXPORT int AFM_NAME(posix_memalign)(void **out, size_t align, size_t size) {
  if (!af_is_pow2(align) || align % sizeof(void *) != 0) return EINVAL;
  int saved = errno; /* posix_memalign reports through its result, errno stays */
  void *p = aligned(align, size);
  errno = saved;
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

/* C17: an alignment the implementation does not support fails (glibc 2.38 does the same). */
AFM_EXPORT void *AFM_NAME(aligned_alloc)(size_t align, size_t size) {
  if (!af_is_pow2(align)) return fail(EINVAL);
  return aligned(align, size);
}

/* glibc's memalign: a non-power-of-two alignment is rounded up to one. */
AFM_EXPORT void *AFM_NAME(memalign)(size_t align, size_t size) {
  if (align > SIZE_MAX / 2 + 1) return fail(EINVAL);
  if (!af_is_pow2(align)) align = align <= 1 ? 1 : (size_t)2 << af_log2(align - 1);
  return aligned(align, size);
}

AFM_EXPORT void *AFM_NAME(valloc)(size_t size) { return aligned(_af_os_page_size(), size); }

/* Whole pages: pvalloc(0) is one page. */
AFM_EXPORT void *AFM_NAME(pvalloc)(size_t size) {
  size_t page = _af_os_page_size();
  if (size > SIZE_MAX - page) return fail(ENOMEM);
  return aligned(page, size == 0 ? page : af_align_up(size, page));
}
