/* ----------------------------------------------------------------------------
 * afmalloc.h: what the files of afmalloc share. afmalloc is the malloc family
 * built from allocffi's own allocators, to preload under whole programs
 * (allocffi/_afmalloc.so, `allocffi run --allocators afmalloc`):
 *
 *   malloc.c   the entry points (malloc, free, calloc, realloc, the aligned
 *              family, malloc_usable_size, reallocarray) and their hot paths;
 *   heaps.c    one slab allocator (slab.c) per thread, the map from a slab's
 *              address to the heap that owns it, frees from other threads,
 *              heaps of exited threads, fork;
 *   regions.c  blocks above the slab's top class: one large-region cache
 *              (large.c) shared by every thread behind its own lock;
 *   real.c     the allocator that was there before us (glibc), for pointers
 *              we do not own and for our own bookkeeping.
 *
 * Two builds. The shared object (AFM_TEST_NAMES undefined) defines malloc,
 * free, ... themselves and reaches glibc through its __libc_* entry points.
 * The C test (csrc/tests/test_afmalloc.c) builds the same sources with
 * AFM_TEST_NAMES: the entry points become afm_malloc, afm_free, ..., and
 * "the real allocator" is the process's malloc, so ASan and valgrind watch
 * both sides.
 *
 * Recursion. slab.c and large.c keep their records (one per slab, per region,
 * per heap) with malloc, calloc, aligned_alloc and free. The shared object
 * compiles them (and locked.c, which they use) with those names defined to
 * _afm_real_malloc, ... (setup.py, AFMALLOC_RENAMES): their records live in
 * glibc's heap, and no call into a heap or the region cache ever comes back
 * into afmalloc, so the hot paths need no recursion guard. Only setting a
 * thread up (pthread_once, pthread_atfork, pthread_key_create, dlsym may
 * allocate) does: while the thread's `inside` flag is set, its allocations
 * go to the real allocator. In the test build those names are the process's
 * malloc already.
 * ------------------------------------------------------------------------- */
#ifndef AFM_AFMALLOC_H
#define AFM_AFMALLOC_H

#include "addrmap.h"
#include "af_internal.h"

#include <stdatomic.h>
#include <stddef.h>

#ifdef AFM_TEST_NAMES
#define AFM_NAME(name) afm_##name
#define AFM_REPLACES_MALLOC 0
#else
#define AFM_NAME(name) name
#define AFM_REPLACES_MALLOC 1
#endif

/* The entry points are the only symbols the shared object exports. */
#define AFM_EXPORT __attribute__((visibility("default")))

/* The entry points (malloc.c), as glibc declares them. */
AFM_EXPORT void *AFM_NAME(malloc)(size_t size);
AFM_EXPORT void AFM_NAME(free)(void *p);
AFM_EXPORT void *AFM_NAME(calloc)(size_t n, size_t size);
AFM_EXPORT void *AFM_NAME(realloc)(void *p, size_t size);
AFM_EXPORT void *AFM_NAME(reallocarray)(void *p, size_t n, size_t size);
AFM_EXPORT int AFM_NAME(posix_memalign)(void **out, size_t align, size_t size);
AFM_EXPORT void *AFM_NAME(aligned_alloc)(size_t align, size_t size);
AFM_EXPORT void *AFM_NAME(memalign)(size_t align, size_t size);
AFM_EXPORT void *AFM_NAME(valloc)(size_t size);
AFM_EXPORT void *AFM_NAME(pvalloc)(size_t size);
AFM_EXPORT size_t AFM_NAME(malloc_usable_size)(void *p);
/* Initial-exec TLS: no lazy allocation on first access (which would call malloc). */
#define AFM_TLS __attribute__((tls_model("initial-exec")))

/* Largest block a slab class serves (the default classes end at 1 MiB).
   Larger requests are regions (regions.c). */
#define AFM_SLAB_MAX ((size_t)1 << 20)

/* ----------------------------------------------------------------------------
 * Thread heaps (heaps.c)
 * ------------------------------------------------------------------------- */
typedef struct afm_heap {
  af_allocator *slab;         /* the slab allocator; only the owning thread calls it */
  _Atomic(void *) remote;     /* blocks other threads freed, linked through their first word; the owner drains */
  struct afm_heap *next;      /* every heap (under the heaps lock) */
  struct afm_heap *next_orphan; /* orphan list (under the heaps lock) */
  int state;                  /* AFM_HEAP_OWNED, _ORPHAN or _LOST (under the heaps lock) */
} afm_heap;

enum { AFM_HEAP_OWNED, AFM_HEAP_ORPHAN, AFM_HEAP_LOST };

/* The calling thread's state. `inside`: the thread is setting itself up (see
   the recursion note above): its allocations go to the real allocator. */
typedef struct afm_thread {
  afm_heap *heap;             /* NULL before the first allocation and after thread exit */
  bool inside;
  bool exited;                /* past its exit destructor: its allocations go to the real allocator */
} afm_thread;

extern __thread afm_thread _afm_self AFM_TLS;

/* Registers the thread-exit key and the fork handlers, once (any thread). */
void _afm_process_init(void);

/* The calling thread's heap, created or adopted on first use; NULL when none
   can be had (thread exiting, out of memory). Slow path only. */
afm_heap *_afm_heap_acquire(void);

/* 64 KiB granule -> the heap whose slab holds it (heaps.c keeps it). */
extern af_radixmap _afm_owners;

/* Ownership lookup, safe in any thread at any time: the heap whose slab
   holds p's granule, or NULL (not a slab block of ours). */
static inline afm_heap *_afm_owner_of(const void *p) { return _af_radixmap_get(&_afm_owners, (uintptr_t)p); }

/* A free into another thread's heap (lock-free push). */
void _afm_remote_free(afm_heap *owner, void *p);

/* Frees the blocks other threads pushed onto h (h is the caller's heap). */
void _afm_drain(afm_heap *h);

/* Usable size of a slab block of h (any thread; see heaps.c for why a
   foreign thread may read it). */
size_t _afm_slab_usable(afm_heap *h, const void *p);

/* Reports a pointer that is not a live block (double free, interior pointer)
   and aborts, as glibc does. */
__attribute__((noreturn, cold)) void _afm_invalid_pointer(const char *call, const void *p);

/* ----------------------------------------------------------------------------
 * Regions (regions.c): blocks above AFM_SLAB_MAX with alignment <= a page.
 * Thread-safe (one lock); NULL with errno unset on failure.
 * ------------------------------------------------------------------------- */
void *_afm_region_alloc(size_t size, bool zero);
/* true if p was a live region of ours (and is now freed). */
bool _afm_region_free(void *p);
/* Usable bytes of a live region, 0 if p is none. */
size_t _afm_region_usable(const void *p);
/* The cache's lock (fork: heaps.c takes it in prepare). */
void _afm_regions_lock(void);
void _afm_regions_unlock(void);

/* ----------------------------------------------------------------------------
 * The real allocator (real.c)
 * ------------------------------------------------------------------------- */
void *_afm_real_malloc(size_t size);
void *_afm_real_calloc(size_t n, size_t size);
void *_afm_real_realloc(void *p, size_t size);
void *_afm_real_memalign(size_t align, size_t size);
void *_afm_real_aligned_alloc(size_t align, size_t size);
void _afm_real_free(void *p);
size_t _afm_real_usable_size(void *p);

/* ----------------------------------------------------------------------------
 * Setting a thread up (the recursion guard)
 * ------------------------------------------------------------------------- */
static inline void afm_enter(void) { _afm_self.inside = true; }
static inline void afm_leave(void) { _afm_self.inside = false; }

#endif /* AFM_AFMALLOC_H */
