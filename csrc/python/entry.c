/* ----------------------------------------------------------------------------
 * entry.c: the single binding of the cffi module's af_* entry points.
 *
 * The C library is compiled once, into allocffi._native (cffi). This module
 * calls the same copy through function pointers, bound once at import of
 * allocffi.interface with ffi.addressof() addresses, so there is one set of
 * allocators, one set of counters and one registry per process. Refusing a
 * second bind keeps user code from redirecting them.
 * ------------------------------------------------------------------------- */
#include "safe.h"

#include <stddef.h>

EntryPoints entry;

static const struct {
  const char *name;
  size_t offset;
} entry_fields[] = {
  {"af_alloc", offsetof(EntryPoints, alloc)},
  {"af_calloc", offsetof(EntryPoints, calloc)},
  {"af_free", offsetof(EntryPoints, free)},
  {"af_realloc", offsetof(EntryPoints, realloc)},
  {"af_usable_size", offsetof(EntryPoints, usable_size)},
  {"af_reset", offsetof(EntryPoints, reset)},
  {"af_trim", offsetof(EntryPoints, trim)},
  {"af_destroy", offsetof(EntryPoints, destroy)},
  {"af_last_error", offsetof(EntryPoints, last_error)},
  {"af_alloc_batch", offsetof(EntryPoints, alloc_batch)},
  {"af_free_batch", offsetof(EntryPoints, free_batch)},
  {"af_name", offsetof(EntryPoints, name)},
  {"af_caps", offsetof(EntryPoints, caps)},
};
#define ENTRY_COUNT (sizeof entry_fields / sizeof entry_fields[0])

PyObject *entry_names(void) {
  PyObject *names = PyTuple_New((Py_ssize_t)ENTRY_COUNT);
  if (names == NULL) return NULL;
  for (size_t i = 0; i < ENTRY_COUNT; i++) {
    PyObject *name = PyUnicode_FromString(entry_fields[i].name);
    if (name == NULL) {
      Py_DECREF(names);
      return NULL;
    }
    PyTuple_SET_ITEM(names, (Py_ssize_t)i, name); /* steals the reference */
  }
  return names;
}

bool entry_bound(void) { return entry.caps != NULL; /* bound last */ }

int entry_bind(PyObject *addresses) {
  if (entry_bound()) {
    PyErr_SetString(PyExc_RuntimeError, "the entry points are already bound");
    return -1;
  }
  if (!PyDict_Check(addresses) || PyDict_GET_SIZE(addresses) != (Py_ssize_t)ENTRY_COUNT) {
    PyErr_Format(PyExc_ValueError, "bind() needs a dict of the %d af_* entry point addresses", (int)ENTRY_COUNT);
    return -1;
  }
  void *found[ENTRY_COUNT];
  for (size_t i = 0; i < ENTRY_COUNT; i++) {
    PyObject *value = PyDict_GetItemString(addresses, entry_fields[i].name); /* borrowed */
    unsigned long long address = value == NULL ? 0 : PyLong_AsUnsignedLongLong(value);
    if (PyErr_Occurred()) return -1;
    if (address == 0) {
      PyErr_Format(PyExc_ValueError, "bind(): no address for %s", entry_fields[i].name);
      return -1;
    }
    found[i] = (void *)(uintptr_t)address;
  }
  for (size_t i = 0; i < ENTRY_COUNT; i++) memcpy((char *)&entry + entry_fields[i].offset, &found[i], sizeof(void *));
  return 0;
}
