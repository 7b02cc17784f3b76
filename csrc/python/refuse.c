/* ----------------------------------------------------------------------------
 * refuse.c: arguments checked in C, and refusals turned into exceptions.
 *
 * Every operation decides a refusal as one reason code (a REASON_* of
 * safe.h, or the af_status an allocator returned). This file is the one
 * place that turns a code into an exception: it calls errors.error_for,
 * whose table maps each code to a class and a message (bound once by
 * module.c's bind(); C never looks exception classes up by name). That call
 * runs Python code, so it happens only after every lock is released.
 * ------------------------------------------------------------------------- */
#include "safe.h"

PyObject *safe_error_for; /* errors.error_for; NULL until bind() */

/* An int argument, through __index__ like operator.index(); bools are not
   sizes. 0 with *out (clamped to [LLONG_MIN, LLONG_MAX] with *overflow
   set), a reason, or -1 with an exception. */
static int int_arg(PyObject *arg, long long *out, int *overflow) {
  if (!PyLong_CheckExact(arg)) {
    if (PyBool_Check(arg) || !PyIndex_Check(arg)) return REASON_NOT_AN_INT;
    PyObject *index = PyNumber_Index(arg);
    if (index == NULL) return -1;
    *out = PyLong_AsLongLongAndOverflow(index, overflow);
    Py_DECREF(index);
  } else {
    *out = PyLong_AsLongLongAndOverflow(arg, overflow);
  }
  if (*out == -1 && PyErr_Occurred()) return -1;
  return 0;
}

int safe_parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names, int required,
                    PyObject **found, const char *usage) {
  int count = 0;
  while (names[count] != NULL) count++;
  for (int i = 0; i < count; i++) found[i] = i < nargs ? args[i] : NULL;
  Py_ssize_t nkw = kwnames == NULL ? 0 : PyTuple_GET_SIZE(kwnames);
  if (nargs > count) goto usage;
  for (Py_ssize_t k = 0; k < nkw; k++) {
    int slot = -1;
    for (int i = 0; i < count && slot < 0; i++)
      if (PyUnicode_CompareWithASCIIString(PyTuple_GET_ITEM(kwnames, k), names[i]) == 0) slot = i;
    if (slot < 0 || found[slot] != NULL) goto usage;
    found[slot] = args[nargs + k];
  }
  for (int i = 0; i < required; i++)
    if (found[i] == NULL) goto usage;
  return 0;
usage:
  PyErr_Format(PyExc_TypeError, "the arguments are %s", usage);
  return -1;
}

int safe_size_arg(PyObject *arg, long long *out) {
  int overflow = 0;
  int reason = int_arg(arg, out, &overflow);
  if (reason != 0) return reason;
  if (overflow < 0 || *out < 0) return REASON_SIZE_NEGATIVE;
  if (overflow > 0 || *out > AF_MAX_ALLOC_SIZE) return REASON_SIZE_TOO_LARGE;
  return 0;
}

int safe_align_arg(PyObject *arg, long long *out) {
  int overflow = 0;
  int reason = int_arg(arg, out, &overflow);
  if (reason != 0) return reason;
  if (overflow != 0 || *out <= 0 || *out > AF_MAX_ALIGN || (*out & (*out - 1)) != 0) return REASON_BAD_ALIGN;
  return 0;
}

PyObject *safe_refuse(int reason, AllocatorObject *allocator, const char *op, PyObject *subject) {
  if (reason < 0) return NULL; /* the exception is already set */
  if (safe_error_for == NULL) {
    PyErr_Format(PyExc_RuntimeError, "allocffi._safe refused a call (reason %d) before bind()", reason);
    return NULL;
  }
  PyObject *error =
    PyObject_CallFunction(safe_error_for, "izOO", reason, op, allocator != NULL ? (PyObject *)allocator : Py_None,
                          subject != NULL ? subject : Py_None);
  if (error == NULL) return NULL;
  PyErr_SetObject((PyObject *)Py_TYPE(error), error);
  Py_DECREF(error);
  return NULL;
}

PyObject *safe_refuse_n(int reason, AllocatorObject *allocator, const char *op, long long subject) {
  PyObject *value = PyLong_FromLongLong(subject);
  if (value == NULL) return NULL;
  safe_refuse(reason, allocator, op, value);
  Py_DECREF(value);
  return NULL;
}

PyObject *safe_refuse_release(int reason, AllocatorObject *allocator, const char *op, Py_ssize_t count,
                              uint64_t bytes) {
  PyObject *subject = Py_BuildValue("(nK)", count, (unsigned long long)bytes);
  if (subject == NULL) return NULL;
  safe_refuse(reason, allocator, op, subject);
  Py_DECREF(subject);
  return NULL;
}

PyObject *safe_refuse_arg(int reason, AllocatorObject *allocator, const char *op, const char *what, PyObject *value) {
  if (reason < 0) return NULL;
  PyObject *subject = Py_BuildValue("(sO)", what, value);
  if (subject == NULL) return NULL;
  safe_refuse(reason, allocator, op, subject);
  Py_DECREF(subject);
  return NULL;
}
