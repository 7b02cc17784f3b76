/* ----------------------------------------------------------------------------
 * rawcall.c: allocffi._rawcall, the integer raw path of allocffi.unchecked.
 *
 * Why not cffi: a cffi function of two or more arguments is called through a
 * generic tuple-unpacking wrapper and releases and re-takes the GIL around
 * the call. Measured here, af_free(h, p, 48, 16) costs ~140 ns against ~55 ns
 * for a bare no-argument call, while the allocation itself costs ~20 ns. These
 * two functions use the vectorcall convention (METH_FASTCALL) and keep the
 * GIL: the C call is shorter than a GIL release would be.
 *
 * Invariants:
 * - the entry points are the cffi module's own af_alloc/af_free, bound once by
 *   allocffi.unchecked through bind() with ffi.addressof(lib, ...): one copy
 *   of the C library, and af_* still validate size and alignment;
 * - nothing else is checked (the handle and the address are trusted): this
 *   module is reachable only through allocffi.unchecked.
 * - Keeping the GIL cannot deadlock: the allocator's lock is only ever held
 *   inside one C call, and no C call waits for the GIL.
 * ------------------------------------------------------------------------- */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

typedef void *(*alloc_fn)(void *allocator, size_t size, size_t align);
typedef int (*free_fn)(void *allocator, void *ptr, size_t size, size_t align);

static alloc_fn bound_alloc; /* NULL until bind() */
static free_fn bound_free;

#define DEFAULT_ALIGN 16

static int not_bound(void) {
  PyErr_SetString(PyExc_RuntimeError, "allocffi._rawcall is not bound: import allocffi.unchecked instead");
  return -1;
}

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

/* alloc(handle, size, align=16) -> address, 0 on failure (last_error says why) */
static PyObject *raw_alloc(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  (void)self;
  if (bound_alloc == NULL && not_bound() < 0) return NULL;
  if (nargs != 2 && nargs != 3) {
    PyErr_SetString(PyExc_TypeError, "alloc_address(handle, size, align=16) takes 2 or 3 arguments");
    return NULL;
  }
  uintptr_t handle, size, align = DEFAULT_ALIGN;
  if (word_arg(args[0], "handle", &handle) < 0 || word_arg(args[1], "size", &size) < 0 ||
      (nargs == 3 && word_arg(args[2], "align", &align) < 0))
    return NULL;
  return PyLong_FromUnsignedLongLong((uintptr_t)bound_alloc((void *)handle, size, align));
}

/* free(handle, address, size, align=16) -> af_status */
static PyObject *raw_free(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  (void)self;
  if (bound_free == NULL && not_bound() < 0) return NULL;
  if (nargs != 3 && nargs != 4) {
    PyErr_SetString(PyExc_TypeError, "free_address(handle, address, size, align=16) takes 3 or 4 arguments");
    return NULL;
  }
  uintptr_t handle, address, size, align = DEFAULT_ALIGN;
  if (word_arg(args[0], "handle", &handle) < 0 || word_arg(args[1], "address", &address) < 0 ||
      word_arg(args[2], "size", &size) < 0 || (nargs == 4 && word_arg(args[3], "align", &align) < 0))
    return NULL;
  return PyLong_FromLong(bound_free((void *)handle, (void *)address, size, align));
}

/* bind(af_alloc_address, af_free_address): called once by allocffi.unchecked. */
static PyObject *raw_bind(PyObject *self, PyObject *args) {
  (void)self;
  unsigned long long alloc_address, free_address;
  if (!PyArg_ParseTuple(args, "KK:bind", &alloc_address, &free_address)) return NULL;
  if (alloc_address == 0 || free_address == 0) {
    PyErr_SetString(PyExc_ValueError, "bind() needs the addresses of af_alloc and af_free");
    return NULL;
  }
  bound_alloc = (alloc_fn)(uintptr_t)alloc_address;
  bound_free = (free_fn)(uintptr_t)free_address;
  Py_RETURN_NONE;
}

static PyMethodDef rawcall_methods[] = {
  {"alloc", (PyCFunction)(void (*)(void))raw_alloc, METH_FASTCALL,
   "alloc(handle, size, align=16) -> address (0 on failure). Unchecked."},
  {"free", (PyCFunction)(void (*)(void))raw_free, METH_FASTCALL,
   "free(handle, address, size, align=16) -> af_status. Unchecked."},
  {"bind", raw_bind, METH_VARARGS, "bind(af_alloc_address, af_free_address)"},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef rawcall_module = {
  PyModuleDef_HEAD_INIT, "allocffi._rawcall", "The integer raw path of allocffi.unchecked.", -1,
  rawcall_methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__rawcall(void) { return PyModule_Create(&rawcall_module); }
