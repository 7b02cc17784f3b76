/* ----------------------------------------------------------------------------
 * system_heaps.c: two resettable allocators built on the system libraries.
 *
 * "mimalloc-heap": a private mi_heap_t (mi_heap_new). reset destroys it,
 * releasing every block at once, and starts a new one.
 *   mimalloc heaps belong to the thread that made them: only that thread may
 *   allocate, reallocate, reset or destroy (mi_free is thread-safe, so free
 *   works anywhere). Calls from another thread fail with AF_ERR_THREAD after
 *   one comparison with pthread_self(). When the owner thread exits, mimalloc
 *   deletes the heap itself (its live blocks stay valid but are never
 *   reclaimed); a thread-exit hook then marks the instance orphaned (owner
 *   0) before the thread's pthread_t can be reused by a new thread, so no
 *   later call can reach the dead heap. af_destroy from a thread other than
 *   the owner (a Python finalizer, say) must not call into the heap either:
 *   the heap is abandoned to mimalloc, which deletes it when the owner exits,
 *   and _af_mimalloc_heaps_leaked() counts it.
 *
 * "jemalloc-arena": a private arena (mallctl "arenas.create") with a private
 * explicit thread cache ("tcache.create"). Every call names both, so the
 * threads' own caches never hold one of its blocks, and reset flushes the
 * private cache before "arena.<i>.reset" discards every block, as jemalloc
 * requires. (Without any cache, MALLOCX_TCACHE_NONE, an alloc/free pair
 * costs ~300 ns: each free of a slab's last block returns the slab.) An
 * explicit cache, like the counters, must not be used by two threads at
 * once: the instance is not AF_CAP_THREAD_SAFE, though any one thread at a
 * time may use it.
 * ------------------------------------------------------------------------- */
#include "syslib.h"

#include <pthread.h>
#include <stdlib.h>

static inline size_t small_floor(size_t size) {
  return size < AF_SYSLIB_SMALL_FLOOR ? AF_SYSLIB_SMALL_FLOOR : size;
}

/* ----------------------------------------------------------------------------
 * mimalloc-heap: instances and the per-thread list of heaps a thread owns
 * ------------------------------------------------------------------------- */

typedef struct mheap_allocator mheap_allocator;
typedef struct owned_heaps owned_heaps;

struct mheap_allocator {
  af_allocator base;              /* first: vtable and last_error */
  af_counters counters;           /* this instance's calls only */
  const af_mimalloc_api *api;     /* never NULL */
  af_mi_heap *heap;               /* valid while owner != 0 */
  pthread_t owner;                /* creating thread; 0 once it has exited (atomic: read by any thread) */
  owned_heaps *home;              /* owner's list; NULL once orphaned (registry_lock) */
  mheap_allocator *next, *prev;   /* links in home's list (registry_lock) */
};

/* The heaps one thread owns: the thread-exit hook orphans them all. */
struct owned_heaps {
  mheap_allocator *first;         /* registry_lock */
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_once_t registry_once = PTHREAD_ONCE_INIT;
static pthread_key_t registry_key;   /* per thread: its owned_heaps, or NULL */
static bool registry_key_ok;         /* pthread_key_create succeeded */
static uint64_t heaps_leaked;        /* atomic */

uint64_t _af_mimalloc_heaps_leaked(void) { return __atomic_load_n(&heaps_leaked, __ATOMIC_RELAXED); }

static inline pthread_t mheap_owner(const mheap_allocator *h) {
  return __atomic_load_n(&h->owner, __ATOMIC_RELAXED);
}
static inline bool mheap_on_owner(const mheap_allocator *h) {
  return mheap_owner(h) == pthread_self(); /* pthread_self() is never 0 */
}

static void list_unlink(mheap_allocator *h) {
  if (h->prev != NULL) h->prev->next = h->next;
  else h->home->first = h->next;
  if (h->next != NULL) h->next->prev = h->prev;
  h->next = h->prev = NULL;
}

/* Thread-exit hook: mimalloc deletes this thread's heaps around now, so
   every instance it owned becomes unusable. Runs on the exiting thread. */
static void owner_thread_exit(void *value) {
  owned_heaps *owned = value;
  pthread_mutex_lock(&registry_lock);
  for (mheap_allocator *h = owned->first, *next; h != NULL; h = next) {
    next = h->next;
    __atomic_store_n(&h->owner, (pthread_t)0, __ATOMIC_RELAXED);
    h->heap = NULL;
    h->home = NULL;
    h->next = h->prev = NULL;
  }
  pthread_mutex_unlock(&registry_lock);
  free(owned);
}

static void registry_init(void) { registry_key_ok = pthread_key_create(&registry_key, owner_thread_exit) == 0; }

/* Adds h to the calling thread's list. */
static int registry_add(mheap_allocator *h) {
  pthread_once(&registry_once, registry_init);
  if (!registry_key_ok) return AF_ERR_NOMEM;
  owned_heaps *owned = pthread_getspecific(registry_key);
  if (owned == NULL) {
    owned = calloc(1, sizeof *owned);
    if (owned == NULL || pthread_setspecific(registry_key, owned) != 0) {
      free(owned);
      return AF_ERR_NOMEM;
    }
  }
  pthread_mutex_lock(&registry_lock);
  h->home = owned;
  h->prev = NULL;
  h->next = owned->first;
  if (owned->first != NULL) owned->first->prev = h;
  owned->first = h;
  pthread_mutex_unlock(&registry_lock);
  return AF_OK;
}

/* Removes h from its owner's list (any thread); frees the owner's empty
   list when the caller is the owner. */
static void registry_remove(mheap_allocator *h) {
  owned_heaps *empty = NULL;
  pthread_mutex_lock(&registry_lock);
  if (h->home != NULL) {
    owned_heaps *home = h->home;
    list_unlink(h);
    h->home = NULL;
    if (home->first == NULL && mheap_on_owner(h)) empty = home;
  }
  pthread_mutex_unlock(&registry_lock);
  if (empty != NULL) {
    pthread_setspecific(registry_key, NULL);
    free(empty);
  }
}

/* ----------------------------------------------------------------------------
 * mimalloc-heap: the vtable
 * ------------------------------------------------------------------------- */

static void *mheap_alloc(af_allocator *self, size_t size, size_t align) {
  mheap_allocator *h = (mheap_allocator *)self;
  if (af_unlikely(!mheap_on_owner(h))) return af_fail(self, &h->counters, AF_ERR_THREAD);
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? h->api->heap_malloc(h->heap, small_floor(size))
                                         : h->api->heap_malloc_aligned(h->heap, size, align);
  if (af_unlikely(p == NULL)) return af_fail(self, &h->counters, AF_ERR_NOMEM);
  af_count_alloc(&h->counters, size);
  return p;
}

static void *mheap_calloc(af_allocator *self, size_t size, size_t align) {
  mheap_allocator *h = (mheap_allocator *)self;
  if (af_unlikely(!mheap_on_owner(h))) return af_fail(self, &h->counters, AF_ERR_THREAD);
  void *p = align <= AF_SYSLIB_MIN_ALIGN ? h->api->heap_zalloc(h->heap, small_floor(size))
                                         : h->api->heap_zalloc_aligned(h->heap, size, align);
  if (af_unlikely(p == NULL)) return af_fail(self, &h->counters, AF_ERR_NOMEM);
  af_count_alloc(&h->counters, size);
  return p;
}

static int mheap_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  mheap_allocator *h = (mheap_allocator *)self;
  (void)align;
  h->api->free(ptr); /* any thread */
  af_count_free(&h->counters, size);
  return AF_OK;
}

static void *mheap_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  mheap_allocator *h = (mheap_allocator *)self;
  if (af_unlikely(!mheap_on_owner(h))) return af_fail(self, &h->counters, AF_ERR_THREAD);
  void *p = align <= AF_SYSLIB_MIN_ALIGN
              ? h->api->heap_realloc(h->heap, ptr, small_floor(new_size))
              : h->api->heap_realloc_aligned(h->heap, ptr, new_size, align);
  if (af_unlikely(p == NULL)) return af_fail(self, &h->counters, AF_ERR_NOMEM);
  af_count_realloc(&h->counters, old_size, new_size);
  return p;
}

static size_t mheap_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  return ((mheap_allocator *)self)->api->usable_size(ptr);
}

static int mheap_owns(af_allocator *self, const void *ptr) {
  (void)self, (void)ptr;
  return -1;
}

static int mheap_reset(af_allocator *self) {
  mheap_allocator *h = (mheap_allocator *)self;
  if (!mheap_on_owner(h)) {
    h->counters.failures++;
    return AF_ERR_THREAD;
  }
  af_mi_heap *fresh = h->api->heap_new(); /* first, so a failure changes nothing */
  if (fresh == NULL) {
    h->counters.failures++;
    return AF_ERR_NOMEM;
  }
  h->api->heap_destroy(h->heap);
  h->heap = fresh;
  af_count_reset(&h->counters);
  return AF_OK;
}

static void mheap_trim(af_allocator *self) { (void)self; }

static void mheap_get_stats(af_allocator *self, af_stats *out) {
  af_counters_fill(&((mheap_allocator *)self)->counters, out);
}

static void mheap_destroy(af_allocator *self) {
  mheap_allocator *h = (mheap_allocator *)self;
  if (mheap_on_owner(h)) {
    h->api->heap_destroy(h->heap);
  } else {
    /* Wrong thread, or the owner is gone: never touch the heap from here. */
    __atomic_fetch_add(&heaps_leaked, 1, __ATOMIC_RELAXED);
  }
  registry_remove(h);
  free(h);
}

static const af_vtable mheap_vtable = {
  "mimalloc-heap",
  AF_CAP_SYSTEM | AF_CAP_FREE | AF_CAP_RESET | AF_CAP_THREAD_BOUND,
  mheap_alloc, mheap_calloc, mheap_free, mheap_realloc, mheap_usable_size, mheap_owns,
  mheap_reset, mheap_trim, mheap_get_stats, mheap_destroy, NULL, NULL, /* wraps nothing */
};

af_allocator *_af_mimalloc_heap_new(af_error *err) {
  const af_mimalloc_api *api = _af_syslib_mimalloc(err);
  if (api == NULL) return NULL;
  mheap_allocator *h = calloc(1, sizeof *h);
  if (h == NULL) goto nomem;
  h->base.vt = &mheap_vtable;
  h->api = api;
  h->owner = pthread_self();
  h->heap = api->heap_new();
  if (h->heap == NULL) goto nomem;
  if (registry_add(h) != AF_OK) {
    api->heap_destroy(h->heap);
    goto nomem;
  }
  return &h->base;
nomem:
  free(h);
  _af_error_set(err, AF_ERR_NOMEM, "out of memory creating a mimalloc heap");
  return NULL;
}

/* ----------------------------------------------------------------------------
 * jemalloc-arena
 * ------------------------------------------------------------------------- */

typedef struct jarena_allocator {
  af_allocator base;              /* first: vtable and last_error */
  af_counters counters;           /* this instance's calls only */
  af_jemalloc_api api;            /* copy of the library's table */
  int flags;                      /* MALLOCX_ARENA(arena) | MALLOCX_TCACHE(tcache) */
  int free_flags;                 /* MALLOCX_TCACHE(tcache): the block knows its arena */
  unsigned arena;                 /* index from arenas.create; valid until destroy */
  unsigned tcache;                /* index from tcache.create; valid until destroy */
  char reset_name[40];            /* "arena.<i>.reset" */
} jarena_allocator;

static inline int jarena_flags(const jarena_allocator *j, size_t align) {
  return j->flags | (align <= AF_SYSLIB_MIN_ALIGN ? 0 : AF_MALLOCX_LG_ALIGN(af_log2(align)));
}

static void *jarena_alloc(af_allocator *self, size_t size, size_t align) {
  jarena_allocator *j = (jarena_allocator *)self;
  void *p = j->api.mallocx(small_floor(size), jarena_flags(j, align));
  if (af_unlikely(p == NULL)) return af_fail(self, &j->counters, AF_ERR_NOMEM);
  af_count_alloc(&j->counters, size);
  return p;
}

static void *jarena_calloc(af_allocator *self, size_t size, size_t align) {
  jarena_allocator *j = (jarena_allocator *)self;
  void *p = j->api.mallocx(small_floor(size), jarena_flags(j, align) | AF_MALLOCX_ZERO);
  if (af_unlikely(p == NULL)) return af_fail(self, &j->counters, AF_ERR_NOMEM);
  af_count_alloc(&j->counters, size);
  return p;
}

static int jarena_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  jarena_allocator *j = (jarena_allocator *)self;
  (void)align;
  j->api.dallocx(ptr, j->free_flags);
  af_count_free(&j->counters, size);
  return AF_OK;
}

static void *jarena_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  jarena_allocator *j = (jarena_allocator *)self;
  void *p = j->api.rallocx(ptr, small_floor(new_size), jarena_flags(j, align));
  if (af_unlikely(p == NULL)) return af_fail(self, &j->counters, AF_ERR_NOMEM);
  af_count_realloc(&j->counters, old_size, new_size);
  return p;
}

static size_t jarena_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  return ((jarena_allocator *)self)->api.sallocx(ptr, 0);
}

static int jarena_owns(af_allocator *self, const void *ptr) {
  (void)self, (void)ptr;
  return -1;
}

static int jarena_reset(af_allocator *self) {
  jarena_allocator *j = (jarena_allocator *)self;
  if (j->api.mallctl("tcache.flush", NULL, NULL, &j->tcache, sizeof j->tcache) != 0 ||
      j->api.mallctl(j->reset_name, NULL, NULL, NULL, 0) != 0) {
    j->counters.failures++;
    return AF_ERR_NOMEM;
  }
  af_count_reset(&j->counters);
  return AF_OK;
}

static void jarena_trim(af_allocator *self) { (void)self; }

static void jarena_get_stats(af_allocator *self, af_stats *out) {
  af_counters_fill(&((jarena_allocator *)self)->counters, out);
}

static void jarena_destroy(af_allocator *self) {
  jarena_allocator *j = (jarena_allocator *)self;
  char name[40];
  snprintf(name, sizeof name, "arena.%u.destroy", j->arena);
  /* flushes the cache first; then the arena: fails only for arenas bound to a thread, never ours */
  (void)j->api.mallctl("tcache.destroy", NULL, NULL, &j->tcache, sizeof j->tcache);
  (void)j->api.mallctl(name, NULL, NULL, NULL, 0);
  free(j);
}

static const af_vtable jarena_vtable = {
  "jemalloc-arena",
  AF_CAP_SYSTEM | AF_CAP_FREE | AF_CAP_RESET,
  jarena_alloc, jarena_calloc, jarena_free, jarena_realloc, jarena_usable_size, jarena_owns,
  jarena_reset, jarena_trim, jarena_get_stats, jarena_destroy, NULL, NULL, /* wraps nothing */
};

af_allocator *_af_jemalloc_arena_new(af_error *err) {
  const af_jemalloc_api *api = _af_syslib_jemalloc(err);
  if (api == NULL) return NULL;
  jarena_allocator *j = calloc(1, sizeof *j);
  if (j == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "out of memory creating a jemalloc arena");
    return NULL;
  }
  unsigned arena = 0, tcache = 0;
  size_t len = sizeof arena;
  int rc = api->mallctl("arenas.create", &arena, &len, NULL, 0);
  if (rc != 0) {
    free(j);
    _af_error_set(err, AF_ERR_NOMEM, "jemalloc could not create an arena (mallctl arenas.create: %s)",
                  strerror(rc));
    return NULL;
  }
  len = sizeof tcache;
  rc = api->mallctl("tcache.create", &tcache, &len, NULL, 0);
  if (rc != 0) {
    char name[40];
    snprintf(name, sizeof name, "arena.%u.destroy", arena);
    (void)api->mallctl(name, NULL, NULL, NULL, 0);
    free(j);
    _af_error_set(err, AF_ERR_NOMEM, "jemalloc could not create a thread cache (mallctl tcache.create: %s)",
                  strerror(rc));
    return NULL;
  }
  j->base.vt = &jarena_vtable;
  j->api = *api;
  j->arena = arena;
  j->tcache = tcache;
  j->free_flags = AF_MALLOCX_TCACHE(tcache);
  j->flags = AF_MALLOCX_ARENA(arena) | j->free_flags;
  snprintf(j->reset_name, sizeof j->reset_name, "arena.%u.reset", arena);
  return &j->base;
}
