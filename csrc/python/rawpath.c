/* ----------------------------------------------------------------------------
 * rawpath.c: the int raw path of allocffi.unchecked: alloc_address and
 * free_address.
 *
 * Why not cffi: a cffi function of two or more arguments is called through a
 * generic tuple-unpacking wrapper and releases and re-takes the GIL around
 * the call. Measured here, af_free(h, p, 48, 16) costs ~140 ns against ~55 ns
 * for a bare no-argument call, while the allocation itself costs ~20 ns. These
 * two functions use the vectorcall convention (METH_FASTCALL) and keep the
 * GIL: the C call is shorter than a GIL release would be.
 *
 * Invariants:
 * - they call the entry points bound once by entry.c (the cffi module's own
 *   af_alloc/af_free, which still validate size and alignment);
 * - nothing else is checked (the handle and the address are trusted): these
 *   are reachable only through allocffi.unchecked;
 * - keeping the GIL cannot deadlock: the allocator's lock is only ever held
 *   inside one C call, and no C call waits for the GIL.
 * ------------------------------------------------------------------------- */
#include "safe.h"

/* Reads an unsigned machine word; -1 with an exception set on failure. */
static int word_arg(PyObject *arg, const char *what, uintptr_t *out) {
  unsigned long long v = PyLong_AsUnsignedLongLong(arg);
  if (v == (unsigned long long)-1 && PyErr_Occurred()) {
    if (PyErr_ExceptionMatches(PyExc_OverflowError) || PyErr_ExceptionMatches(PyExc_TypeError)) {
      PyErr_Clear();
      PyErr_Format(PyExc_TypeError, "%s must be a non-negative int below 2**64", what);
    }
    return -1;
  }
  *out = (uintptr_t)v;
  return 0;
}

static int not_bound(void) {
  PyErr_SetString(PyExc_RuntimeError, "allocffi._safe is not bound: import allocffi first");
  return -1;
}

/* alloc_address(handle, size, align=16) -> address, 0 on failure (last_error says why) */
static PyObject *raw_alloc(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (!entry_bound() && not_bound() < 0) return NULL;
  if (nargs != 2 && nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "alloc_address(handle, size, align=16) takes 2 or 3 arguments");
    return NULL;
  }
  uintptr_t handle, size, align = AF_DEFAULT_ALIGN;
  if (word_arg(args[0], "handle", &handle) < 0 || word_arg(args[1], "size", &size) < 0 ||
      (nargs == 3 && word_arg(args[2], "align", &align) < 0))
    return NULL;
  return PyLong_FromUnsignedLongLong((uintptr_t)entry.alloc((af_allocator *)handle, size, align));
}

/* free_address(handle, address, size, align=16) -> af_status */
static PyObject *raw_free(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (!entry_bound() && not_bound() < 0) return NULL;
  if (nargs != 3 && nargs != 4) {
    PyErr_SetString(PyExc_TypeError, "free_address(handle, address, size, align=16) takes 3 or 4 arguments");
    return NULL;
  }
  uintptr_t handle, address, size, align = AF_DEFAULT_ALIGN;
  if (word_arg(args[0], "handle", &handle) < 0 || word_arg(args[1], "address", &address) < 0 ||
      word_arg(args[2], "size", &size) < 0 || (nargs == 4 && word_arg(args[3], "align", &align) < 0))
    return NULL;
  return PyLong_FromLong(entry.free((af_allocator *)handle, (void *)address, size, align));
}

PyMethodDef safe_rawpath_functions[] = {
  {"alloc_address", (PyCFunction)(void (*)(void))raw_alloc, METH_FASTCALL,
   "alloc_address(handle, size, align=16) -> address (0 on failure). Unchecked."},
  {"free_address", (PyCFunction)(void (*)(void))raw_free, METH_FASTCALL,
   "free_address(handle, address, size, align=16) -> af_status. Unchecked."},
  {NULL, NULL, 0, NULL},
};
