/* ----------------------------------------------------------------------------
 * allocator.c: AllocatorBase, the C base type of allocffi.Allocator: one
 * method per operation (alloc, calloc, realloc, free, usable_size, reset,
 * trim, close; alloc_many and free_many are in batch.c), each doing every
 * check itself before any allocator call.
 *
 * The state: the allocator handle, the generation (reset count), `live`, a
 * doubly linked list through the Blocks of exactly the ALIVE Blocks this
 * allocator handed out (linking and unlinking cost a few stores, where a dict
 * cost more than the allocation), and the count of blocks held by foreign
 * owners (NumPy arrays).
 *
 * Each operation reads:
 *   1. parse the arguments (may run Python code: __index__), make the Block
 *      object it will hand out (may run the garbage collector);
 *   2. take the lock (waiting with the GIL released), decide: one reason
 *      code, or none; act (the allocator call keeps the GIL: it is short, and
 *      the C allocator's own lock is only held inside one call);
 *   3. drop the lock, then return, or raise from the reason code (refuse.c).
 * Nothing changes unless the operation succeeds, and a refused call leaves
 * every block as it was.
 * ------------------------------------------------------------------------- */
#include "safe.h"

#include <structmember.h>

/* C allocators attached and not yet destroyed, over every AllocatorBase (what
   the finalizer test watches). Changed only with the GIL held. */
Py_ssize_t safe_open_handles;

/* ----------------------------------------------------------------------------
 * The live list
 * ------------------------------------------------------------------------- */

void safe_live_link(AllocatorObject *self, BlockObject *b) {
  Py_INCREF(b);
  b->prev = NULL;
  b->next = self->live;
  if (self->live != NULL) self->live->prev = b;
  self->live = b;
  self->live_count++;
}

void safe_live_unlink(AllocatorObject *self, BlockObject *b) {
  if (b->prev != NULL)
    b->prev->next = b->next;
  else
    self->live = b->next;
  if (b->next != NULL) b->next->prev = b->prev;
  b->prev = b->next = NULL;
  self->live_count--;
}

/* Drop the references of a chain taken off the live list (no lock held). */
static void drop_chain(BlockObject *chain) {
  while (chain != NULL) {
    BlockObject *next = chain->next;
    chain->prev = chain->next = NULL;
    Py_DECREF(chain);
    chain = next;
  }
}

/* ----------------------------------------------------------------------------
 * Shared decisions
 * ------------------------------------------------------------------------- */

int safe_enter(AllocatorObject *self) {
  int reason = statelock_take(self->lock);
  if (reason != 0) return reason;
  if (self->handle == NULL) {
    statelock_drop(self->lock);
    return REASON_CLOSED;
  }
  return 0;
}

/* Why `arg` cannot be used by this allocator, or 0 when it is one of its
   alive Blocks of the current generation (lock held). */
static int block_reason(const AllocatorObject *self, PyObject *arg, bool freeing) {
  if (!SAFE_IS_BLOCK(arg)) return REASON_NOT_A_BLOCK;
  const BlockObject *b = (const BlockObject *)arg;
  if (b->owner != (PyObject *)self) return REASON_FOREIGN;
  if (b->state == BLOCK_FREED && freeing) return REASON_DOUBLE_FREE;
  if (b->state != BLOCK_ALIVE) return REASON_STALE + b->state;
  if (b->generation != self->generation) return REASON_STALE + BLOCK_RESET;
  return 0;
}

static bool wrong_thread(const AllocatorObject *self) {
  return (self->caps & AF_CAP_THREAD_BOUND) != 0 && PyThread_get_thread_ident() != self->creator;
}

int safe_release_check(AllocatorObject *self, bool check_views, Py_ssize_t *count, uint64_t *bytes) {
  uint64_t expected = 0;
  if (!atomic_compare_exchange_strong(&self->foreign.state, &expected, FOREIGN_EXCLUSIVE)) {
    *count = (Py_ssize_t)(expected & FOREIGN_COUNT_MASK);
    *bytes = atomic_load(&self->foreign.bytes);
    return REASON_FOREIGN_OWNERS;
  }
  if (check_views) {
    Py_ssize_t exports = 0;
    for (const BlockObject *b = self->live; b != NULL; b = b->next) exports += b->exports;
    if (exports > 0) {
      atomic_store(&self->foreign.state, 0);
      *count = exports;
      *bytes = 0;
      return REASON_VIEWS;
    }
  }
  return 0;
}

void safe_foreign_release(AllocatorObject *self, bool closed) {
  atomic_store(&self->foreign.state, closed ? FOREIGN_CLOSED : 0);
}

/* Mark every live block `state` and empty the live list; returns the old
   chain, whose references the caller drops after the lock (drop_chain). */
static BlockObject *retire_live(AllocatorObject *self, int state) {
  for (BlockObject *b = self->live; b != NULL; b = b->next) b->state = state;
  BlockObject *chain = self->live;
  self->live = NULL;
  self->live_count = 0;
  return chain;
}

/* Destroy the C allocator (lock held, release checks passed). Process-wide
   allocators do not free their blocks when destroyed, and a thread-bound heap
   destroyed from another thread is abandoned, not emptied (system_heaps.c):
   their blocks are freed one by one first (frees work from any thread). */
static BlockObject *destroy_handle(AllocatorObject *self) {
  bool process_wide = (self->caps & AF_CAP_RESET) == 0 && (self->caps & AF_CAP_SYSTEM) != 0;
  if (process_wide || wrong_thread(self)) {
    for (const BlockObject *b = self->live; b != NULL; b = b->next)
      (void)entry.free(self->handle, (void *)b->address, (size_t)b->size, (size_t)b->align);
  }
  BlockObject *old = retire_live(self, BLOCK_CLOSED);
  entry.destroy(self->handle);
  self->handle = NULL;
  safe_open_handles--;
  safe_foreign_release(self, true);
  return old;
}

/* ----------------------------------------------------------------------------
 * alloc, calloc
 * ------------------------------------------------------------------------- */

static PyObject *alloc_common(AllocatorObject *self, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames,
                              bool zeroed) {
  const char *op = zeroed ? "calloc" : "alloc";
  static const char *const names[] = {"size", "align", NULL};
  PyObject *found[2];
  long long size, align = AF_DEFAULT_ALIGN;
  if (safe_parse_args(args, nargs, kwnames, names, 1, found,
                      zeroed ? "calloc(size, align=16)" : "alloc(size, align=16)") < 0)
    return NULL;
  PyObject *size_arg = found[0], *align_arg = found[1];
  int reason = safe_size_arg(size_arg, &size);
  if (reason != 0) return safe_refuse_arg(reason, self, op, "size", size_arg);
  if (align_arg != NULL && (reason = safe_align_arg(align_arg, &align)) != 0)
    return safe_refuse_arg(reason, self, op, "align", align_arg);

  BlockObject *b = safe_block_blank(); /* before the lock: may run the garbage collector */
  if (b == NULL) return NULL;
  reason = safe_enter(self);
  if (reason != 0) {
    Py_DECREF(b);
    return safe_refuse(reason, self, op, NULL);
  }
  af_allocator *handle = self->handle;
  void *p = (zeroed ? entry.calloc : entry.alloc)(handle, (size_t)size, (size_t)align);
  if (p == NULL) {
    reason = entry.last_error(handle);
  } else {
    b->address = (uintptr_t)p;
    b->size = (Py_ssize_t)size;
    b->align = (Py_ssize_t)align;
    b->generation = self->generation;
    Py_INCREF(self);
    b->owner = (PyObject *)self;
    safe_live_link(self, b);
  }
  statelock_drop(self->lock);
  if (reason == 0) return (PyObject *)b;
  Py_DECREF(b);
  char call[96];
  snprintf(call, sizeof call, "%s(%lld, align=%lld)", op, size, align);
  return safe_refuse_n(reason, self, call, size);
}

static PyObject *allocator_alloc(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  return alloc_common((AllocatorObject *)op, args, nargs, kwnames, false);
}

static PyObject *allocator_calloc(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames) {
  return alloc_common((AllocatorObject *)op, args, nargs, kwnames, true);
}

/* ----------------------------------------------------------------------------
 * free, realloc, usable_size
 * ------------------------------------------------------------------------- */

/* free under the name the user called it by (free, or the slab's put). */
static PyObject *free_one(AllocatorObject *self, PyObject *arg, const char *name) {
  int reason = safe_enter(self);
  if (reason != 0) return safe_refuse(reason, self, name, NULL);
  reason = block_reason(self, arg, true);
  BlockObject *b = (BlockObject *)arg;
  Py_ssize_t views = 0;
  if (reason == 0 && b->exports > 0) {
    reason = REASON_VIEWS;
    views = b->exports;
  }
  if (reason == 0) {
    int status = entry.free(self->handle, (void *)b->address, (size_t)b->size, (size_t)b->align);
    if (status != AF_OK) {
      reason = status;
    } else {
      b->state = BLOCK_FREED;
      safe_live_unlink(self, b);
      Py_DECREF(b); /* the list's reference: the caller's keeps b alive */
    }
  }
  statelock_drop(self->lock);
  if (reason == 0) Py_RETURN_NONE;
  if (reason == REASON_VIEWS) return safe_refuse_release(reason, self, name, views, 0);
  return safe_refuse(reason, self, name, arg);
}

static PyObject *allocator_free(PyObject *op, PyObject *arg) { return free_one((AllocatorObject *)op, arg, "free"); }

/* _free_as(block, name): free() for a method of a subclass that frees under another name. */
static PyObject *allocator_free_as(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
  const char *name = nargs == 2 ? PyUnicode_AsUTF8(args[1]) : NULL;
  if (name == NULL) {
    if (!PyErr_Occurred()) PyErr_SetString(PyExc_TypeError, "_free_as(block, name: str)");
    return NULL;
  }
  return free_one((AllocatorObject *)op, args[0], name);
}

static PyObject *allocator_realloc(PyObject *op, PyObject *const *args, Py_ssize_t nargs) {
  AllocatorObject *self = (AllocatorObject *)op;
  if (nargs != 2) {
    PyErr_SetString(PyExc_TypeError, "realloc(block, new_size) takes 2 arguments");
    return NULL;
  }
  long long new_size;
  int reason = safe_size_arg(args[1], &new_size);
  if (reason != 0) return safe_refuse_arg(reason, self, "realloc", "new_size", args[1]);
  BlockObject *moved = safe_block_blank(); /* before the lock: may run the garbage collector */
  if (moved == NULL) return NULL;
  reason = safe_enter(self);
  if (reason != 0) {
    Py_DECREF(moved);
    return safe_refuse(reason, self, "realloc", NULL);
  }
  BlockObject *b = (BlockObject *)args[0];
  Py_ssize_t views = 0, old_size = 0, align = 0;
  reason = block_reason(self, args[0], false);
  if (reason == 0 && b->exports > 0) {
    reason = REASON_VIEWS;
    views = b->exports;
  }
  if (reason == 0) {
    old_size = b->size;
    align = b->align;
    void *p = entry.realloc(self->handle, (void *)b->address, (size_t)old_size, (size_t)new_size, (size_t)align);
    if (p == NULL) {
      reason = entry.last_error(self->handle);
    } else {
      b->state = BLOCK_MOVED;
      safe_live_unlink(self, b);
      Py_DECREF(b); /* the list's reference: the caller's keeps b alive */
      moved->address = (uintptr_t)p;
      moved->size = (Py_ssize_t)new_size;
      moved->align = align;
      moved->generation = self->generation;
      Py_INCREF(self);
      moved->owner = (PyObject *)self;
      safe_live_link(self, moved);
    }
  }
  statelock_drop(self->lock);
  if (reason == 0) return (PyObject *)moved;
  Py_DECREF(moved);
  if (reason == REASON_VIEWS) return safe_refuse_release(reason, self, "realloc", views, 0);
  if (reason > 0 && reason < REASON_NOT_AN_INT) { /* the allocator refused */
    char call[96];
    snprintf(call, sizeof call, "realloc(%zd -> %lld, align=%zd)", old_size, new_size, align);
    return safe_refuse_n(reason, self, call, new_size);
  }
  return safe_refuse(reason, self, "realloc", args[0]);
}

static PyObject *allocator_usable_size(PyObject *op, PyObject *arg) {
  AllocatorObject *self = (AllocatorObject *)op;
  int reason = safe_enter(self);
  if (reason != 0) return safe_refuse(reason, self, "usable_size", NULL);
  size_t usable = 0;
  reason = block_reason(self, arg, false);
  if (reason == 0) {
    const BlockObject *b = (const BlockObject *)arg;
    usable = entry.usable_size(self->handle, (void *)b->address, (size_t)b->size, (size_t)b->align);
  }
  statelock_drop(self->lock);
  if (reason != 0) return safe_refuse(reason, self, "usable_size", arg);
  return PyLong_FromSize_t(usable);
}

/* ----------------------------------------------------------------------------
 * reset, trim, close: the release decision (foreign owners, then views)
 * ------------------------------------------------------------------------- */

static PyObject *allocator_reset(PyObject *op, PyObject *Py_UNUSED(ignored)) {
  AllocatorObject *self = (AllocatorObject *)op;
  int reason = safe_enter(self);
  Py_ssize_t count = 0;
  uint64_t bytes = 0;
  BlockObject *old = NULL;
  if (reason == 0) {
    if ((self->caps & AF_CAP_RESET) == 0)
      reason = REASON_NO_RESET;
    else if (wrong_thread(self))
      reason = REASON_WRONG_THREAD;
    else
      reason = safe_release_check(self, true, &count, &bytes);
    if (reason == 0) {
      reason = entry.reset(self->handle);
      if (reason == AF_OK) {
        old = retire_live(self, BLOCK_RESET);
        self->generation++;
      }
      safe_foreign_release(self, false);
    }
    statelock_drop(self->lock);
  }
  drop_chain(old);
  if (reason == 0) Py_RETURN_NONE;
  return safe_refuse_release(reason, self, "reset", count, bytes);
}

static PyObject *allocator_trim(PyObject *op, PyObject *Py_UNUSED(ignored)) {
  AllocatorObject *self = (AllocatorObject *)op;
  int reason = safe_enter(self);
  Py_ssize_t count = 0;
  uint64_t bytes = 0;
  if (reason == 0) {
    reason = safe_release_check(self, false, &count, &bytes);
    if (reason == 0) {
      entry.trim(self->handle);
      safe_foreign_release(self, false);
    }
    statelock_drop(self->lock);
  }
  if (reason == 0) Py_RETURN_NONE;
  return safe_refuse_release(reason, self, "trim", count, bytes);
}

static PyObject *allocator_close(PyObject *op, PyObject *Py_UNUSED(ignored)) {
  AllocatorObject *self = (AllocatorObject *)op;
  int reason = safe_enter(self);
  if (reason == REASON_CLOSED) Py_RETURN_NONE; /* idempotent */
  Py_ssize_t count = 0;
  uint64_t bytes = 0;
  BlockObject *old = NULL;
  if (reason == 0) {
    reason = safe_release_check(self, true, &count, &bytes);
    if (reason == 0) old = destroy_handle(self);
    statelock_drop(self->lock);
  }
  drop_chain(old);
  if (reason == 0) Py_RETURN_NONE;
  return safe_refuse_release(reason, self, "close", count, bytes);
}

/* Reached when nothing refers to the allocator any more, so no Block does
   either (a Block holds its allocator) and no NumPy array (the handler's
   capsule holds it too). Views hold their Block, so normally none exist; if
   some do (a garbage cycle holding a memoryview), the memory is leaked rather
   than freed under them. Never raises: leaking is the safe failure. */
static void allocator_finalize(PyObject *op) {
  AllocatorObject *self = (AllocatorObject *)op;
#if PY_VERSION_HEX >= 0x030D0000
  if (self->handle == NULL || Py_IsFinalizing()) return;
#else
  if (self->handle == NULL || _Py_IsFinalizing()) return;
#endif
  PyObject *type, *value, *traceback;
  PyErr_Fetch(&type, &value, &traceback);
  if (statelock_try(self->lock)) {
    Py_ssize_t count;
    uint64_t bytes;
    BlockObject *old = NULL;
    if (self->handle != NULL && safe_release_check(self, true, &count, &bytes) == 0) old = destroy_handle(self);
    statelock_drop(self->lock);
    drop_chain(old);
  }
  PyErr_Clear();
  PyErr_Restore(type, value, traceback);
}

/* ----------------------------------------------------------------------------
 * Set-up and introspection for allocator.py
 * ------------------------------------------------------------------------- */

/* _attach(handle_address): once, by the concrete class's constructor. */
static PyObject *allocator_attach(PyObject *op, PyObject *arg) {
  AllocatorObject *self = (AllocatorObject *)op;
  unsigned long long address = PyLong_AsUnsignedLongLong(arg);
  if (PyErr_Occurred()) return NULL;
  if (self->attached || address == 0 || !entry_bound()) {
    PyErr_SetString(PyExc_RuntimeError, "_attach: the allocator already has a handle");
    return NULL;
  }
  af_allocator *handle = (af_allocator *)(uintptr_t)address;
  PyObject *name = PyUnicode_FromString(entry.name(handle));
  if (name == NULL) return NULL;
  Py_XSETREF(self->name, name);
  self->handle = handle;
  self->caps = entry.caps(handle);
  self->creator = PyThread_get_thread_ident();
  self->attached = true;
  safe_open_handles++;
  Py_RETURN_NONE;
}

/* _require_open(op) -> the handle's address, or ClosedAllocatorError naming op. */
static PyObject *allocator_require_open(PyObject *op, PyObject *arg) {
  AllocatorObject *self = (AllocatorObject *)op;
  if (self->handle == NULL) return safe_refuse(REASON_CLOSED, self, PyUnicode_AsUTF8(arg), NULL);
  return PyLong_FromUnsignedLongLong((uintptr_t)self->handle);
}

static PyObject *allocator_blocks(PyObject *op, PyObject *Py_UNUSED(ignored)) {
  AllocatorObject *self = (AllocatorObject *)op;
  int reason = safe_enter(self);
  if (reason != 0) return safe_refuse(reason, self, "blocks", NULL);
  int collector_was_enabled = PyGC_Disable(); /* no collection (Python code) under the lock */
  PyObject *blocks = PyList_New(self->live_count);
  if (collector_was_enabled) PyGC_Enable();
  Py_ssize_t i = 0;
  for (BlockObject *b = self->live; b != NULL && blocks != NULL; b = b->next)
    PyList_SET_ITEM(blocks, i++, Py_NewRef((PyObject *)b));
  statelock_drop(self->lock);
  if (blocks != NULL) PyList_Reverse(blocks); /* oldest first */
  return blocks;
}

static PyObject *allocator_get_closed(PyObject *op, void *Py_UNUSED(closure)) {
  return PyBool_FromLong(((AllocatorObject *)op)->handle == NULL);
}

static PyObject *allocator_get_name(PyObject *op, void *Py_UNUSED(closure)) {
  PyObject *name = ((AllocatorObject *)op)->name;
  return Py_NewRef(name != NULL ? name : Py_None);
}

static PyObject *allocator_get_foreign(PyObject *op, void *Py_UNUSED(closure)) {
  AllocatorObject *self = (AllocatorObject *)op;
  uint64_t state = atomic_load(&self->foreign.state);
  return Py_BuildValue("(KK)", (unsigned long long)(state & FOREIGN_COUNT_MASK),
                       (unsigned long long)atomic_load(&self->foreign.bytes));
}

static PyObject *allocator_new(PyTypeObject *type, PyObject *args, PyObject *kwargs) {
  (void)args, (void)kwargs; /* the subclass's __init__ takes them */
  AllocatorObject *self = (AllocatorObject *)type->tp_alloc(type, 0);
  if (self == NULL) return NULL;
  self->lock = (StateLock *)PyObject_CallNoArgs((PyObject *)&StateLock_Type);
  if (self->lock == NULL) {
    Py_DECREF(self);
    return NULL;
  }
  atomic_init(&self->foreign.state, 0);
  atomic_init(&self->foreign.bytes, 0);
  return (PyObject *)self;
}

static int allocator_traverse(PyObject *op, visitproc visit, void *arg) {
  for (BlockObject *b = ((AllocatorObject *)op)->live; b != NULL; b = b->next) Py_VISIT(b);
  return 0;
}

/* Drops the live list's references (to break a garbage cycle). */
static int allocator_clear(PyObject *op) {
  AllocatorObject *self = (AllocatorObject *)op;
  BlockObject *chain = self->live;
  self->live = NULL;
  self->live_count = 0;
  drop_chain(chain);
  return 0;
}

static void allocator_dealloc(PyObject *op) {
  AllocatorObject *self = (AllocatorObject *)op;
  PyObject_GC_UnTrack(op);
  allocator_clear(op);
  Py_CLEAR(self->lock);
  Py_CLEAR(self->name);
  Py_TYPE(op)->tp_free(op);
}

static PyMemberDef allocator_members[] = {
  {"_lock", T_OBJECT, offsetof(AllocatorObject, lock), READONLY, "the StateLock guarding the state"},
  {"_live_count", T_PYSSIZET, offsetof(AllocatorObject, live_count), READONLY, "how many Blocks are alive"},
  {"_caps", T_UINT, offsetof(AllocatorObject, caps), READONLY, "af_caps() of the allocator"},
  {"_creator", T_ULONG, offsetof(AllocatorObject, creator), READONLY, "ident of the thread that created it"},
  {"generation", T_ULONGLONG, offsetof(AllocatorObject, generation), READONLY,
   "How many times reset() succeeded; Blocks from an older generation are stale."},
  {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef allocator_getset[] = {
  {"closed", allocator_get_closed, NULL, "True after close().", NULL},
  {"name", allocator_get_name, NULL, "The allocator's name, e.g. \"slab\" or \"mimalloc-heap\".", NULL},
  {"_foreign", allocator_get_foreign, NULL, "(blocks, bytes) held by foreign owners (NumPy arrays)", NULL},
  {NULL, NULL, NULL, NULL, NULL},
};

#define FASTCALL_KW(f) (PyCFunction)(void (*)(void))(f), METH_FASTCALL | METH_KEYWORDS
#define FASTCALL(f)    (PyCFunction)(void (*)(void))(f), METH_FASTCALL

static PyMethodDef allocator_methods[] = {
  {"alloc", FASTCALL_KW(allocator_alloc),
   "alloc($self, /, size, align=16)\n--\n\n"
   "A new Block of ``size`` bytes aligned to ``align`` (a power of two <= 4096); contents undefined.\n\n"
   "Raises InvalidSizeError, InvalidAlignmentError, OutOfMemoryError (ByteLimitError when the\n"
   "allocator's byte_limit is reached), ThreadAffinityError, ClosedAllocatorError."},
  {"calloc", FASTCALL_KW(allocator_calloc),
   "calloc($self, /, size, align=16)\n--\n\nLike alloc(), but the memory is zeroed."},
  {"realloc", FASTCALL(allocator_realloc),
   "realloc($self, block, new_size, /)\n--\n\n"
   "Resize: a new Block with the first min(old, new) bytes of content (same align).\n\n"
   "The old Block dies (StaleBlockError on use) whether or not the memory moved. On failure\n"
   "(e.g. ByteLimitError) the old Block is untouched and still alive."},
  {"free", allocator_free, METH_O,
   "free($self, block, /)\n--\n\n"
   "Give a block's memory back; the Block dies (any later use raises StaleBlockError).\n\n"
   "Raises DoubleFreeError, ForeignBlockError, StaleBlockError, ViewsOutstandingError (views\n"
   "still point into the memory: release them first), ClosedAllocatorError, TypeError."},
  {"alloc_many", FASTCALL_KW(safe_alloc_many),
   "alloc_many($self, /, n, size, align=16)\n--\n\n"
   "``n`` blocks of one size in one C call, all or nothing: on any failure nothing is\n"
   "allocated and the precise error is raised (as for alloc())."},
  {"free_many", safe_free_many, METH_O,
   "free_many($self, blocks, /)\n--\n\n"
   "Free many blocks (any iterable) in one C call. Every block is checked first (none may\n"
   "have views or be listed twice); if any check fails nothing is freed. Should the C\n"
   "allocator refuse one, the blocks before it are freed and the rest stay alive."},
  {"usable_size", allocator_usable_size, METH_O,
   "usable_size($self, block, /)\n--\n\nBytes the allocator actually reserved for ``block`` (>= block.size)."},
  {"reset", allocator_reset, METH_NOARGS,
   "reset($self, /)\n--\n\n"
   "Release every live block at once (only if ``Capability.RESET in capabilities``).\n\n"
   "Every Block allocated before becomes stale. Raises UnsupportedOperationError for\n"
   "allocators without reset, ViewsOutstandingError (nothing changed) while views or NumPy\n"
   "arrays use the memory, ThreadAffinityError from a thread other than a thread-bound\n"
   "allocator's creator."},
  {"trim", allocator_trim, METH_NOARGS,
   "trim($self, /)\n--\n\n"
   "Return cached or empty memory to the OS where the allocator can (a no-op otherwise).\n"
   "Refused (ViewsOutstandingError) while NumPy arrays use the allocator's memory."},
  {"close", allocator_close, METH_NOARGS,
   "close($self, /)\n--\n\n"
   "Free every live block and destroy the C allocator. Idempotent.\n\n"
   "Refuses with ViewsOutstandingError (and changes nothing) while memoryviews or arrays\n"
   "point into any live block. Afterwards every method raises ClosedAllocatorError and\n"
   "every Block is stale."},
  {"blocks", allocator_blocks, METH_NOARGS,
   "blocks($self, /)\n--\n\nA snapshot of the live Blocks (including ones the caller dropped without freeing)."},
  {"_attach", allocator_attach, METH_O, "_attach(handle_address): once"},
  {"_free_as", FASTCALL(allocator_free_as), "_free_as(block, name): free() named as the user called it"},
  {"_require_open", allocator_require_open, METH_O,
   "_require_open(op) -> handle address; ClosedAllocatorError naming op when closed"},
  {NULL, NULL, 0, NULL},
};

PyTypeObject AllocatorBase_Type = {
  PyVarObject_HEAD_INIT(NULL, 0).tp_name = "allocffi._safe.AllocatorBase",
  .tp_basicsize = sizeof(AllocatorObject),
  .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
  .tp_doc = "The safe layer of one allocffi allocator: its state and every operation, checked in C.",
  .tp_new = allocator_new,
  .tp_dealloc = allocator_dealloc,
  .tp_finalize = allocator_finalize,
  .tp_traverse = allocator_traverse,
  .tp_clear = allocator_clear,
  .tp_members = allocator_members,
  .tp_getset = allocator_getset,
  .tp_methods = allocator_methods,
};
