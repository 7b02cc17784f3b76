/* ----------------------------------------------------------------------------
 * module.c: allocffi._safe, the safe layer's one CPython extension module:
 * its types (BlockBase, AllocatorBase, StateLock), the unchecked int raw
 * path, the NumPy data handler, and the functions allocffi.interface calls
 * once at import.
 * ------------------------------------------------------------------------- */
#include "safe.h"

/* bind(entry_points: dict[str, int], error_for): once, at import of
   allocffi.interface. */
static PyObject *bind(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *addresses, *error_for;
  if (!PyArg_ParseTuple(args, "O!O:bind", &PyDict_Type, &addresses, &error_for)) return NULL;
  if (!PyCallable_Check(error_for)) {
    PyErr_SetString(PyExc_TypeError, "bind(): error_for must be callable");
    return NULL;
  }
  if (entry_bind(addresses) < 0) return NULL;
  safe_error_for = Py_NewRef(error_for);
  Py_RETURN_NONE;
}

static PyObject *set_block_type(PyObject *module, PyObject *arg) {
  (void)module;
  if (safe_block_type != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "the Block type is already registered");
    return NULL;
  }
  if (!PyType_Check(arg) || !PyType_IsSubtype((PyTypeObject *)arg, &BlockBase_Type)) {
    PyErr_SetString(PyExc_TypeError, "expected a subclass of BlockBase");
    return NULL;
  }
  safe_block_type = (PyTypeObject *)Py_NewRef(arg);
  Py_RETURN_NONE;
}

static PyObject *open_handles(PyObject *module, PyObject *Py_UNUSED(ignored)) {
  (void)module;
  return PyLong_FromSsize_t(safe_open_handles);
}

static PyMethodDef module_functions[] = {
  {"bind", bind, METH_VARARGS, "bind(entry_points: dict[str, int], error_for): once, by allocffi.interface"},
  {"set_block_type", set_block_type, METH_O, "Register the Block subclass the allocators build (once)."},
  {"open_handles", open_handles, METH_NOARGS, "C allocators attached and not yet destroyed (all allocators)"},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef safe_module = {
  PyModuleDef_HEAD_INIT,
  .m_name = "allocffi._safe",
  .m_doc = "The safe layer of allocffi: Blocks, allocators and their checks, and the unchecked raw path.",
  .m_size = -1,
  .m_methods = module_functions,
};

static int add_type(PyObject *m, const char *name, PyTypeObject *type) {
  if (PyType_Ready(type) < 0) return -1;
  return PyModule_AddObjectRef(m, name, (PyObject *)type);
}

static const struct {
  const char *name;
  int value;
} constants[] = {
  {"ALIVE", BLOCK_ALIVE},
  {"FREED", BLOCK_FREED},
  {"RESET", BLOCK_RESET},
  {"CLOSED", BLOCK_CLOSED},
  {"MOVED", BLOCK_MOVED},
  {"REASON_NOT_AN_INT", REASON_NOT_AN_INT},
  {"REASON_SIZE_NEGATIVE", REASON_SIZE_NEGATIVE},
  {"REASON_SIZE_TOO_LARGE", REASON_SIZE_TOO_LARGE},
  {"REASON_BAD_ALIGN", REASON_BAD_ALIGN},
  {"REASON_NOT_A_BLOCK", REASON_NOT_A_BLOCK},
  {"REASON_FOREIGN", REASON_FOREIGN},
  {"REASON_DOUBLE_FREE", REASON_DOUBLE_FREE},
  {"REASON_LISTED_TWICE", REASON_LISTED_TWICE},
  {"REASON_CLOSED", REASON_CLOSED},
  {"REASON_VIEWS", REASON_VIEWS},
  {"REASON_FOREIGN_OWNERS", REASON_FOREIGN_OWNERS},
  {"REASON_WRONG_THREAD", REASON_WRONG_THREAD},
  {"REASON_NO_RESET", REASON_NO_RESET},
  {"REASON_REENTERED", REASON_REENTERED},
  {"REASON_STALE", REASON_STALE},
};

PyMODINIT_FUNC PyInit__safe(void) {
  PyObject *m = PyModule_Create(&safe_module);
  if (m == NULL) return NULL;
  if (add_type(m, "BlockBase", &BlockBase_Type) < 0 || add_type(m, "StateLock", &StateLock_Type) < 0 ||
      add_type(m, "AllocatorBase", &AllocatorBase_Type) < 0 || PyModule_AddFunctions(m, safe_rawpath_functions) < 0 ||
      PyModule_AddFunctions(m, safe_numpy_functions) < 0)
    goto fail;
  for (size_t i = 0; i < sizeof constants / sizeof constants[0]; i++)
    if (PyModule_AddIntConstant(m, constants[i].name, constants[i].value) < 0) goto fail;
  PyObject *names = entry_names();
  if (names == NULL) goto fail;
  int added = PyModule_AddObjectRef(m, "ENTRY_POINT_NAMES", names);
  Py_DECREF(names);
  if (added < 0) goto fail;
  return m;
fail:
  Py_DECREF(m);
  return NULL;
}
