/* ----------------------------------------------------------------------------
 * regions.c: blocks above the slab's top class (AFM_SLAB_MAX), from one
 * large-region cache (large.c) that every thread shares, behind the lock of
 * af_locked_new (locked.c).
 *
 * This is not the small-object fast path: a region is at least 1 MiB, which
 * the program will touch at a cost far above one uncontended lock, and a
 * single cache lets a region freed by one thread serve the next request of
 * any thread. The lock is a spin lock that yields (locked.c); the cache calls
 * no system function that blocks for long except mmap/munmap/madvise.
 *
 * Invariants:
 * - g_cache is created once (pthread_once) and never destroyed;
 * - nothing under the lock comes back here: large.c keeps its region records
 *   with the real allocator (see afmalloc.h), so the lock is never taken twice;
 * - regions are page aligned: requests aligned to more than a page never
 *   come here (malloc.c sends them to the real allocator).
 * ------------------------------------------------------------------------- */
#include "afmalloc.h"

#include <pthread.h>

static af_allocator *g_cache; /* af_locked_new(af_large_new()): thread-safe */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

static void create_cache(void) {
  af_allocator *large = af_large_new(NULL, NULL);
  if (large == NULL) return;
  g_cache = af_locked_new(large, NULL);
  if (g_cache == NULL) large->vt->destroy(large);
}

/* The cache, NULL if it could not be created. After pthread_once returns,
   g_cache is visible to the caller. */
static af_allocator *cache(void) {
  pthread_once(&g_once, create_cache);
  return g_cache;
}

void *_afm_region_alloc(size_t size, bool zero) {
  af_allocator *c = cache();
  if (c == NULL) return NULL;
  return zero ? c->vt->calloc(c, size, AF_DEFAULT_ALIGN) : c->vt->alloc(c, size, AF_DEFAULT_ALIGN);
}

/* Sized calls: large.c only counts the size, which we do not know here. */
bool _afm_region_free(void *p) {
  af_allocator *c = cache();
  return c != NULL && c->vt->free(c, p, 0, AF_DEFAULT_ALIGN) == AF_OK;
}

size_t _afm_region_usable(const void *p) {
  af_allocator *c = cache();
  return c != NULL ? c->vt->usable_size(c, p, 0, AF_DEFAULT_ALIGN) : 0;
}

void _afm_regions_lock(void) {
  af_allocator *c = cache();
  if (c != NULL) (void)_af_inner_acquire(c);
}

/* Also in a fork child: the lock is a word the forking thread set. */
void _afm_regions_unlock(void) {
  if (g_cache != NULL) _af_inner_release(g_cache);
}
