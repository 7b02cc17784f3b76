/* ----------------------------------------------------------------------------
 * allocstate.c: AllocatorBase, the C base type of allocffi.Allocator, and the
 * lock that guards it (part of the allocffi._blockbuffer module).
 *
 * Why in C: through cffi, one safe alloc()+free() pair cost ~1.2 us, mostly
 * in cffi's tuple-unpacking, GIL-releasing calls, int <-> pointer
 * conversions and Python-level bookkeeping. Here the common case of alloc,
 * calloc, free, alloc_many and free_many is one C call each, which allocates
 * (or frees) through the cffi module's own af_* entry points (bound once, as
 * in rawcall.c) and updates the Python-side state in the same call.
 *
 * The state: the allocator handle, the generation (reset count) and `live`,
 * a dict whose keys are exactly the ALIVE Blocks this allocator handed out.
 *
 * Invariants:
 * - Every change of the state, and every C allocator call that must agree
 *   with it, happens while `lock` is held. Python code (allocffi/allocator.py)
 *   holds it with `with self._lock:` and may release the GIL inside (cffi);
 *   the fast paths here only try it (no waiting with the GIL held) and, when
 *   it is busy, return None so that Python takes the waiting, slow path.
 * - A fast path, once it holds the lock, runs no Python code and never
 *   releases the GIL until it has released the lock: objects that may trigger
 *   the garbage collector (a new Block) are created before taking it, and
 *   errors that import allocffi.errors are raised after releasing it. So the
 *   lock cannot be re-entered by a finalizer, and no view of a block can
 *   appear between its export check and its free.
 * - The allocator call keeps the GIL (like rawcall.c): it is short, the C
 *   allocator's own lock is only held inside one call and no C call waits for
 *   the GIL, so this cannot deadlock; a rare slow call (mmap) only delays
 *   other Python threads.
 * - A fast path declines (returns None, changing nothing) for anything but
 *   the common case: a non-int or out-of-range argument, a busy lock, a
 *   closed allocator, a block that is not an alive block of this allocator's
 *   current generation. The Python slow path then raises the precise error.
 *   It raises itself only when the allocator refused (the af_last_error
 *   status goes to Allocator._failure) or views are outstanding.
 * - Batches are all or nothing: alloc_many gives back every block it got when
 *   one allocation (or the live table) fails; free_many checks every block
 *   (type, owner, alive, generation, views, listed once) before freeing any.
 * ------------------------------------------------------------------------- */
#include "blockbuffer.h"

#include <structmember.h>
#include <stdbool.h>

#include "../include/allocffi.h"

/* ----------------------------------------------------------------------------
 * The af_* entry points of the cffi module, bound once by allocffi.allocator
 * ------------------------------------------------------------------------- */

static __typeof__(&af_alloc) entry_alloc; /* all NULL until bind_entry_points() */
static __typeof__(&af_calloc) entry_calloc;
static __typeof__(&af_free) entry_free;
static __typeof__(&af_last_error) entry_last_error;
static __typeof__(&af_alloc_batch) entry_alloc_batch;
static __typeof__(&af_free_batch) entry_free_batch;

static bool entry_points_bound(void) {
  return entry_alloc != NULL && entry_calloc != NULL && entry_free != NULL && entry_last_error != NULL &&
         entry_alloc_batch != NULL && entry_free_batch != NULL;
}

/* bind_entry_points(af_alloc, af_calloc, af_free, af_last_error,
   af_alloc_batch, af_free_batch): once, at import of allocffi.allocator, with
   ffi.addressof() addresses. Refusing any later call keeps user code from
   rebinding them. */
static PyObject *bind_entry_points(PyObject *module, PyObject *args) {
  (void)module;
  if (entry_points_bound()) {
    PyErr_SetString(PyExc_RuntimeError, "the entry points are already bound");
    return NULL;
  }
  unsigned long long addresses[6];
  if (!PyArg_ParseTuple(args, "KKKKKK:bind_entry_points", &addresses[0], &addresses[1], &addresses[2],
                        &addresses[3], &addresses[4], &addresses[5]))
    return NULL;
  for (int i = 0; i < 6; i++) {
    if (addresses[i] == 0) {
      PyErr_SetString(PyExc_ValueError, "bind_entry_points() needs six function addresses");
      return NULL;
    }
  }
  entry_alloc = (__typeof__(entry_alloc))(uintptr_t)addresses[0];
  entry_calloc = (__typeof__(entry_calloc))(uintptr_t)addresses[1];
  entry_free = (__typeof__(entry_free))(uintptr_t)addresses[2];
  entry_last_error = (__typeof__(entry_last_error))(uintptr_t)addresses[3];
  entry_alloc_batch = (__typeof__(entry_alloc_batch))(uintptr_t)addresses[4];
  entry_free_batch = (__typeof__(entry_free_batch))(uintptr_t)addresses[5];
  Py_RETURN_NONE;
}

/* ----------------------------------------------------------------------------
 * StateLock: a non-reentrant lock like threading.Lock whose C handle the fast
 * paths can try without a method call.
 * ------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  PyThread_type_lock lock; /* never NULL */
  bool held;               /* true exactly while some thread holds `lock` */
  unsigned long owner;     /* the holding thread's ident while held; written only by the holder */
} StateLock;

static PyTypeObject StateLock_Type;

static void lock_taken(StateLock *l) {
  l->held = true;
  l->owner = PyThread_get_thread_ident();
}

static bool lock_try(StateLock *l) {
  if (!PyThread_acquire_lock(l->lock, NOWAIT_LOCK)) return false;
  lock_taken(l);
  return true;
}

static void lock_release(StateLock *l) {
  l->held = false;
  l->owner = 0;
  PyThread_release_lock(l->lock);
}

/* Wait for the lock with the GIL released, waking up now and then to run
   signal handlers (so that Ctrl-C interrupts a wait, as with threading.Lock).
   A wait by the thread that holds the lock would never end: that is a call
   re-entering the allocator from a finalizer or a signal handler that ran in
   the middle of one of its operations, and it gets an exception instead. */
static int lock_wait(StateLock *l) {
  if (l->held && l->owner == PyThread_get_thread_ident()) {
    PyErr_SetString(PyExc_RuntimeError,
                    "allocffi: this allocator is in the middle of an operation on this thread (a call from a "
                    "__del__ or a signal handler re-entered it); make the call outside that context");
    return -1;
  }
  while (!lock_try(l)) {
    PyLockStatus status;
    Py_BEGIN_ALLOW_THREADS
    status = PyThread_acquire_lock_timed(l->lock, 50 * 1000 /* us */, 0);
    Py_END_ALLOW_THREADS
    if (status == PY_LOCK_ACQUIRED) {
      lock_taken(l);
      return 0;
    }
    if (Py_MakePendingCalls() < 0) return -1;
  }
  return 0;
}

static PyObject *statelock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  if (PyTuple_GET_SIZE(args) != 0 || (kwargs != NULL && PyDict_GET_SIZE(kwargs) != 0)) {
    PyErr_SetString(PyExc_TypeError, "StateLock() takes no arguments");
    return NULL;
  }
  StateLock *l = (StateLock *)type->tp_alloc(type, 0);
  if (l == NULL) return NULL;
  l->lock = PyThread_allocate_lock();
  if (l->lock == NULL) {
    Py_DECREF(l);
    return PyErr_NoMemory();
  }
  return (PyObject *)l;
}

static void statelock_dealloc(PyObject *self) {
  StateLock *l = (StateLock *)self;
  if (l->lock != NULL) {
    if (l->held) PyThread_release_lock(l->lock);
    PyThread_free_lock(l->lock);
  }
  Py_TYPE(self)->tp_free(self);
}

/* acquire(blocking=True, /) -> bool */
static PyObject *statelock_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "acquire(blocking=True, /)");
    return NULL;
  }
  int blocking = nargs == 0 ? 1 : PyObject_IsTrue(args[0]);
  if (blocking < 0) return NULL;
  if (!blocking) return PyBool_FromLong(lock_try((StateLock *)self));
  if (lock_wait((StateLock *)self) < 0) return NULL;
  Py_RETURN_TRUE;
}

static PyObject *statelock_release(PyObject *self, PyObject *Py_UNUSED(ignored)) {
  StateLock *l = (StateLock *)self;
  if (!l->held) {
    PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
    return NULL;
  }
  lock_release(l);
  Py_RETURN_NONE;
}

static PyObject *statelock_enter(PyObject *self, PyObject *Py_UNUSED(ignored)) {
  if (lock_wait((StateLock *)self) < 0) return NULL;
  Py_RETURN_TRUE;
}

static PyObject *statelock_exit(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  (void)args, (void)nargs;
  return statelock_release(self, NULL);
}

static PyObject *statelock_locked(PyObject *self, PyObject *Py_UNUSED(ignored)) {
  return PyBool_FromLong(((StateLock *)self)->held);
}

static PyMethodDef statelock_methods[] = {
  {"acquire", (PyCFunction)(void (*)(void))statelock_acquire, METH_FASTCALL,
   "acquire(blocking=True, /) -> bool; waits with the GIL released"},
  {"release", statelock_release, METH_NOARGS, "Release the lock (RuntimeError if it is not held)."},
  {"locked", statelock_locked, METH_NOARGS, "True while some thread holds the lock."},
  {"__enter__", statelock_enter, METH_NOARGS, NULL},
  {"__exit__", (PyCFunction)(void (*)(void))statelock_exit, METH_FASTCALL, NULL},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject StateLock_Type = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "allocffi._blockbuffer.StateLock",
  .tp_basicsize = sizeof(StateLock),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "The lock of one allocator's Python-side state (like threading.Lock, not reentrant).",
  .tp_new = statelock_new,
  .tp_dealloc = statelock_dealloc,
  .tp_methods = statelock_methods,
};

/* ----------------------------------------------------------------------------
 * AllocatorBase
 * ------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  StateLock *lock;                /* guards the fields below; never NULL */
  af_allocator *handle;           /* the af_locked_new wrapper; NULL before _attach() and after _detach() */
  bool attached;                  /* _attach() happened (it may happen once) */
  unsigned long long generation;  /* successful reset() count; ALIVE blocks all carry it */
  PyObject *live;                 /* dict: key set == the ALIVE Blocks owned; never NULL */
} AllocatorBase;

/* Exact int in [lo, hi] -> *out; false (no exception) for anything else. */
static bool small_int(PyObject *arg, long long lo, long long hi, long long *out) {
  if (!PyLong_CheckExact(arg)) return false;
  int overflow;
  long long v = PyLong_AsLongLongAndOverflow(arg, &overflow);
  if (overflow != 0 || v < lo || v > hi) {
    PyErr_Clear(); /* (only a -1 result can carry an error, and exact ints do not fail) */
    return false;
  }
  *out = v;
  return true;
}

static bool valid_geometry(PyObject *size_arg, PyObject *align_arg, long long *size, long long *align) {
  return small_int(size_arg, 0, AF_MAX_ALLOC_SIZE, size) && small_int(align_arg, 1, AF_MAX_ALIGN, align) &&
         (*align & (*align - 1)) == 0;
}

/* The exception for a call the C allocator refused: Allocator._failure(call,
   status) builds it (the message names the allocator). Lock not held. */
static PyObject *raise_failure(AllocatorBase *self, PyObject *call, int status) {
  if (call == NULL) return NULL;
  PyObject *error = PyObject_CallMethod((PyObject *)self, "_failure", "Oi", call, status);
  Py_DECREF(call);
  if (error == NULL) return NULL;
  PyErr_SetObject((PyObject *)Py_TYPE(error), error);
  Py_DECREF(error);
  return NULL;
}

/* Allocate into the blank block `b` (lock held, handle open, arguments
   valid); releases the lock. Returns b, or NULL with an exception (b is then
   released, and nothing is allocated). */
static PyObject *alloc_into(AllocatorBase *self, BlockBase *b, long long size, long long align, bool zeroed,
                            bool release) {
  af_allocator *handle = self->handle;
  void *p = (zeroed ? entry_calloc : entry_alloc)(handle, (size_t)size, (size_t)align);
  if (p == NULL) {
    int status = entry_last_error(handle);
    if (release) lock_release(self->lock);
    Py_DECREF(b);
    return raise_failure(self, PyUnicode_FromFormat("%s(%lld, align=%lld)", zeroed ? "calloc" : "alloc", size, align),
                         status);
  }
  b->address = (uintptr_t)p;
  b->size = (Py_ssize_t)size;
  b->align = (Py_ssize_t)align;
  b->generation = self->generation;
  Py_INCREF(self);
  b->owner = (PyObject *)self;
  /* A Block hashes by identity, so this runs no Python code. */
  if (PyDict_SetItem(self->live, (PyObject *)b, Py_None) < 0) { /* out of memory: give it back */
    entry_free(handle, p, (size_t)size, (size_t)align);
    b->state = BLOCK_FREED;
    if (release) lock_release(self->lock);
    Py_DECREF(b);
    return NULL;
  }
  if (release) lock_release(self->lock);
  return (PyObject *)b;
}

/* _try_alloc(size, align, zeroed) -> Block, or None to take the slow path. */
static PyObject *allocator_try_alloc(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
  AllocatorBase *self = (AllocatorBase *)op;
  long long size, align;
  if (nargs != 3 || !valid_geometry(args[0], args[1], &size, &align) || !entry_points_bound()) Py_RETURN_NONE;
  BlockBase *b = _allocffi_block_blank(); /* before the lock: may run the garbage collector */
  if (b == NULL) return NULL;
  if (!lock_try(self->lock)) {
    Py_DECREF(b);
    Py_RETURN_NONE;
  }
  if (self->handle == NULL) {
    lock_release(self->lock);
    Py_DECREF(b);
    Py_RETURN_NONE;
  }
  return alloc_into(self, b, size, align, args[2] == Py_True, true);
}

/* _alloc_held(size, align, zeroed) -> Block: the slow path, with the lock
   held by the caller, the allocator open and the arguments checked. */
static PyObject *allocator_alloc_held(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
  AllocatorBase *self = (AllocatorBase *)op;
  long long size, align;
  if (nargs != 3 || !valid_geometry(args[0], args[1], &size, &align) || !entry_points_bound() ||
      self->handle == NULL || !self->lock->held) {
    PyErr_SetString(PyExc_RuntimeError, "_alloc_held: precondition violated");
    return NULL;
  }
  /* Python code the collector may run here cannot take the lock: the caller holds it. */
  BlockBase *b = _allocffi_block_blank();
  if (b == NULL) return NULL;
  if (self->handle == NULL) { /* (cannot happen: closing needs the lock) */
    Py_DECREF(b);
    PyErr_SetString(PyExc_RuntimeError, "_alloc_held: allocator closed under the lock");
    return NULL;
  }
  return alloc_into(self, b, size, align, args[2] == Py_True, false);
}

/* Free `arg` if it is an alive Block of this allocator's current generation
   (lock held, handle open): 1 freed, 0 not such a block (nothing changed),
   -1 with an exception (views outstanding, or the allocator refused). */
static int free_held(AllocatorBase *self, PyObject *arg, PyObject **call_failed, int *status) {
  if (Py_TYPE(arg) != _allocffi_block_type) return 0;
  BlockBase *b = (BlockBase *)arg;
  if (b->owner != (PyObject *)self || b->state != BLOCK_ALIVE || b->generation != self->generation) return 0;
  if (b->exports > 0) {
    *status = -1;
    return -1;
  }
  *status = entry_free(self->handle, (void *)b->address, (size_t)b->size, (size_t)b->align);
  if (*status != AF_OK) {
    *call_failed = arg;
    return -1;
  }
  b->state = BLOCK_FREED;
  /* The caller's reference keeps b alive: removing it runs no Python code. */
  return PyDict_DelItem(self->live, arg) < 0 ? -2 : 1;
}

/* Turn free_held()'s result into the return value (lock already released). */
static PyObject *free_result(AllocatorBase *self, PyObject *arg, int result, PyObject *call_failed, int status) {
  if (result == 1) Py_RETURN_TRUE;
  if (result == 0) Py_RETURN_NONE;
  if (result == -2) return NULL; /* (cannot happen: every ALIVE block of self is in live) */
  if (call_failed == NULL) {
    _allocffi_raise_views(((BlockBase *)arg)->exports);
    return NULL;
  }
  return raise_failure(self, PyUnicode_FromString("free"), status);
}

/* _try_free(block) -> True when freed, None to take the slow path. */
static PyObject *allocator_try_free(PyObject *op, PyObject *arg) {
  AllocatorBase *self = (AllocatorBase *)op;
  if (!entry_points_bound() || !lock_try(self->lock)) Py_RETURN_NONE;
  if (self->handle == NULL) {
    lock_release(self->lock);
    Py_RETURN_NONE;
  }
  PyObject *call_failed = NULL;
  int status = 0;
  int result = free_held(self, arg, &call_failed, &status);
  lock_release(self->lock);
  return free_result(self, arg, result, call_failed, status);
}

/* _free_held(block) -> True when freed, None when it is not an alive block
   of this allocator's current generation (the caller raises the precise
   error). The caller holds the lock and the allocator is open. */
static PyObject *allocator_free_held(PyObject *op, PyObject *arg) {
  AllocatorBase *self = (AllocatorBase *)op;
  if (!entry_points_bound() || self->handle == NULL || !self->lock->held) {
    PyErr_SetString(PyExc_RuntimeError, "_free_held: precondition violated");
    return NULL;
  }
  PyObject *call_failed = NULL;
  int status = 0;
  int result = free_held(self, arg, &call_failed, &status);
  return free_result(self, arg, result, call_failed, status);
}

/* ----------------------------------------------------------------------------
 * Batches: alloc_many and free_many, each one C call for n blocks (one
 * af_alloc_batch / af_free_batch call takes the C allocator's lock once).
 * Both are all or nothing, like their single-block forms.
 * ------------------------------------------------------------------------- */

/* Largest n the alloc_many fast path takes. It creates the n Blocks before it
   knows whether the allocator can serve them, which for a huge n could use up
   memory only to meet a byte limit; larger batches take the slow path, which
   allocates first. */
#define FAST_BATCH_MAX 65536

/* A list of n blank Blocks. Runs no collection while it builds them: one
   would only examine the Blocks of this very batch (over half the cost of a
   batch, measured). The collection is deferred, not skipped: the collector's
   allocation count keeps growing, and the next allocation after this call
   starts it if the Blocks survive. With the collector paused, creating the
   Blocks runs no Python code and keeps the GIL, so no other code can see the
   pause. May still fail with MemoryError. */
static PyObject *blank_blocks(Py_ssize_t n) {
  PyObject *blocks = PyList_New(n);
  if (blocks == NULL) return NULL;
  int collector_was_enabled = PyGC_Disable();
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockBase *b = _allocffi_block_blank();
    if (b == NULL) {
      Py_CLEAR(blocks); /* (a list tolerates its NULL tail) */
      break;
    }
    PyList_SET_ITEM(blocks, i, (PyObject *)b);
  }
  if (collector_was_enabled) PyGC_Enable();
  return blocks;
}

/* Room for n pointers (at least one, so that NULL always means no memory). */
static void **pointer_array(Py_ssize_t n) {
  if ((size_t)n > PY_SSIZE_T_MAX / sizeof(void *)) return NULL;
  return PyMem_Malloc((size_t)(n > 0 ? n : 1) * sizeof(void *));
}

/* Make the n blank Blocks of `blocks` own ptrs[0..n), just allocated, and
   enter them in live (lock held). 0, or -1 with MemoryError after undoing
   everything: the memory is freed and live is as before. */
static int adopt_batch(AllocatorBase *self, PyObject *blocks, void **ptrs, Py_ssize_t n, long long size,
                       long long align) {
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockBase *b = (BlockBase *)PyList_GET_ITEM(blocks, i);
    b->address = (uintptr_t)ptrs[i];
    b->size = (Py_ssize_t)size;
    b->align = (Py_ssize_t)align;
    b->generation = self->generation;
    Py_INCREF(self);
    b->owner = (PyObject *)self;
    /* A Block hashes by identity, so this runs no Python code; it fails only
       when the dict cannot grow. */
    if (PyDict_SetItem(self->live, (PyObject *)b, Py_None) < 0) {
      PyErr_Clear();
      for (Py_ssize_t j = 0; j <= i; j++) {
        BlockBase *adopted = (BlockBase *)PyList_GET_ITEM(blocks, j);
        adopted->state = BLOCK_FREED;
        if (j < i && PyDict_DelItem(self->live, (PyObject *)adopted) < 0) PyErr_Clear(); /* (cannot fail) */
      }
      (void)entry_free_batch(self->handle, ptrs, (size_t)n, (size_t)size, (size_t)align); /* (just allocated) */
      PyErr_NoMemory();
      return -1;
    }
  }
  return 0;
}

static PyObject *alloc_many_call(long long n, long long size, long long align) {
  return PyUnicode_FromFormat("alloc_many(%lld, %lld, align=%lld)", n, size, align);
}

/* _try_alloc_many(n, size, align) -> [Block], or None to take the slow path. */
static PyObject *allocator_try_alloc_many(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
  AllocatorBase *self = (AllocatorBase *)op;
  long long n, size, align;
  int status = AF_OK, adopted = 0;
  if (nargs != 3 || !small_int(args[0], 0, FAST_BATCH_MAX, &n) || !valid_geometry(args[1], args[2], &size, &align) ||
      !entry_points_bound())
    Py_RETURN_NONE;
  PyObject *blocks = blank_blocks((Py_ssize_t)n); /* before the lock: may run the garbage collector */
  if (blocks == NULL) return NULL;
  void **ptrs = pointer_array((Py_ssize_t)n);
  if (ptrs == NULL) {
    Py_DECREF(blocks);
    return PyErr_NoMemory();
  }
  if (!lock_try(self->lock)) goto decline;
  if (self->handle == NULL) {
    lock_release(self->lock);
    goto decline;
  }
  if (n > 0 && entry_alloc_batch(self->handle, (size_t)size, (size_t)align, (size_t)n, ptrs) != (size_t)n)
    status = entry_last_error(self->handle);
  else
    adopted = adopt_batch(self, blocks, ptrs, (Py_ssize_t)n, size, align);
  lock_release(self->lock);
  PyMem_Free(ptrs);
  if (status == AF_OK && adopted == 0) return blocks;
  Py_DECREF(blocks);
  return status == AF_OK ? NULL : raise_failure(self, alloc_many_call(n, size, align), status);

decline:
  PyMem_Free(ptrs);
  Py_DECREF(blocks);
  Py_RETURN_NONE;
}

/* _alloc_many_held(n, size, align) -> [Block]: the slow path, with the lock
   held by the caller, the allocator open and the arguments checked. Unlike the
   fast path it allocates first, so that a huge n the allocator refuses costs
   no objects. */
static PyObject *allocator_alloc_many_held(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
  AllocatorBase *self = (AllocatorBase *)op;
  long long n, size, align;
  if (nargs != 3 || !small_int(args[0], 0, AF_MAX_ALLOC_SIZE, &n) ||
      !valid_geometry(args[1], args[2], &size, &align) || !entry_points_bound() || self->handle == NULL ||
      !self->lock->held) {
    PyErr_SetString(PyExc_RuntimeError, "_alloc_many_held: precondition violated");
    return NULL;
  }
  if (n > PY_SSIZE_T_MAX) return PyErr_NoMemory();
  void **ptrs = pointer_array((Py_ssize_t)n);
  if (ptrs == NULL) return PyErr_NoMemory();
  if (n > 0 && entry_alloc_batch(self->handle, (size_t)size, (size_t)align, (size_t)n, ptrs) != (size_t)n) {
    int status = entry_last_error(self->handle);
    PyMem_Free(ptrs);
    return raise_failure(self, alloc_many_call(n, size, align), status);
  }
  /* Python code the collector may run here cannot take the lock: the caller
     holds it, so the handle stays open. */
  PyObject *blocks = blank_blocks((Py_ssize_t)n);
  if (blocks == NULL || adopt_batch(self, blocks, ptrs, (Py_ssize_t)n, size, align) < 0) {
    if (blocks == NULL) (void)entry_free_batch(self->handle, ptrs, (size_t)n, (size_t)size, (size_t)align);
    Py_XDECREF(blocks);
    PyMem_Free(ptrs);
    return NULL;
  }
  PyMem_Free(ptrs);
  return blocks;
}

/* free_many's checks, all before anything changes (lock held, handle open):
   every item of `blocks` must be an alive Block of this allocator's current
   generation, without views, listed once. Returns 1 when they all passed and
   are retired to FREED, with their addresses in ptrs; 0 when an item is not
   such a block, or is listed twice (nothing changed: the caller finds the
   precise error); -1 when views exist (nothing changed; *views says how many). */
static int retire_batch(AllocatorBase *self, PyObject *blocks, void **ptrs, Py_ssize_t *views) {
  Py_ssize_t n = PyList_GET_SIZE(blocks);
  Py_ssize_t exports = 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PyList_GET_ITEM(blocks, i);
    if (Py_TYPE(item) != _allocffi_block_type) return 0;
    BlockBase *b = (BlockBase *)item;
    if (b->owner != (PyObject *)self || b->state != BLOCK_ALIVE || b->generation != self->generation) return 0;
    exports += b->exports;
  }
  if (exports > 0) {
    *views = exports;
    return -1;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockBase *b = (BlockBase *)PyList_GET_ITEM(blocks, i);
    if (b->state != BLOCK_ALIVE) { /* retired a moment ago: listed twice */
      for (Py_ssize_t j = 0; j < i; j++) ((BlockBase *)PyList_GET_ITEM(blocks, j))->state = BLOCK_ALIVE;
      return 0;
    }
    b->state = BLOCK_FREED;
    ptrs[i] = (void *)b->address;
  }
  return 1;
}

/* Free the blocks retire_batch() retired (lock held), one af_free_batch call
   per run of equal size and alignment. Returns n; or, when the allocator
   refuses a block, its index, with *status saying why: the blocks before it
   are freed, it and the ones after it are alive again (still allocated).
   Freed blocks leave live. */
static Py_ssize_t free_retired(AllocatorBase *self, PyObject *blocks, void **ptrs, int *status) {
  Py_ssize_t n = PyList_GET_SIZE(blocks), freed = 0;
  while (freed < n) {
    const BlockBase *first = (BlockBase *)PyList_GET_ITEM(blocks, freed);
    Py_ssize_t end = freed + 1;
    while (end < n && ((BlockBase *)PyList_GET_ITEM(blocks, end))->size == first->size &&
           ((BlockBase *)PyList_GET_ITEM(blocks, end))->align == first->align)
      end++;
    size_t count = (size_t)(end - freed);
    size_t done = entry_free_batch(self->handle, ptrs + freed, count, (size_t)first->size, (size_t)first->align);
    freed += (Py_ssize_t)done;
    if (done != count) {
      *status = entry_last_error(self->handle);
      break;
    }
  }
  for (Py_ssize_t i = freed; i < n; i++) ((BlockBase *)PyList_GET_ITEM(blocks, i))->state = BLOCK_ALIVE;
  /* The list's references keep the blocks alive: removing them runs no Python
     code, and each is in live (every ALIVE block of self is). */
  for (Py_ssize_t i = 0; i < freed; i++)
    if (PyDict_DelItem(self->live, PyList_GET_ITEM(blocks, i)) < 0) PyErr_Clear(); /* (cannot fail) */
  return freed;
}

/* free_many on a list of blocks with the lock held and the handle open;
   releases the lock when `release`. Frees ptrs. Returns True when all are
   freed, None when some item is not an alive block of ours (or is listed
   twice: nothing changed), NULL with the exception otherwise. */
static PyObject *free_many_locked(AllocatorBase *self, PyObject *blocks, void **ptrs, bool release) {
  Py_ssize_t views = 0, freed = 0, refused_size = 0;
  int status = AF_OK;
  int taken = retire_batch(self, blocks, ptrs, &views);
  if (taken == 1) {
    freed = free_retired(self, blocks, ptrs, &status);
    if (status != AF_OK) refused_size = ((BlockBase *)PyList_GET_ITEM(blocks, freed))->size;
  }
  if (release) lock_release(self->lock);
  PyMem_Free(ptrs);
  if (taken == 0) Py_RETURN_NONE;
  if (taken < 0) {
    _allocffi_raise_views(views);
    return NULL;
  }
  if (status == AF_OK) Py_RETURN_TRUE;
  return raise_failure(self, PyUnicode_FromFormat("free_many (block %zd of size %zd)", freed, refused_size), status);
}

/* _try_free_many(blocks: list) -> True when all are freed, None to take the
   slow path (nothing changed). */
static PyObject *allocator_try_free_many(PyObject *op, PyObject *arg) {
  AllocatorBase *self = (AllocatorBase *)op;
  if (!PyList_CheckExact(arg) || !entry_points_bound()) Py_RETURN_NONE;
  void **ptrs = pointer_array(PyList_GET_SIZE(arg)); /* before the lock; the list cannot change until the end */
  if (ptrs == NULL) return PyErr_NoMemory();
  if (!lock_try(self->lock)) {
    PyMem_Free(ptrs);
    Py_RETURN_NONE;
  }
  if (self->handle == NULL) {
    lock_release(self->lock);
    PyMem_Free(ptrs);
    Py_RETURN_NONE;
  }
  return free_many_locked(self, arg, ptrs, true);
}

/* _free_many_held(blocks: list) -> True when all are freed, None when some
   item is not an alive block of ours or is listed twice (the caller raises the
   precise error). The caller holds the lock and the allocator is open. */
static PyObject *allocator_free_many_held(PyObject *op, PyObject *arg) {
  AllocatorBase *self = (AllocatorBase *)op;
  if (!PyList_CheckExact(arg) || !entry_points_bound() || self->handle == NULL || !self->lock->held) {
    PyErr_SetString(PyExc_RuntimeError, "_free_many_held: precondition violated");
    return NULL;
  }
  void **ptrs = pointer_array(PyList_GET_SIZE(arg));
  if (ptrs == NULL) return PyErr_NoMemory();
  return free_many_locked(self, arg, ptrs, false);
}

/* C allocators attached and not yet detached, over every AllocatorBase: what
   the finalizer test watches to see that a collected allocator released its C
   side. Changed only with the GIL held. */
static Py_ssize_t open_handles;

static PyObject *count_open_handles(PyObject *module, PyObject *Py_UNUSED(ignored)) {
  (void)module;
  return PyLong_FromSsize_t(open_handles);
}

/* _attach(handle_address): once, by Allocator.__init__. */
static PyObject *allocator_attach(PyObject *op, PyObject *arg) {
  AllocatorBase *self = (AllocatorBase *)op;
  unsigned long long address = PyLong_AsUnsignedLongLong(arg);
  if (PyErr_Occurred()) return NULL;
  if (self->attached || address == 0) {
    PyErr_SetString(PyExc_RuntimeError, "_attach: the allocator already has a handle");
    return NULL;
  }
  self->handle = (af_allocator *)(uintptr_t)address;
  self->attached = true;
  open_handles++;
  Py_RETURN_NONE;
}

/* _detach(): the handle is being destroyed (close); lock held by the caller. */
static PyObject *allocator_detach(PyObject *op, PyObject *Py_UNUSED(ignored)) {
  if (((AllocatorBase *)op)->handle != NULL) open_handles--;
  ((AllocatorBase *)op)->handle = NULL;
  Py_RETURN_NONE;
}

/* _advance_generation(): after a successful reset; lock held by the caller. */
static PyObject *allocator_advance_generation(PyObject *op, PyObject *Py_UNUSED(ignored)) {
  ((AllocatorBase *)op)->generation++;
  Py_RETURN_NONE;
}

static PyObject *allocator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  (void)args, (void)kwargs; /* the subclass's __init__ takes them */
  AllocatorBase *self = (AllocatorBase *)type->tp_alloc(type, 0);
  if (self == NULL) return NULL;
  self->lock = (StateLock *)PyObject_CallNoArgs((PyObject *)&StateLock_Type);
  self->live = PyDict_New();
  if (self->lock == NULL || self->live == NULL) {
    Py_DECREF(self);
    return NULL;
  }
  return (PyObject *)self;
}

static int allocator_traverse(PyObject *op, visitproc visit, void *arg) {
  Py_VISIT(((AllocatorBase *)op)->live);
  return 0;
}

/* Empties `live` rather than dropping it, so that it is never NULL. */
static int allocator_clear(PyObject *op) {
  AllocatorBase *self = (AllocatorBase *)op;
  if (self->live != NULL) PyDict_Clear(self->live);
  return 0;
}

static void allocator_dealloc(PyObject *op) {
  AllocatorBase *self = (AllocatorBase *)op;
  PyObject_GC_UnTrack(op);
  Py_CLEAR(self->live);
  Py_CLEAR(self->lock);
  Py_TYPE(op)->tp_free(op);
}

static PyMemberDef allocator_members[] = {
  {"_lock", T_OBJECT, offsetof(AllocatorBase, lock), READONLY, "the StateLock guarding the state"},
  {"_live", T_OBJECT, offsetof(AllocatorBase, live), READONLY, "dict whose keys are the alive Blocks"},
  {"_generation", T_ULONGLONG, offsetof(AllocatorBase, generation), READONLY, "successful reset() count"},
  {NULL, 0, 0, 0, NULL},
};

static PyMethodDef allocator_methods[] = {
  {"_try_alloc", (PyCFunction)(void (*)(void))allocator_try_alloc, METH_FASTCALL,
   "_try_alloc(size, align, zeroed) -> Block, or None: take the slow path"},
  {"_alloc_held", (PyCFunction)(void (*)(void))allocator_alloc_held, METH_FASTCALL,
   "_alloc_held(size, align, zeroed) -> Block; lock held, arguments checked"},
  {"_try_free", allocator_try_free, METH_O, "_try_free(block) -> True, or None: take the slow path"},
  {"_free_held", allocator_free_held, METH_O, "_free_held(block) -> True, or None: not an alive block of ours"},
  {"_try_alloc_many", (PyCFunction)(void (*)(void))allocator_try_alloc_many, METH_FASTCALL,
   "_try_alloc_many(n, size, align) -> [Block], or None: take the slow path"},
  {"_alloc_many_held", (PyCFunction)(void (*)(void))allocator_alloc_many_held, METH_FASTCALL,
   "_alloc_many_held(n, size, align) -> [Block]; lock held, arguments checked"},
  {"_try_free_many", allocator_try_free_many, METH_O,
   "_try_free_many(blocks: list) -> True, or None: take the slow path"},
  {"_free_many_held", allocator_free_many_held, METH_O,
   "_free_many_held(blocks: list) -> True, or None: some item is not an alive block of ours, or is repeated"},
  {"_attach", allocator_attach, METH_O, "_attach(handle_address): once"},
  {"_detach", allocator_detach, METH_NOARGS, "_detach(): the handle is gone (lock held)"},
  {"_advance_generation", allocator_advance_generation, METH_NOARGS, "after a successful reset (lock held)"},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject AllocatorBase_Type = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "allocffi._blockbuffer.AllocatorBase",
  .tp_basicsize = sizeof(AllocatorBase),
  .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
  .tp_doc = "The Python-side state of an allocffi allocator and its fast alloc/free paths.",
  .tp_new = allocator_new,
  .tp_dealloc = allocator_dealloc,
  .tp_traverse = allocator_traverse,
  .tp_clear = allocator_clear,
  .tp_members = allocator_members,
  .tp_methods = allocator_methods,
};

static PyMethodDef allocstate_functions[] = {
  {"bind_entry_points", bind_entry_points, METH_VARARGS,
   "bind_entry_points(af_alloc, af_calloc, af_free, af_last_error, af_alloc_batch, af_free_batch): once"},
  {"open_handles", count_open_handles, METH_NOARGS, "C allocators attached and not yet destroyed (all allocators)"},
  {NULL, NULL, 0, NULL},
};

int _allocffi_allocstate_init(PyObject *module) {
  if (PyType_Ready(&StateLock_Type) < 0 || PyType_Ready(&AllocatorBase_Type) < 0) return -1;
  if (PyModule_AddFunctions(module, allocstate_functions) < 0) return -1;
  Py_INCREF(&StateLock_Type);
  if (PyModule_AddObject(module, "StateLock", (PyObject *)&StateLock_Type) < 0) {
    Py_DECREF(&StateLock_Type);
    return -1;
  }
  Py_INCREF(&AllocatorBase_Type);
  if (PyModule_AddObject(module, "AllocatorBase", (PyObject *)&AllocatorBase_Type) < 0) {
    Py_DECREF(&AllocatorBase_Type);
    return -1;
  }
  return 0;
}
