/* ----------------------------------------------------------------------------
 * statelock.c: StateLock, the lock of one allocator's Python-side state: a
 * non-reentrant lock like threading.Lock whose C handle the operations of
 * allocator.c take without a method call.
 *
 * Two levels, because the GIL already serialises most of the work:
 * - `held` says who owns the state. An operation of allocator.c that finds
 *   it clear just sets it, does its work and clears it, all without
 *   releasing the GIL, so no other thread can see the state in between: the
 *   OS lock is not touched (it costs more than the allocation).
 * - The OS lock `lock` is taken only by holders that may release the GIL
 *   while holding: Python code (`with a._lock:`) and threads that had to
 *   wait. A holder owns the state only once it also set `held`, which it does
 *   with the GIL; a thread that got the OS lock while the GIL was elsewhere
 *   finds `held` clear when it gets the GIL back, because a GIL-holding
 *   operation always clears it before it lets the GIL go.
 *
 * Waiting releases the GIL and wakes up now and then to run signal handlers
 * (Ctrl-C interrupts a wait, as with threading.Lock). A wait by the thread
 * that holds the lock would never end: that is a call re-entering the
 * allocator from a finalizer or a signal handler in the middle of one of its
 * operations, and it is refused with REASON_REENTERED instead.
 * ------------------------------------------------------------------------- */
#include "safe.h"

static void taken(StateLock *l, bool os_locked) {
  l->held = true;
  l->os_locked = os_locked;
  l->owner = PyThread_get_thread_ident();
}

/* Without waiting, and without the OS lock when nobody holds it: for
   holders that keep the GIL until they drop it. */
bool statelock_try(StateLock *l) {
  if (l->held) return false;
  taken(l, false);
  return true;
}

void statelock_drop(StateLock *l) {
  bool os_locked = l->os_locked;
  l->held = false;
  l->os_locked = false;
  l->owner = 0;
  if (os_locked) PyThread_release_lock(l->lock);
}

/* With the OS lock, for holders that may release the GIL; waits with the GIL
   released. */
static int take_os_lock(StateLock *l) {
  if (l->held && l->owner == PyThread_get_thread_ident()) return REASON_REENTERED;
  if (PyThread_acquire_lock(l->lock, NOWAIT_LOCK)) {
    taken(l, true);
    return 0;
  }
  for (;;) {
    PyLockStatus status;
    Py_BEGIN_ALLOW_THREADS
    status = PyThread_acquire_lock_timed(l->lock, 50 * 1000 /* us */, 0);
    Py_END_ALLOW_THREADS
    if (status == PY_LOCK_ACQUIRED) {
      taken(l, true);
      return 0;
    }
    if (Py_MakePendingCalls() < 0) return -1;
  }
}

int statelock_take(StateLock *l) {
  if (statelock_try(l)) return 0;
  return take_os_lock(l);
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
    if (l->os_locked) PyThread_release_lock(l->lock);
    PyThread_free_lock(l->lock);
  }
  Py_TYPE(self)->tp_free(self);
}

static PyObject *take_or_raise(StateLock *l) {
  int reason = take_os_lock(l);
  if (reason > 0) return safe_refuse(reason, NULL, NULL, NULL);
  if (reason < 0) return NULL;
  Py_RETURN_TRUE;
}

/* acquire(blocking=True, /) -> bool */
static PyObject *statelock_acquire(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  if (nargs > 1) {
    PyErr_SetString(PyExc_TypeError, "acquire(blocking=True, /)");
    return NULL;
  }
  int blocking = nargs == 0 ? 1 : PyObject_IsTrue(args[0]);
  if (blocking < 0) return NULL;
  StateLock *l = (StateLock *)self;
  if (!blocking) {
    if (l->held || !PyThread_acquire_lock(l->lock, NOWAIT_LOCK)) Py_RETURN_FALSE;
    taken(l, true);
    Py_RETURN_TRUE;
  }
  return take_or_raise((StateLock *)self);
}

static PyObject *statelock_release(PyObject *self, PyObject *Py_UNUSED(ignored)) {
  StateLock *l = (StateLock *)self;
  if (!l->held) {
    PyErr_SetString(PyExc_RuntimeError, "release unlocked lock");
    return NULL;
  }
  statelock_drop(l);
  Py_RETURN_NONE;
}

static PyObject *statelock_enter(PyObject *self, PyObject *Py_UNUSED(ignored)) {
  return take_or_raise((StateLock *)self);
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

PyTypeObject StateLock_Type = {
  PyVarObject_HEAD_INIT(NULL, 0).tp_name = "allocffi._safe.StateLock",
  .tp_basicsize = sizeof(StateLock),
  .tp_flags = Py_TPFLAGS_DEFAULT,
  .tp_doc = "The lock of one allocator's Python-side state (like threading.Lock, not reentrant).",
  .tp_new = statelock_new,
  .tp_dealloc = statelock_dealloc,
  .tp_methods = statelock_methods,
};
