/* ----------------------------------------------------------------------------
 * batch.c: alloc_many and free_many, each one C call for n blocks (one
 * af_alloc_batch / af_free_batch call takes the C allocator's lock once).
 * Both are all or nothing, like their single-block forms, and decide a
 * refusal the same way (allocator.c): one reason code before anything
 * changes.
 * ------------------------------------------------------------------------- */
#include "safe.h"

/* Room for n pointers (at least one, so that NULL always means no memory). */
static void **pointer_array(Py_ssize_t n) {
  if ((size_t)n > PY_SSIZE_T_MAX / sizeof(void *)) return NULL;
  return PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(void *));
}

/* ----------------------------------------------------------------------------
 * alloc_many
 * ------------------------------------------------------------------------- */

/* Make the n blank Blocks of `blocks` own ptrs[0..n), just allocated, and
   link them into the live list (lock held). */
static void adopt(AllocatorObject *self, PyObject *blocks, void **ptrs, Py_ssize_t n, long long size, long long align) {
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockObject *b = (BlockObject *)PyList_GET_ITEM(blocks, i);
    b->address = (uintptr_t)ptrs[i];
    b->size = (Py_ssize_t)size;
    b->align = (Py_ssize_t)align;
    b->generation = self->generation;
    Py_INCREF(self);
    b->owner = (PyObject *)self;
    safe_live_link(self, b);
  }
}

/* alloc_many(n, size, align=16) -> [Block]. Allocates first, with the lock
   held, then makes the Blocks (with the collector paused: no Python code
   runs), so that a huge n the allocator refuses costs no objects. */
PyObject *safe_alloc_many(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  AllocatorObject *self = (AllocatorObject *)op;
  static const char *const names[] = {"n", "size", "align", NULL};
  PyObject *found[3];
  long long n, size, align = AF_DEFAULT_ALIGN;
  if (safe_parse_args(args, nargs, kwnames, names, 2, found, "alloc_many(n, size, align=16)") < 0) return NULL;
  int reason = safe_size_arg(found[0], &n);
  if (reason != 0) return safe_refuse_arg(reason, self, "alloc_many", "n", found[0]);
  if ((reason = safe_size_arg(found[1], &size)) != 0)
    return safe_refuse_arg(reason, self, "alloc_many", "size", found[1]);
  if (found[2] != NULL && (reason = safe_align_arg(found[2], &align)) != 0)
    return safe_refuse_arg(reason, self, "alloc_many", "align", found[2]);
  void **ptrs = pointer_array((Py_ssize_t)n);
  if (ptrs == NULL) return PyErr_NoMemory();
  reason = safe_enter(self);
  if (reason != 0) {
    PyMem_Free(ptrs);
    return safe_refuse(reason, self, "alloc_many", NULL);
  }
  PyObject *blocks = NULL;
  if (n > 0 && entry.alloc_batch(self->handle, (size_t)size, (size_t)align, (size_t)n, ptrs) != (size_t)n) {
    reason = entry.last_error(self->handle);
  } else {
    blocks = safe_blank_blocks((Py_ssize_t)n);
    if (blocks == NULL) { /* out of memory for the objects: give the memory back */
      (void)entry.free_batch(self->handle, ptrs, (size_t)n, (size_t)size, (size_t)align);
      reason = -1;
    } else {
      adopt(self, blocks, ptrs, (Py_ssize_t)n, size, align);
    }
  }
  statelock_drop(self->lock);
  PyMem_Free(ptrs);
  if (reason == 0) return blocks;
  if (reason < 0) return PyErr_NoMemory();
  char call[128];
  snprintf(call, sizeof call, "alloc_many(%lld, %lld, align=%lld)", n, size, align);
  return safe_refuse_n(reason, self, call, n * size);
}

/* ----------------------------------------------------------------------------
 * free_many
 * ------------------------------------------------------------------------- */

/* free_many's checks, all before anything changes (lock held): every item
   must be an alive Block of this allocator's current generation, without
   views, listed once. 0 when they all passed: they are retired to FREED with
   their addresses in ptrs. Otherwise the reason, with *culprit the item it
   is about (or *views the count of views), and nothing changed. */
static int retire(AllocatorObject *self, PyObject *blocks, void **ptrs, PyObject **culprit, Py_ssize_t *views) {
  Py_ssize_t n = PyList_GET_SIZE(blocks), exports = 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PyList_GET_ITEM(blocks, i);
    *culprit = item;
    if (!SAFE_IS_BLOCK(item)) return REASON_NOT_A_BLOCK;
    const BlockObject *b = (const BlockObject *)item;
    if (b->owner != (PyObject *)self) return REASON_FOREIGN;
    if (b->state == BLOCK_FREED) return REASON_DOUBLE_FREE;
    if (b->state != BLOCK_ALIVE) return REASON_STALE + b->state;
    if (b->generation != self->generation) return REASON_STALE + BLOCK_RESET;
    exports += b->exports;
  }
  if (exports > 0) {
    *views = exports;
    return REASON_VIEWS;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockObject *b = (BlockObject *)PyList_GET_ITEM(blocks, i);
    if (b->state != BLOCK_ALIVE) { /* retired a moment ago: listed twice */
      for (Py_ssize_t j = 0; j < i; j++) ((BlockObject *)PyList_GET_ITEM(blocks, j))->state = BLOCK_ALIVE;
      *culprit = (PyObject *)b;
      return REASON_LISTED_TWICE;
    }
    b->state = BLOCK_FREED;
    ptrs[i] = (void *)b->address;
  }
  return 0;
}

/* Free the retired blocks (lock held), one af_free_batch call per run of
   equal size and alignment. Returns how many were freed: when the allocator
   refuses a block, its index, with *status saying why; it and the ones after
   it are alive again (still allocated). Freed blocks leave live. */
static Py_ssize_t free_retired(AllocatorObject *self, PyObject *blocks, void **ptrs, int *status) {
  Py_ssize_t n = PyList_GET_SIZE(blocks), freed = 0;
  while (freed < n) {
    const BlockObject *first = (const BlockObject *)PyList_GET_ITEM(blocks, freed);
    Py_ssize_t end = freed + 1;
    while (end < n && ((BlockObject *)PyList_GET_ITEM(blocks, end))->size == first->size &&
           ((BlockObject *)PyList_GET_ITEM(blocks, end))->align == first->align)
      end++;
    size_t count = (size_t)(end - freed);
    size_t done = entry.free_batch(self->handle, ptrs + freed, count, (size_t)first->size, (size_t)first->align);
    freed += (Py_ssize_t)done;
    if (done != count) {
      *status = entry.last_error(self->handle);
      break;
    }
  }
  for (Py_ssize_t i = freed; i < n; i++) ((BlockObject *)PyList_GET_ITEM(blocks, i))->state = BLOCK_ALIVE;
  /* The list `blocks` keeps them alive: dropping the live list's references runs no Python code. */
  for (Py_ssize_t i = 0; i < freed; i++) {
    BlockObject *b = (BlockObject *)PyList_GET_ITEM(blocks, i);
    safe_live_unlink(self, b);
    Py_DECREF(b);
  }
  return freed;
}

/* free_many(blocks: iterable) -> None */
PyObject *safe_free_many(PyObject *op, PyObject *arg) {
  AllocatorObject *self = (AllocatorObject *)op;
  PyObject *blocks = PyList_CheckExact(arg) ? Py_NewRef(arg) : PySequence_List(arg); /* may run Python code */
  if (blocks == NULL) return NULL;
  /* A private copy when given a list would cost more than the check that the
     list cannot change: nothing in between runs Python code. */
  void **ptrs = pointer_array(PyList_GET_SIZE(blocks));
  if (ptrs == NULL) {
    Py_DECREF(blocks);
    return PyErr_NoMemory();
  }
  int reason = safe_enter(self), status = AF_OK;
  PyObject *culprit = NULL;
  Py_ssize_t views = 0, freed = 0, refused_size = 0;
  if (reason == 0) {
    reason = retire(self, blocks, ptrs, &culprit, &views);
    if (reason == 0) {
      freed = free_retired(self, blocks, ptrs, &status);
      if (status != AF_OK) refused_size = ((BlockObject *)PyList_GET_ITEM(blocks, freed))->size;
    }
    statelock_drop(self->lock);
  }
  PyMem_Free(ptrs);
  PyObject *result = NULL;
  if (reason == REASON_VIEWS) {
    safe_refuse_release(reason, self, "free_many", views, 0);
  } else if (reason != 0) {
    safe_refuse(reason, self, "free_many", culprit);
  } else if (status != AF_OK) {
    char call[96];
    snprintf(call, sizeof call, "free_many (block %zd of size %zd)", freed, refused_size);
    safe_refuse(status, self, call, PyList_GET_ITEM(blocks, freed));
  } else {
    result = Py_NewRef(Py_None);
  }
  Py_DECREF(blocks);
  return result;
}
