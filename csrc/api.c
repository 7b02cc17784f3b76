/* ----------------------------------------------------------------------------
 * api.c: the af_* entry points. They validate arguments once, so that no
 * allocator has to, then dispatch through the vtable (the small shared
 * services, status texts, errors, assertions and the clock, are errors_and_clock.c).
 * ------------------------------------------------------------------------- */
#include "af_internal.h"

/* ----------------------------------------------------------------------------
 * Argument checks shared by the entry points
 * ------------------------------------------------------------------------- */

static bool check_args(af_allocator *a, size_t size, size_t align) {
  if (af_unlikely(size > (size_t)AF_MAX_ALLOC_SIZE)) {
    a->last_error = AF_ERR_SIZE;
    return false;
  }
  if (af_unlikely(!af_is_pow2(align) || align > AF_MAX_ALIGN)) {
    a->last_error = AF_ERR_ALIGN;
    return false;
  }
  return true;
}

/* ----------------------------------------------------------------------------
 * Entry points
 * ------------------------------------------------------------------------- */

void *af_alloc(af_allocator *a, size_t size, size_t align) {
  if (!check_args(a, size, align)) return NULL;
  return a->vt->alloc(a, size, align);
}

void *af_calloc(af_allocator *a, size_t size, size_t align) {
  if (!check_args(a, size, align)) return NULL;
  return a->vt->calloc(a, size, align);
}

int af_free(af_allocator *a, void *ptr, size_t size, size_t align) {
  if (ptr == NULL) return AF_OK;
  if (!check_args(a, size, align)) return a->last_error;
  int status = a->vt->free(a, ptr, size, align);
  if (status != AF_OK) a->last_error = status;
  return status;
}

void *af_realloc(af_allocator *a, void *ptr, size_t old_size, size_t new_size, size_t align) {
  if (!check_args(a, new_size, align) || !check_args(a, old_size, align)) return NULL;
  if (ptr == NULL) return a->vt->alloc(a, new_size, align);
  return a->vt->realloc(a, ptr, old_size, new_size, align);
}

size_t af_usable_size(af_allocator *a, const void *ptr, size_t size, size_t align) {
  if (ptr == NULL || !check_args(a, size, align)) return 0;
  return a->vt->usable_size(a, ptr, size, align);
}

int af_owns(af_allocator *a, const void *ptr) { return ptr == NULL ? 0 : a->vt->owns(a, ptr); }

int af_reset(af_allocator *a) {
  int status = a->vt->reset(a);
  if (status != AF_OK) a->last_error = status;
  return status;
}

void af_trim(af_allocator *a) { a->vt->trim(a); }

void af_get_stats(af_allocator *a, af_stats *out) {
  memset(out, 0, sizeof *out);
  a->vt->get_stats(a, out);
}

void af_destroy(af_allocator *a) {
  if (a != NULL) a->vt->destroy(a);
}

const char *af_name(af_allocator *a) { return a->vt->name; }
uint32_t af_caps(af_allocator *a) { return a->vt->caps; }
int af_last_error(af_allocator *a) { return a->last_error; }
void af_noop(void) {}

/* ----------------------------------------------------------------------------
 * Batch path: one call from Python for n blocks.
 * ------------------------------------------------------------------------- */

/* Both take the locked wrapper's lock once for the whole batch. */
static size_t free_batch_unlocked(af_allocator *inner, void **ptrs, size_t n, size_t size, size_t align) {
  int (*release)(af_allocator *, void *, size_t, size_t) = inner->vt->free;
  for (size_t i = 0; i < n; i++) {
    if (ptrs[i] == NULL) continue;
    int status = release(inner, ptrs[i], size, align);
    if (af_unlikely(status != AF_OK)) {
      inner->last_error = status;
      return i;
    }
  }
  return n;
}

size_t af_alloc_batch(af_allocator *a, size_t size, size_t align, size_t n, void **out) {
  if (!check_args(a, size, align)) return 0;
  af_allocator *inner = _af_inner_acquire(a);
  void *(*alloc)(af_allocator *, size_t, size_t) = inner->vt->alloc;
  size_t done = n;
  for (size_t i = 0; i < n; i++) {
    out[i] = alloc(inner, size, align);
    if (af_unlikely(out[i] == NULL)) {
      int status = inner->last_error;
      free_batch_unlocked(inner, out, i, size, align); /* all-or-nothing */
      a->last_error = inner->last_error = status;
      done = 0;
      break;
    }
  }
  _af_inner_release(a);
  return done;
}

size_t af_free_batch(af_allocator *a, void **ptrs, size_t n, size_t size, size_t align) {
  if (!check_args(a, size, align)) return 0;
  af_allocator *inner = _af_inner_acquire(a);
  size_t done = free_batch_unlocked(inner, ptrs, n, size, align);
  if (done != n) a->last_error = inner->last_error;
  _af_inner_release(a);
  return done;
}
