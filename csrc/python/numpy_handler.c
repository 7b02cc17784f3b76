/* ----------------------------------------------------------------------------
 * numpy_handler.c: the NEP 49 data handler of allocffi.numpy: NumPy arrays
 * whose data comes from any allocffi allocator.
 *
 * NumPy (>= 1.22) takes the data of every new array from the handler in the
 * "mem_handler" capsule of the current context. Ours calls the allocator's
 * vtable directly: the handle is the af_locked_new wrapper, so the handler is
 * thread-safe whatever the allocator, runs no Python code and makes no
 * assumption about the GIL (NumPy may call it without, and free-threaded
 * builds have none).
 *
 * Why the NEP 49 structs are declared here and not taken from NumPy's
 * headers: allocffi must build without NumPy (it is an optional extra), and
 * version 1 of the struct is frozen by NEP 49 (fields may only be appended
 * after a version bump, which NumPy reads from `version`). The functions
 * that install a handler are reached through NumPy's C-API table at run
 * time, by their documented slots (see numpy_set_handler below).
 *
 * Invariants:
 * - Each block carries a header just before the data: NumPy's realloc gets
 *   no old size and its free gets only a guess for shapes containing a 0,
 *   so the size and the header room (= the alignment, >= 16) are kept here.
 *   The allocator sees one block of room + size bytes aligned to `align`.
 * - Every live block counts in the owner's ForeignOwners (allocator.c), so
 *   close/reset/trim refuse while any is live. A block counts from before
 *   its allocation starts until after its free returns, so close can never
 *   destroy the allocator under a call in flight.
 * - The capsule holds a reference to the allocator object, and NumPy holds
 *   the capsule in every array it allocated: the allocator outlives them.
 * ------------------------------------------------------------------------- */
#include "safe.h"

#include <sched.h>
#include <string.h>

/* NEP 49, version 1 (numpy/ndarraytypes.h: PyDataMemAllocator, PyDataMem_Handler). */
typedef struct {
  void *ctx;
  void *(*malloc)(void *ctx, size_t size);
  void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
  void *(*realloc)(void *ctx, void *ptr, size_t new_size);
  void (*free)(void *ctx, void *ptr, size_t size);
} nep49_allocator;

typedef struct {
  char name[127];
  uint8_t version;
  nep49_allocator allocator;
} nep49_handler;

#define NEP49_CAPSULE_NAME "mem_handler"
#define NEP49_VERSION      1
/* Slots of NumPy's C-API table (numpy/__multiarray_api.h), stable since 1.22. */
#define NUMPY_API_FEATURE_VERSION 211 /* unsigned PyArray_GetNDArrayCFeatureVersion(void) */
#define NUMPY_API_SET_HANDLER     304 /* PyObject *PyDataMem_SetHandler(PyObject *) */
#define NUMPY_API_GET_HANDLER     305 /* PyObject *PyDataMem_GetHandler(void) */
#define NUMPY_FEATURE_1_22        0xf

typedef struct {
  nep49_handler handler;  /* first: what the capsule points to */
  AllocatorObject *owner; /* a reference, dropped with the capsule */
  size_t align;           /* power of two in [16, AF_MAX_ALIGN]: also the header room */
} handler_ctx;

/* Just before the data of every block. */
typedef struct {
  size_t size;  /* bytes NumPy asked for */
  size_t magic; /* HEADER_MAGIC ^ size: a pointer without it was not ours */
} block_header;

#define HEADER_MAGIC ((size_t)0x616c6c6f63666669ull) /* "allocffi" */

static block_header *header_of(void *data) { return (block_header *)data - 1; }

/* ----------------------------------------------------------------------------
 * The foreign-owner count (no GIL: atomics only)
 * ------------------------------------------------------------------------- */

/* Count one more live block, unless the allocator is closed. While close,
   reset or trim run (EXCLUSIVE, with the GIL held on another thread, briefly)
   it waits. */
static bool foreign_enter(ForeignOwners *f) {
  uint64_t state = atomic_load(&f->state);
  for (;;) {
    if (state & FOREIGN_CLOSED) return false;
    if (state & FOREIGN_EXCLUSIVE) {
      sched_yield();
      state = atomic_load(&f->state);
      continue;
    }
    if (atomic_compare_exchange_weak(&f->state, &state, state + 1)) return true;
  }
}

static void foreign_leave(ForeignOwners *f) { atomic_fetch_sub(&f->state, 1); }

/* ----------------------------------------------------------------------------
 * The handler's functions
 * ------------------------------------------------------------------------- */

static void *handler_alloc(handler_ctx *c, size_t size, bool zeroed) {
  size_t room = c->align;
  if (size > (size_t)AF_MAX_ALLOC_SIZE - room) return NULL; /* NumPy raises MemoryError */
  ForeignOwners *f = &c->owner->foreign;
  if (!foreign_enter(f)) return NULL;
  af_allocator *a = c->owner->handle; /* stable while counted: close refuses */
  char *base = zeroed ? a->vt->calloc(a, room + size, room) : a->vt->alloc(a, room + size, room);
  if (base == NULL) {
    foreign_leave(f);
    return NULL;
  }
  void *data = base + room;
  *header_of(data) = (block_header){.size = size, .magic = HEADER_MAGIC ^ size};
  atomic_fetch_add(&f->bytes, size);
  return data;
}

static void *handler_malloc(void *ctx, size_t size) { return handler_alloc(ctx, size, false); }

static void *handler_calloc(void *ctx, size_t nelem, size_t elsize) {
  size_t size;
  if (__builtin_mul_overflow(nelem, elsize, &size)) return NULL;
  return handler_alloc(ctx, size, true);
}

/* `size` is NumPy's guess; the header knows. */
static void handler_free(void *ctx, void *data, size_t size) {
  (void)size;
  if (data == NULL) return;
  handler_ctx *c = ctx;
  ForeignOwners *f = &c->owner->foreign;
  const block_header *header = header_of(data);
  size_t room = c->align, kept = header->size;
  if (header->magic != (HEADER_MAGIC ^ kept)) return; /* not ours: leaking beats corrupting */
  af_allocator *a = c->owner->handle;
  (void)a->vt->free(a, (char *)data - room, room + kept, room);
  atomic_fetch_sub(&f->bytes, kept);
  foreign_leave(f);
}

static void *handler_realloc(void *ctx, void *data, size_t new_size) {
  if (data == NULL) return handler_malloc(ctx, new_size);
  handler_ctx *c = ctx;
  const block_header *header = header_of(data);
  size_t room = c->align, old_size = header->size;
  if (header->magic != (HEADER_MAGIC ^ old_size) || new_size > (size_t)AF_MAX_ALLOC_SIZE - room) return NULL;
  af_allocator *a = c->owner->handle; /* counted already: the block is live */
  char *base = a->vt->realloc(a, (char *)data - room, room + old_size, room + new_size, room);
  if (base == NULL) return NULL; /* the old block is untouched, as realloc promises */
  void *moved = base + room;
  *header_of(moved) = (block_header){.size = new_size, .magic = HEADER_MAGIC ^ new_size};
  if (new_size >= old_size)
    atomic_fetch_add(&c->owner->foreign.bytes, new_size - old_size);
  else
    atomic_fetch_sub(&c->owner->foreign.bytes, old_size - new_size);
  return moved;
}

/* ----------------------------------------------------------------------------
 * The capsule
 * ------------------------------------------------------------------------- */

static void capsule_destroy(PyObject *capsule) {
  handler_ctx *c = PyCapsule_GetPointer(capsule, NEP49_CAPSULE_NAME);
  if (c == NULL) {
    PyErr_Clear();
    return;
  }
  Py_DECREF(c->owner);
  PyMem_RawFree(c);
}

/* numpy_handler(allocator, align, name) -> the "mem_handler" capsule. The
   caller (allocffi/numpy.py) checked the allocator (open, this thread) and
   the alignment. */
static PyObject *numpy_handler(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *owner;
  Py_ssize_t align;
  const char *name;
  if (!PyArg_ParseTuple(args, "O!ns:numpy_handler", &AllocatorBase_Type, &owner, &align, &name)) return NULL;
  if (align < 16 || align > AF_MAX_ALIGN || (align & (align - 1)) != 0) {
    PyErr_SetString(PyExc_ValueError, "numpy_handler: align must be a power of two in [16, 4096]");
    return NULL;
  }
  if (((AllocatorObject *)owner)->handle == NULL)
    return safe_refuse(REASON_CLOSED, (AllocatorObject *)owner, "numpy.use", NULL);
  handler_ctx *c = PyMem_RawCalloc(1, sizeof *c);
  if (c == NULL) return PyErr_NoMemory();
  snprintf(c->handler.name, sizeof c->handler.name, "%s", name);
  c->handler.version = NEP49_VERSION;
  c->handler.allocator = (nep49_allocator){
    .ctx = c,
    .malloc = handler_malloc,
    .calloc = handler_calloc,
    .realloc = handler_realloc,
    .free = handler_free,
  };
  c->owner = (AllocatorObject *)Py_NewRef(owner);
  c->align = (size_t)align;
  PyObject *capsule = PyCapsule_New(&c->handler, NEP49_CAPSULE_NAME, capsule_destroy);
  if (capsule == NULL) {
    Py_DECREF(owner);
    PyMem_RawFree(c);
  }
  return capsule;
}

/* The owning allocator of a capsule this module made, or None. */
static PyObject *numpy_handler_owner(PyObject *module, PyObject *capsule) {
  (void)module;
  if (!PyCapsule_IsValid(capsule, NEP49_CAPSULE_NAME) || PyCapsule_GetDestructor(capsule) != capsule_destroy)
    Py_RETURN_NONE;
  handler_ctx *c = PyCapsule_GetPointer(capsule, NEP49_CAPSULE_NAME);
  return Py_NewRef((PyObject *)c->owner);
}

/* ----------------------------------------------------------------------------
 * Installing: NumPy's PyDataMem_SetHandler / GetHandler through its C-API table
 * ------------------------------------------------------------------------- */

typedef PyObject *(*set_handler_fn)(PyObject *);
typedef PyObject *(*get_handler_fn)(void);
typedef unsigned (*feature_version_fn)(void);

/* The C-API table in `api` (numpy's _ARRAY_API capsule), or NULL with an
   exception when it is not one or too old for NEP 49. */
static void **numpy_api(PyObject *api) {
  void **table = PyCapsule_GetPointer(api, NULL);
  if (table == NULL) return NULL;
  if (((feature_version_fn)table[NUMPY_API_FEATURE_VERSION])() < NUMPY_FEATURE_1_22) {
    PyErr_SetString(PyExc_ImportError, "allocffi.numpy needs NumPy 1.22 or later (NEP 49 data handlers)");
    return NULL;
  }
  return table;
}

/* numpy_set_handler(api, capsule_or_None) -> the previous handler */
static PyObject *numpy_set_handler(PyObject *module, PyObject *args) {
  (void)module;
  PyObject *api, *handler;
  if (!PyArg_ParseTuple(args, "OO:numpy_set_handler", &api, &handler)) return NULL;
  void **table = numpy_api(api);
  if (table == NULL) return NULL;
  if (handler != Py_None && !PyCapsule_IsValid(handler, NEP49_CAPSULE_NAME)) {
    PyErr_SetString(PyExc_TypeError, "numpy_set_handler: not a \"mem_handler\" capsule");
    return NULL;
  }
  return ((set_handler_fn)table[NUMPY_API_SET_HANDLER])(handler == Py_None ? NULL : handler);
}

/* numpy_get_handler(api) -> the current handler capsule */
static PyObject *numpy_get_handler(PyObject *module, PyObject *api) {
  (void)module;
  void **table = numpy_api(api);
  if (table == NULL) return NULL;
  return ((get_handler_fn)table[NUMPY_API_GET_HANDLER])();
}

PyMethodDef safe_numpy_functions[] = {
  {"numpy_handler", numpy_handler, METH_VARARGS,
   "numpy_handler(allocator, align, name) -> a NEP 49 \"mem_handler\" capsule over the allocator"},
  {"numpy_handler_owner", numpy_handler_owner, METH_O,
   "numpy_handler_owner(capsule) -> the allocator of one of our capsules, else None"},
  {"numpy_set_handler", numpy_set_handler, METH_VARARGS,
   "numpy_set_handler(api, capsule or None) -> previous handler (PyDataMem_SetHandler)"},
  {"numpy_get_handler", numpy_get_handler, METH_O, "numpy_get_handler(api) -> current handler"},
  {NULL, NULL, 0, NULL},
};
