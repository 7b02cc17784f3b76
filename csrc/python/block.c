/* ----------------------------------------------------------------------------
 * block.c: BlockBase, the C base type of allocffi.Block, and its buffer
 * exporter.
 *
 * A pure-Python class cannot export a buffer on Python 3.11, so the part of a
 * Block that memoryview(), bytes() and numpy need lives here: the address and
 * size of the memory, a lifecycle state and a count of live buffer exports,
 * like bytearray's ob_exports.
 *
 * Invariants:
 * - A buffer is exported only while state == ALIVE; every export holds a
 *   reference to the block (Py_buffer.obj), so a view keeps its Block alive.
 * - Only allocator.c and batch.c end a Block's life, after checking
 *   exports == 0 in the same stretch of C code that changes the state (no
 *   Python code runs in between), so a view never outlives its memory.
 * - Blocks cannot be created from Python code: BlockBase() raises, and
 *   safe_block_blank() builds only the one subclass registered by
 *   allocffi.interface, for memory the safe layer has just allocated.
 * ------------------------------------------------------------------------- */
#include "safe.h"

#include <structmember.h>

PyTypeObject *safe_block_type; /* the one subclass safe_block_blank() builds */

/* ----------------------------------------------------------------------------
 * Buffer protocol
 * ------------------------------------------------------------------------- */

static int block_getbuffer(PyObject *self, Py_buffer *view, int flags) {
  BlockObject *b = (BlockObject *)self;
  view->obj = NULL;
  if (b->state != BLOCK_ALIVE) {
    safe_refuse(REASON_STALE + b->state, NULL, NULL, self);
    return -1;
  }
  if (PyBuffer_FillInfo(view, self, (void *)b->address, b->size, 0, flags) < 0) return -1;
  b->exports++;
  return 0;
}

static void block_releasebuffer(PyObject *self, Py_buffer *view) {
  (void)view;
  ((BlockObject *)self)->exports--;
}

static PyBufferProcs block_as_buffer = {
  .bf_getbuffer = block_getbuffer,
  .bf_releasebuffer = block_releasebuffer,
};

/* ----------------------------------------------------------------------------
 * Creation
 * ------------------------------------------------------------------------- */

BlockObject *safe_block_blank(void) {
  if (safe_block_type == NULL) {
    PyErr_SetString(PyExc_RuntimeError, "no Block type registered");
    return NULL;
  }
  /* tp_alloc zeroes the object: address 0, state ALIVE, no owner. */
  return (BlockObject *)safe_block_type->tp_alloc(safe_block_type, 0);
}

/* n blank Blocks in a list. Runs no collection while it builds them: one
   would only examine the Blocks of this very batch (over half the cost of a
   batch, measured). The collection is deferred, not skipped: the collector's
   allocation count keeps growing, and the next allocation after this call
   starts it if the Blocks survive. With the collector paused, creating the
   Blocks runs no Python code, so this may be called with a StateLock held.
   May fail with MemoryError. */
PyObject *safe_blank_blocks(Py_ssize_t n) {
  PyObject *blocks = PyList_New(n);
  if (blocks == NULL) return NULL;
  int collector_was_enabled = PyGC_Disable();
  for (Py_ssize_t i = 0; i < n; i++) {
    BlockObject *b = safe_block_blank();
    if (b == NULL) {
      Py_CLEAR(blocks); /* (a list tolerates its NULL tail) */
      break;
    }
    PyList_SET_ITEM(blocks, i, (PyObject *)b);
  }
  if (collector_was_enabled) PyGC_Enable();
  return blocks;
}

static PyObject *block_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  (void)type, (void)args, (void)kwargs;
  PyErr_SetString(PyExc_TypeError, "Block objects are created by Allocator.alloc(), calloc() or realloc()");
  return NULL;
}

/* ----------------------------------------------------------------------------
 * Attributes and the type
 * ------------------------------------------------------------------------- */

static PyObject *block_get_alive(PyObject *self, void *Py_UNUSED(closure)) {
  return PyBool_FromLong(((BlockObject *)self)->state == BLOCK_ALIVE);
}

static PyObject *block_get_freed(PyObject *self, void *Py_UNUSED(closure)) {
  return PyBool_FromLong(((BlockObject *)self)->state != BLOCK_ALIVE);
}

static PyObject *block_get_address(PyObject *self, void *Py_UNUSED(closure)) {
  return PyLong_FromUnsignedLongLong((unsigned long long)((BlockObject *)self)->address);
}

static int block_traverse(PyObject *self, visitproc visit, void *arg) {
  Py_VISIT(((BlockObject *)self)->owner);
  return 0;
}

static int block_clear(PyObject *self) {
  Py_CLEAR(((BlockObject *)self)->owner);
  return 0;
}

static void block_dealloc(PyObject *self) {
  PyObject_GC_UnTrack(self);
  block_clear(self);
  Py_TYPE(self)->tp_free(self);
}

static PyMemberDef block_members[] = {
  {"size", T_PYSSIZET, offsetof(BlockObject, size), READONLY, "requested size in bytes"},
  {"align", T_PYSSIZET, offsetof(BlockObject, align), READONLY, "alignment the block was allocated with"},
  {"generation", T_ULONGLONG, offsetof(BlockObject, generation), READONLY,
   "the allocator's generation (reset count) when the block was allocated"},
  {"exports", T_PYSSIZET, offsetof(BlockObject, exports), READONLY, "live buffer exports (memoryviews, arrays)"},
  {"_state", T_INT, offsetof(BlockObject, state), READONLY, "lifecycle state; 0 is alive"},
  {"_owner", T_OBJECT, offsetof(BlockObject, owner), READONLY, "the owning allocator"},
  {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef block_getset[] = {
  {"address", block_get_address, NULL, "start address of the memory (an int)", NULL},
  {"alive", block_get_alive, NULL, "True until the block is freed, reset, closed or realloc'ed", NULL},
  {"freed", block_get_freed, NULL, "the opposite of alive", NULL},
  {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject BlockBase_Type = {
  PyVarObject_HEAD_INIT(NULL, 0).tp_name = "allocffi._safe.BlockBase",
  .tp_basicsize = sizeof(BlockObject),
  .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
  .tp_doc = "Memory handed out by an allocffi allocator, exported through the buffer protocol.",
  .tp_new = block_new,
  .tp_dealloc = block_dealloc,
  .tp_traverse = block_traverse,
  .tp_clear = block_clear,
  .tp_as_buffer = &block_as_buffer,
  .tp_members = block_members,
  .tp_getset = block_getset,
};
