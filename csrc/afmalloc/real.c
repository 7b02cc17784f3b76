/* ----------------------------------------------------------------------------
 * real.c: the allocator that served the process before afmalloc, for the
 * pointers afmalloc does not own (allocated before the preload took effect,
 * by ld.so, or while a thread was setting itself up) and for the records of
 * slab.c and large.c (see afmalloc.h).
 *
 * In the shared object that is glibc, through the __libc_* entry points it
 * exports for exactly this: they are bound at load time, need no dlsym (which
 * may allocate) and are never interposed. glibc exports no
 * __libc_malloc_usable_size; its malloc_usable_size is found once with
 * dlsym(RTLD_NEXT), with `inside` set (so dlsym's own allocations come here).
 * In the test build (AFM_TEST_NAMES) it is the process's own malloc.
 * ------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include "afmalloc.h"

#include <malloc.h>
#include <stdlib.h>

#if AFM_REPLACES_MALLOC
#include <dlfcn.h>

extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);
extern void __libc_free(void *);

void *_afm_real_malloc(size_t size) { return __libc_malloc(size); }
void *_afm_real_calloc(size_t n, size_t size) { return __libc_calloc(n, size); }
void *_afm_real_realloc(void *p, size_t size) { return __libc_realloc(p, size); }
void *_afm_real_memalign(size_t align, size_t size) { return __libc_memalign(align, size); }
void *_afm_real_aligned_alloc(size_t align, size_t size) { return __libc_memalign(align, size); }
void _afm_real_free(void *p) { __libc_free(p); }

typedef size_t (*usable_size_fn)(void *);

size_t _afm_real_usable_size(void *p) {
  static _Atomic(usable_size_fn) glibc_usable_size; /* every thread finds the same function */
  usable_size_fn fn = atomic_load_explicit(&glibc_usable_size, memory_order_relaxed);
  if (fn == NULL) {
    bool was_inside = _afm_self.inside;
    afm_enter();
    fn = (usable_size_fn)dlsym(RTLD_NEXT, "malloc_usable_size");
    if (!was_inside) afm_leave();
    if (fn == NULL) return 0;
    atomic_store_explicit(&glibc_usable_size, fn, memory_order_relaxed);
  }
  return fn(p);
}
#else
void *_afm_real_malloc(size_t size) { return malloc(size); }
void *_afm_real_calloc(size_t n, size_t size) { return calloc(n, size); }
void *_afm_real_realloc(void *p, size_t size) { return realloc(p, size); }
void *_afm_real_memalign(size_t align, size_t size) { return memalign(align, size); }
void *_afm_real_aligned_alloc(size_t align, size_t size) { return aligned_alloc(align, size); }
void _afm_real_free(void *p) { free(p); }
size_t _afm_real_usable_size(void *p) { return malloc_usable_size(p); }
#endif
