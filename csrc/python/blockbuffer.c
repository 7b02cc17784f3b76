/* ----------------------------------------------------------------------------
 * blockbuffer.c: allocffi._blockbuffer, the C base type of allocffi.Block.
 * (The module also holds AllocatorBase, in allocstate.c.)
 *
 * A pure-Python class cannot export a buffer on Python 3.11, so the part of a
 * Block that memoryview(), bytes() and numpy need lives here: the address and
 * size of the memory, a lifecycle state and a count of live buffer exports,
 * like bytearray's ob_exports.
 *
 * Invariants:
 * - A buffer is exported only while state == ALIVE; every export holds a
 *   reference to the block (Py_buffer.obj), so a view keeps its Block alive.
 * - The safe layer only gives memory back after checking exports == 0 and
 *   moving the block out of ALIVE (_retire(), retire_all(), or AllocatorBase's
 *   free and free_many paths in allocstate.c), without releasing the GIL
 *   in between, so no export can appear between the check and the state
 *   change. A view therefore never outlives its memory.
 * - Blocks cannot be created from Python code: BlockBase() raises, and
 *   new_block() and _allocffi_block_blank() only build the one subclass
 *   registered by allocffi.allocator (the safe layer creates a Block only for
 *   memory it just allocated).
 * ------------------------------------------------------------------------- */
#include "blockbuffer.h"

#include <structmember.h>
#include <stdbool.h>

static PyTypeObject BlockBase_Type;
PyTypeObject *_allocffi_block_type; /* the one subclass new_block() builds */

static const char *const state_messages[BLOCK_STATE_COUNT] = {
  "block is alive",
  "block was freed; allocate a new one",
  "block is from before the allocator's reset(); allocate a new one",
  "block's allocator was closed; open a new allocator",
  "block was replaced by the Block realloc() returned; use that one",
};

/* Raise allocffi.errors.<name> (looked up at error time, so that this module
   imports on its own), or `fallback` when that is not importable. */
static void raise_error(const char *name, PyObject *fallback, const char *message) {
  PyObject *cls = NULL;
  PyObject *errors = PyImport_ImportModule("allocffi.errors");
  if (errors != NULL) {
    cls = PyObject_GetAttrString(errors, name);
    Py_DECREF(errors);
  }
  if (cls == NULL) {
    PyErr_Clear();
    PyErr_SetString(fallback, message);
    return;
  }
  PyErr_SetString(cls, message);
  Py_DECREF(cls);
}

static void raise_stale(const BlockBase *b) {
  raise_error("StaleBlockError", PyExc_ValueError, state_messages[b->state]);
}

void _allocffi_raise_views(Py_ssize_t exports) {
  char message[200];
  snprintf(message, sizeof message,
           "%zd memoryview/ndarray export(s) still point into this memory; release them "
           "(view.release(), del the array) and try again",
           exports);
  raise_error("ViewsOutstandingError", PyExc_BufferError, message);
}

/* ----------------------------------------------------------------------------
 * Buffer protocol
 * ------------------------------------------------------------------------- */

static int block_getbuffer(PyObject *self, Py_buffer *view, int flags) {
  BlockBase *b = (BlockBase *)self;
  if (b->state != BLOCK_ALIVE) {
    raise_stale(b);
    view->obj = NULL;
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, (void *)b->address, b->size, 0, flags) < 0) return -1;
  b->exports++;
  return 0;
}

static void block_releasebuffer(PyObject *self, Py_buffer *view) {
  (void)view;
  ((BlockBase *)self)->exports--;
}

static PyBufferProcs block_as_buffer = {
  .bf_getbuffer = block_getbuffer,
  .bf_releasebuffer = block_releasebuffer,
};

/* ----------------------------------------------------------------------------
 * State changes used by the safe layer
 * ------------------------------------------------------------------------- */

static int parse_dead_state(PyObject *arg, int *state) {
  long value = PyLong_AsLong(arg);
  if (value == -1 && PyErr_Occurred()) return -1;
  if (value <= BLOCK_ALIVE || value >= BLOCK_STATE_COUNT) {
    PyErr_SetString(PyExc_ValueError, "not a dead block state");
    return -1;
  }
  *state = (int)value;
  return 0;
}

/* Alive -> `state`, refusing while views exist. */
static PyObject *block_retire(PyObject *self, PyObject *arg) {
  BlockBase *b = (BlockBase *)self;
  int state;
  if (parse_dead_state(arg, &state) < 0) return NULL;
  if (b->state != BLOCK_ALIVE) {
    raise_stale(b);
    return NULL;
  }
  if (b->exports > 0) {
    _allocffi_raise_views(b->exports);
    return NULL;
  }
  b->state = state;
  Py_RETURN_NONE;
}

/* The free fast path in one call: if the block belongs to `owner` and is
   alive, retire it to `state` and return its address; return 0 (changing
   nothing) when it is not owner's or not alive, so that the caller can raise
   the precise error; raise while views exist. */
static PyObject *block_take(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
  BlockBase *b = (BlockBase *)self;
  int state;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "_take(owner, state)");
    return NULL;
  }
  if (parse_dead_state(args[1], &state) < 0) return NULL;
  if (b->owner != args[0] || b->state != BLOCK_ALIVE) return PyLong_FromLong(0);
  if (b->exports > 0) {
    _allocffi_raise_views(b->exports);
    return NULL;
  }
  b->state = state;
  return PyLong_FromUnsignedLongLong((unsigned long long)b->address);
}

/* Undo _retire() when the C call that followed it failed: the memory is still
   the block's. */
static PyObject *block_revive(PyObject *self, PyObject *Py_UNUSED(ignored)) {
  ((BlockBase *)self)->state = BLOCK_ALIVE;
  Py_RETURN_NONE;
}

static PyObject *block_get_alive(PyObject *self, void *Py_UNUSED(closure)) {
  return PyBool_FromLong(((BlockBase *)self)->state == BLOCK_ALIVE);
}

static PyObject *block_get_freed(PyObject *self, void *Py_UNUSED(closure)) {
  return PyBool_FromLong(((BlockBase *)self)->state != BLOCK_ALIVE);
}

static PyObject *block_get_address(PyObject *self, void *Py_UNUSED(closure)) {
  return PyLong_FromUnsignedLongLong((unsigned long long)((BlockBase *)self)->address);
}

static PyObject *block_get_state_text(PyObject *self, void *Py_UNUSED(closure)) {
  return PyUnicode_FromString(state_messages[((BlockBase *)self)->state]);
}

/* ----------------------------------------------------------------------------
 * Type object
 * ------------------------------------------------------------------------- */

static PyObject *block_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  (void)type, (void)args, (void)kwargs;
  PyErr_SetString(PyExc_TypeError, "Block objects are created by Allocator.alloc(), calloc() or realloc()");
  return NULL;
}

static int block_traverse(PyObject *self, visitproc visit, void *arg) {
  Py_VISIT(((BlockBase *)self)->owner);
  return 0;
}

static int block_clear(PyObject *self) {
  Py_CLEAR(((BlockBase *)self)->owner);
  return 0;
}

static void block_dealloc(PyObject *self) {
  PyObject_GC_UnTrack(self);
  block_clear(self);
  Py_TYPE(self)->tp_free(self);
}

static PyMemberDef block_members[] = {
  {"size", T_PYSSIZET, offsetof(BlockBase, size), READONLY, "requested size in bytes"},
  {"align", T_PYSSIZET, offsetof(BlockBase, align), READONLY, "alignment the block was allocated with"},
  {"generation", T_ULONGLONG, offsetof(BlockBase, generation), READONLY,
   "the allocator's generation (reset count) when the block was allocated"},
  {"exports", T_PYSSIZET, offsetof(BlockBase, exports), READONLY, "live buffer exports (memoryviews, arrays)"},
  {"_state", T_INT, offsetof(BlockBase, state), READONLY, "lifecycle state; 0 is alive"},
  {"_owner", T_OBJECT, offsetof(BlockBase, owner), READONLY, "the owning allocator"},
  {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef block_getset[] = {
  {"address", block_get_address, NULL, "start address of the memory (an int)", NULL},
  {"alive", block_get_alive, NULL, "True until the block is freed, reset, closed or realloc'ed", NULL},
  {"freed", block_get_freed, NULL, "the opposite of alive", NULL},
  {"_state_text", block_get_state_text, NULL, "why the block is not alive", NULL},
  {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef block_methods[] = {
  {"_retire", block_retire, METH_O, "Mark dead (state) unless views exist; safe layer only."},
  {"_take", (PyCFunction)(void (*)(void))block_take, METH_FASTCALL,
   "_take(owner, state) -> address, or 0 if not owner's alive block; safe layer only."},
  {"_revive", block_revive, METH_NOARGS, "Undo _retire after a failed C call; safe layer only."},
  {NULL, NULL, 0, NULL},
};

static PyTypeObject BlockBase_Type = {
  PyVarObject_HEAD_INIT(NULL, 0)
  .tp_name = "allocffi._blockbuffer.BlockBase",
  .tp_basicsize = sizeof(BlockBase),
  .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
  .tp_doc = "Memory handed out by an allocffi allocator, exported through the buffer protocol.",
  .tp_new = block_new,
  .tp_dealloc = block_dealloc,
  .tp_traverse = block_traverse,
  .tp_clear = block_clear,
  .tp_as_buffer = &block_as_buffer,
  .tp_members = block_members,
  .tp_getset = block_getset,
  .tp_methods = block_methods,
};

/* ----------------------------------------------------------------------------
 * Module functions
 * ------------------------------------------------------------------------- */

static PyObject *set_block_type(PyObject *module, PyObject *arg) {
  (void)module;
  if (_allocffi_block_type != NULL) {
    PyErr_SetString(PyExc_RuntimeError, "the Block type is already registered");
    return NULL;
  }
  if (!PyType_Check(arg) || !PyType_IsSubtype((PyTypeObject *)arg, &BlockBase_Type)) {
    PyErr_SetString(PyExc_TypeError, "expected a subclass of BlockBase");
    return NULL;
  }
  Py_INCREF(arg);
  _allocffi_block_type = (PyTypeObject *)arg;
  Py_RETURN_NONE;
}

BlockBase *_allocffi_block_blank(void) {
  if (_allocffi_block_type == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "no Block type registered");
    return NULL;
  }
  /* tp_alloc zeroes the object: address 0, state ALIVE, no owner. */
  return (BlockBase *)_allocffi_block_type->tp_alloc(_allocffi_block_type, 0);
}

/* new_block(address, size, align, generation, owner) */
static PyObject *new_block(PyObject *module, PyObject *const *args, Py_ssize_t nargs) {
  (void)module;
  if (_allocffi_block_type == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "no Block type registered");
    return NULL;
  }
  if (nargs != 5) {
    PyErr_SetString(PyExc_TypeError, "new_block takes 5 arguments");
    return NULL;
  }
  unsigned long long address = PyLong_AsUnsignedLongLong(args[0]);
  Py_ssize_t size = PyLong_AsSsize_t(args[1]);
  Py_ssize_t align = PyLong_AsSsize_t(args[2]);
  unsigned long long generation = PyLong_AsUnsignedLongLong(args[3]);
  if (PyErr_Occurred()) return NULL;
  if (address == 0 || size < 0 || align <= 0) {
    PyErr_SetString(PyExc_ValueError, "invalid block geometry");
    return NULL;
  }
  BlockBase *b = _allocffi_block_blank();
  if (b == NULL) return NULL;
  b->address = (uintptr_t)address;
  b->size = size;
  b->align = align;
  b->generation = generation;
  b->exports = 0;
  b->state = BLOCK_ALIVE;
  Py_INCREF(args[4]);
  b->owner = args[4];
  return (PyObject *)b;
}

/* Retire every block of a list to `state`, all or none: if any has views,
   nothing changes. Blocks already dead are left as they are. */
static PyObject *retire_all(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *list;
  PyObject *state_obj;
  int state;
  if (!PyArg_ParseTuple(args, "O!O", &PyList_Type, &list, &state_obj)) return NULL;
  if (parse_dead_state(state_obj, &state) < 0) return NULL;
  Py_ssize_t n = PyList_GET_SIZE(list);
  Py_ssize_t exports = 0;
  for (Py_ssize_t i = 0; i < n; i++) {
    PyObject *item = PyList_GET_ITEM(list, i);
    if (!PyObject_TypeCheck(item, &BlockBase_Type)) {
      PyErr_SetString(PyExc_TypeError, "retire_all expects a list of blocks");
      return NULL;
    }
    exports += ((BlockBase *)item)->exports;
  }
  if (exports > 0) {
    _allocffi_raise_views(exports);
    return NULL;
  }
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockBase *b = (BlockBase *)PyList_GET_ITEM(list, i);
    if (b->state == BLOCK_ALIVE) b->state = state;
  }
  Py_RETURN_NONE;
}

static PyMethodDef module_methods[] = {
  {"set_block_type", set_block_type, METH_O, "Register the Block subclass new_block() builds (once)."},
  {"new_block", (PyCFunction)(void (*)(void))new_block, METH_FASTCALL,
   "new_block(address, size, align, generation, owner) -> Block"},
  {"retire_all", retire_all, METH_VARARGS, "retire_all(blocks, state): all or none, refusing while views exist"},
  {NULL, NULL, 0, NULL},
};

static struct PyModuleDef blockbuffer_module = {
  PyModuleDef_HEAD_INIT,
  .m_name = "allocffi._blockbuffer",
  .m_doc = "Buffer-exporting base type of allocffi.Block.",
  .m_size = -1,
  .m_methods = module_methods,
};

PyMODINIT_FUNC PyInit__blockbuffer(void) {
  if (PyType_Ready(&BlockBase_Type) < 0) return NULL;
  PyObject *m = PyModule_Create(&blockbuffer_module);
  if (m == NULL) return NULL;
  Py_INCREF(&BlockBase_Type);
  if (PyModule_AddObject(m, "BlockBase", (PyObject *)&BlockBase_Type) < 0) {
    Py_DECREF(&BlockBase_Type);
    Py_DECREF(m);
    return NULL;
  }
  if (_allocffi_allocstate_init(m) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  if (PyModule_AddIntConstant(m, "ALIVE", BLOCK_ALIVE) < 0 || PyModule_AddIntConstant(m, "FREED", BLOCK_FREED) < 0 ||
      PyModule_AddIntConstant(m, "RESET", BLOCK_RESET) < 0 || PyModule_AddIntConstant(m, "CLOSED", BLOCK_CLOSED) < 0 ||
      PyModule_AddIntConstant(m, "MOVED", BLOCK_MOVED) < 0) {
    Py_DECREF(m);
    return NULL;
  }
  return m;
}
