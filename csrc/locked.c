/* ----------------------------------------------------------------------------
 * locked.c: af_locked_new, a wrapper that makes any allocator safe to share
 * between threads by running every vtable call of the inner allocator under
 * one lock.
 *
 * Invariants:
 * - The wrapper owns `inner`: destroying the wrapper destroys inner.
 * - The wrapper's vtable is a per-instance copy: same name as inner, caps of
 *   inner plus AF_CAP_THREAD_SAFE, functions of this file. Its acquire_inner
 *   and release_inner slots hand out `inner` under the lock, so code that needs
 *   the inner allocator (the batch path, the slab's introspection) asks the
 *   vtable instead of recognising a wrapper.
 * - last_error of the wrapper is written only under the lock, copied from
 *   inner after a failed call.
 *
 * The lock is a test-and-test-and-set spin lock: one atomic exchange when
 * uncontended (cheaper than a pthread mutex's call + CAS pair), a bounded
 * spin on a plain load when contended, then sched_yield so that a lock holder
 * preempted on a 2-core machine gets the CPU back.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"

#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>

/* Spins on the lock word before yielding the CPU. */
#ifndef AF_LOCK_SPIN
#define AF_LOCK_SPIN 128
#endif

typedef struct af_locked {
  af_allocator base;         /* first: the object callers hold */
  af_vtable vt;              /* base.vt points here */
  atomic_int lock;           /* 0 free, 1 held */
  af_allocator *inner;       /* never NULL; only touched with the lock held */
} af_locked;

/* ----------------------------------------------------------------------------
 * The lock
 * ------------------------------------------------------------------------- */

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  __asm__ __volatile__("yield");
#endif
}

static inline void lock_take(atomic_int *lock) {
  while (atomic_exchange_explicit(lock, 1, memory_order_acquire) != 0) {
    unsigned spins = 0;
    while (atomic_load_explicit(lock, memory_order_relaxed) != 0) {
      if (++spins < AF_LOCK_SPIN) cpu_relax();
      else sched_yield();
    }
  }
}

static inline void lock_drop(atomic_int *lock) { atomic_store_explicit(lock, 0, memory_order_release); }

/* ----------------------------------------------------------------------------
 * Forwarding vtable
 * ------------------------------------------------------------------------- */

static void *locked_alloc(af_allocator *self, size_t size, size_t align) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  void *p = l->inner->vt->alloc(l->inner, size, align);
  if (p == NULL) self->last_error = l->inner->last_error;
  lock_drop(&l->lock);
  return p;
}

static void *locked_calloc(af_allocator *self, size_t size, size_t align) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  void *p = l->inner->vt->calloc(l->inner, size, align);
  if (p == NULL) self->last_error = l->inner->last_error;
  lock_drop(&l->lock);
  return p;
}

static int locked_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  int status = l->inner->vt->free(l->inner, ptr, size, align);
  if (status != AF_OK) self->last_error = status;
  lock_drop(&l->lock);
  return status;
}

static void *locked_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  void *p = l->inner->vt->realloc(l->inner, ptr, old_size, new_size, align);
  if (p == NULL) self->last_error = l->inner->last_error;
  lock_drop(&l->lock);
  return p;
}

static size_t locked_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  size_t n = l->inner->vt->usable_size(l->inner, ptr, size, align);
  lock_drop(&l->lock);
  return n;
}

static int locked_owns(af_allocator *self, const void *ptr) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  int answer = l->inner->vt->owns(l->inner, ptr);
  lock_drop(&l->lock);
  return answer;
}

static int locked_reset(af_allocator *self) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  int status = l->inner->vt->reset(l->inner);
  if (status != AF_OK) self->last_error = status;
  lock_drop(&l->lock);
  return status;
}

static void locked_trim(af_allocator *self) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  l->inner->vt->trim(l->inner);
  lock_drop(&l->lock);
}

static void locked_get_stats(af_allocator *self, af_stats *out) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  l->inner->vt->get_stats(l->inner, out);
  lock_drop(&l->lock);
}

static af_allocator *locked_acquire_inner(af_allocator *self) {
  af_locked *l = (af_locked *)self;
  lock_take(&l->lock);
  return l->inner;
}

static void locked_release_inner(af_allocator *self) { lock_drop(&((af_locked *)self)->lock); }

static void locked_destroy(af_allocator *self) {
  af_locked *l = (af_locked *)self;
  /* No lock: destroying while other threads still call is the caller's bug. */
  l->inner->vt->destroy(l->inner);
  free(l);
}

/* ----------------------------------------------------------------------------
 * Construction
 * ------------------------------------------------------------------------- */

af_allocator *af_locked_new(af_allocator *inner, af_error *err) {
  if (inner == NULL) {
    _af_error_set(err, AF_ERR_INVALID, "af_locked_new: inner allocator is NULL");
    return NULL;
  }
  af_locked *l = calloc(1, sizeof *l);
  if (l == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "af_locked_new: out of memory for the wrapper");
    return NULL;
  }
  l->vt = (af_vtable){
      .name = inner->vt->name,
      .caps = inner->vt->caps | AF_CAP_THREAD_SAFE,
      .alloc = locked_alloc,
      .calloc = locked_calloc,
      .free = locked_free,
      .realloc = locked_realloc,
      .usable_size = locked_usable_size,
      .owns = locked_owns,
      .reset = locked_reset,
      .trim = locked_trim,
      .get_stats = locked_get_stats,
      .destroy = locked_destroy,
      .acquire_inner = locked_acquire_inner,
      .release_inner = locked_release_inner,
  };
  l->base.vt = &l->vt;
  l->base.last_error = AF_OK;
  atomic_init(&l->lock, 0);
  l->inner = inner;
  return &l->base;
}

