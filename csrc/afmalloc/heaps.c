/* ----------------------------------------------------------------------------
 * heaps.c: afmalloc's thread heaps. Each thread allocates from a slab
 * allocator of its own (slab.c, default classes), created on its first
 * allocation, so the small-object paths take no lock at all.
 *
 * Who owns a block. Every slab is 64 KiB aligned and registered, granule by
 * granule, in one process-wide radix map (_afm_owners: granule -> heap) by the
 * slab observer (_af_slab_observe) before any block of it is handed out. A
 * free looks its pointer up there: the caller's own heap frees it at once;
 * another heap gets it pushed onto its `remote` stack (lock-free), which the
 * owner drains on its next allocation; no heap means the block is a region
 * (regions.c) or not ours at all (real.c).
 *
 * Invariants:
 * - only the owning thread calls a heap's slab allocator (an orphan's: the
 *   thread that adopts it, after taking it off the orphan list under the lock);
 * - a heap is never freed: an entry of _afm_owners stays valid to read at any
 *   time, and blocks freed into a heap whose thread is gone wait on its remote
 *   stack for the next owner;
 * - _afm_owners is written under g_owners_lock and read without it: a granule's
 *   entry changes only while no block of it is live (slab mapped or unmapped),
 *   so a thread freeing a live block reads the entry written before the block
 *   was handed out (and handed over to it); a foreign pointer's granule holds
 *   NULL, or a leaf being published, either of which reads as "not ours";
 * - remote stacks are pushed with a CAS and emptied whole with an exchange,
 *   so there is no ABA problem: nobody pops a single element.
 *
 * Thread exit: a pthread key's destructor puts the heap on the orphan list,
 * and the next new thread adopts it (with its blocks, free and live). After
 * that the exiting thread allocates from the real allocator (real.c).
 *
 * fork: prepare takes every lock of afmalloc (regions, heaps, owners), the
 * parent releases them, the child re-initialises them. In the child only the
 * forking thread exists: the heaps other threads owned may have been half way
 * through an update, so they are marked lost and never adopted (their memory
 * stays mapped; frees into them go to their remote stacks, which nobody
 * drains). Heaps already orphaned are whole and stay adoptable.
 * ------------------------------------------------------------------------- */
#include "afmalloc.h"

#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

__thread afm_thread _afm_self AFM_TLS;

/* The owner map's root in .bss: zero, and resident only where used, so a
   lookup works before anything is initialised (a free of a pointer glibc
   handed out before our first malloc). */
static void **g_owner_root[(size_t)1 << AF_RADIX_ROOT_BITS];
af_radixmap _afm_owners = {.root = g_owner_root, .root_lo = (size_t)1 << AF_RADIX_ROOT_BITS, .root_hi = 0};
static pthread_mutex_t g_owners_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_mutex_t g_heaps_lock = PTHREAD_MUTEX_INITIALIZER;
static afm_heap *g_heaps;     /* every heap, under g_heaps_lock */
static afm_heap *g_orphans;   /* heaps of exited threads, under g_heaps_lock */

static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static pthread_key_t g_exit_key;

/* ----------------------------------------------------------------------------
 * Ownership
 * ------------------------------------------------------------------------- */

/* The slab observer: a heap's slab allocator mapped or unmaps a slab. */
static int record_slab(void *heap, uintptr_t base, size_t bytes, bool mapped) {
  pthread_mutex_lock(&g_owners_lock);
  int status = _af_radixmap_set_range(&_afm_owners, base, bytes, mapped ? heap : NULL);
  pthread_mutex_unlock(&g_owners_lock);
  return status;
}

size_t _afm_slab_usable(afm_heap *h, const void *p) {
  /* Safe from any thread while p is live: the owner may be carving other
     blocks of p's slab, but it changes nothing usable_size reads about p
     (the slab's base and block size are fixed; its carved end only grows
     while a block of it is live). */
  return h->slab->vt->usable_size(h->slab, p, 0, AF_DEFAULT_ALIGN);
}

/* ----------------------------------------------------------------------------
 * Frees from other threads
 * ------------------------------------------------------------------------- */

void _afm_remote_free(afm_heap *owner, void *p) {
  void *head = atomic_load_explicit(&owner->remote, memory_order_relaxed);
  do {
    *(void **)p = head;
  } while (!atomic_compare_exchange_weak_explicit(&owner->remote, &head, p, memory_order_release,
                                                  memory_order_relaxed));
}

void _afm_drain(afm_heap *h) {
  void *b = atomic_exchange_explicit(&h->remote, NULL, memory_order_acquire);
  while (b != NULL) {
    void *next = *(void **)b;
    if (h->slab->vt->free(h->slab, b, 0, AF_DEFAULT_ALIGN) != AF_OK) _afm_invalid_pointer("free", b);
    b = next;
  }
}

/* ----------------------------------------------------------------------------
 * Heap life cycle
 * ------------------------------------------------------------------------- */

/* A new heap, under g_heaps_lock; NULL when out of memory. */
static afm_heap *new_heap(void) {
  afm_heap *h = _afm_real_calloc(1, sizeof *h);
  if (h == NULL) return NULL;
  h->slab = af_slab_new(NULL, NULL);
  if (h->slab == NULL) {
    _afm_real_free(h);
    return NULL;
  }
  /* malloc.c sends every request above AFM_SLAB_MAX to the regions, so the
     slab's own large cache is never used: its top class must be that size. */
  af_assert(af_slab_class_for(h->slab, AFM_SLAB_MAX) == AFM_SLAB_MAX);
  af_assert(af_slab_class_for(h->slab, AFM_SLAB_MAX + 1) == 0);
  _af_slab_observe(h->slab, record_slab, h);
  h->next = g_heaps;
  g_heaps = h;
  return h;
}

/* The key's destructor: the thread is exiting. */
static void thread_exit(void *heap) {
  afm_heap *h = heap;
  _afm_self.heap = NULL;
  _afm_self.exited = true;
  pthread_mutex_lock(&g_heaps_lock);
  if (h->state == AFM_HEAP_OWNED) {
    h->state = AFM_HEAP_ORPHAN;
    h->next_orphan = g_orphans;
    g_orphans = h;
  }
  pthread_mutex_unlock(&g_heaps_lock);
}

afm_heap *_afm_heap_acquire(void) {
  afm_thread *self = &_afm_self;
  if (self->heap != NULL || self->exited || self->inside) return self->heap;
  afm_enter();
  _afm_process_init();
  pthread_mutex_lock(&g_heaps_lock);
  afm_heap *h = g_orphans;
  if (h != NULL) g_orphans = h->next_orphan;
  else h = new_heap();
  if (h != NULL) h->state = AFM_HEAP_OWNED;
  pthread_mutex_unlock(&g_heaps_lock);
  if (h != NULL) {
    self->heap = h;
    /* A key's destructor runs only for a non-NULL value. Main thread: never
       (exit() runs no key destructors), which is what we want. */
    (void)pthread_setspecific(g_exit_key, h);
  }
  afm_leave();
  return h;
}

/* ----------------------------------------------------------------------------
 * fork
 * ------------------------------------------------------------------------- */

static void fork_prepare(void) {
  _afm_regions_lock();
  pthread_mutex_lock(&g_heaps_lock);
  pthread_mutex_lock(&g_owners_lock);
}

static void fork_parent(void) {
  pthread_mutex_unlock(&g_owners_lock);
  pthread_mutex_unlock(&g_heaps_lock);
  _afm_regions_unlock();
}

static void fork_child(void) {
  pthread_mutex_init(&g_owners_lock, NULL);
  pthread_mutex_init(&g_heaps_lock, NULL);
  _afm_regions_unlock();
  for (afm_heap *h = g_heaps; h != NULL; h = h->next)
    if (h->state == AFM_HEAP_OWNED && h != _afm_self.heap) h->state = AFM_HEAP_LOST;
}

/* ----------------------------------------------------------------------------
 * Process start
 * ------------------------------------------------------------------------- */

static void init_once(void) {
  bool was_inside = _afm_self.inside;
  afm_enter(); /* pthread_atfork may allocate */
  (void)pthread_key_create(&g_exit_key, thread_exit);
  (void)pthread_atfork(fork_prepare, fork_parent, fork_child);
  _afm_self.inside = was_inside;
}

void _afm_process_init(void) { pthread_once(&g_once, init_once); }

/* As early as possible, so that our prepare handler runs after those that
   other libraries register later (handlers run last-registered first), and
   those may well allocate. */
__attribute__((constructor)) static void afm_start(void) { _afm_process_init(); }

/* ----------------------------------------------------------------------------
 * Errors the program made
 * ------------------------------------------------------------------------- */

void _afm_invalid_pointer(const char *call, const void *p) {
  /* No stdio: it may allocate, and the heap may be broken. */
  char line[128];
  static const char hex[] = "0123456789abcdef";
  size_t n = 0;
  const char *prefix = "afmalloc: ";
  while (*prefix) line[n++] = *prefix++;
  while (*call && n < 40) line[n++] = *call++;
  const char *middle = "(): invalid pointer 0x";
  while (*middle) line[n++] = *middle++;
  for (int shift = 60; shift >= 0; shift -= 4) line[n++] = hex[((uintptr_t)p >> shift) & 15];
  line[n++] = '\n';
  (void)!write(2, line, n);
  abort();
}
