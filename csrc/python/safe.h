/* ----------------------------------------------------------------------------
 * safe.h: what the files of allocffi._safe, the safe layer's one CPython
 * extension module, share. Each file owns one concept:
 *
 *   module.c     the module: its functions, types and constants
 *   entry.c      the single binding of the cffi module's af_* entry points
 *   refuse.c     reason codes -> exceptions, through errors.py's table
 *   statelock.c  StateLock, the lock of one allocator's Python-side state
 *   block.c      BlockBase, the Block type and its buffer exporter
 *   allocator.c  AllocatorBase: one method per operation, every check in C
 *   batch.c      alloc_many and free_many
 *   rawpath.c    the int raw path of allocffi.unchecked (no checks at all)
 *   numpy_handler.c  the NEP 49 data handler of allocffi.numpy
 *
 * Invariants shared by all of them:
 * - Every change of an allocator's state (its live table, generation,
 *   handle) and every C allocator call that must agree with it happens while
 *   its StateLock is held. While the lock is held no Python code runs:
 *   objects that may start the garbage collector are made before taking it,
 *   and exceptions (which call into errors.py) are built after releasing it.
 * - A refusal is decided in one place per operation, as one reason code
 *   (REASON_* below, or an af_status), before anything changes.
 * ------------------------------------------------------------------------- */
#ifndef ALLOCFFI_SAFE_H
#define ALLOCFFI_SAFE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../include/allocffi.h"

/* The checks rely on the GIL making a C function that runs no Python code
   atomic with respect to other Python threads. A free-threaded build would
   need a per-allocator mutex instead of the StateLock's try-then-wait. */
#ifdef Py_GIL_DISABLED
#error "allocffi._safe needs the GIL (see safe.h)"
#endif

/* ----------------------------------------------------------------------------
 * Reason codes: why the safe layer refused a call. Disjoint from af_status
 * (0..99), so one int names any refusal. errors.py holds the table that maps
 * each to an exception class and message; tests/test_errors.py checks that
 * the two lists agree.
 * ------------------------------------------------------------------------- */
enum {
  REASON_NOT_AN_INT = 100, /* an argument that must be an int is not */
  REASON_SIZE_NEGATIVE,    /* a size (or n) below 0 */
  REASON_SIZE_TOO_LARGE,   /* a size above AF_MAX_ALLOC_SIZE */
  REASON_BAD_ALIGN,        /* not a power of two in [1, AF_MAX_ALIGN] */
  REASON_NOT_A_BLOCK,      /* a Block was expected */
  REASON_FOREIGN,          /* a Block of another allocator */
  REASON_DOUBLE_FREE,      /* free of a freed Block */
  REASON_LISTED_TWICE,     /* free_many with a Block listed twice */
  REASON_CLOSED,           /* the allocator is closed */
  REASON_VIEWS,            /* memoryviews/arrays still point into the memory */
  REASON_FOREIGN_OWNERS,   /* NumPy arrays still hold memory of the allocator */
  REASON_WRONG_THREAD,     /* a thread-bound allocator used from another thread */
  REASON_NO_RESET,         /* reset() of an allocator without AF_CAP_RESET */
  REASON_REENTERED,        /* a call re-entered the allocator on its own thread */
  REASON_STALE = 120       /* + the Block's state (BLOCK_FREED ... BLOCK_MOVED) */
};

/* ----------------------------------------------------------------------------
 * Blocks (block.c)
 * ------------------------------------------------------------------------- */

/* Lifecycle states; anything but ALIVE means the memory is gone. */
enum {
  BLOCK_ALIVE = 0,
  BLOCK_FREED = 1,  /* free() */
  BLOCK_RESET = 2,  /* the allocator was reset */
  BLOCK_CLOSED = 3, /* the allocator was closed */
  BLOCK_MOVED = 4,  /* realloc() returned a new Block for this memory */
  BLOCK_STATE_COUNT
};

typedef struct BlockObject {
  PyObject_HEAD
  uintptr_t address;             /* start of the memory; never 0 once handed out */
  Py_ssize_t size;               /* bytes a view spans; >= 0 */
  Py_ssize_t align;              /* the alignment the block was allocated with */
  unsigned long long generation; /* the allocator's reset count at allocation */
  Py_ssize_t exports;            /* live Py_buffer exports; >= 0 */
  int state;                     /* BLOCK_*; exports == 0 unless ALIVE */
  PyObject *owner;               /* the allocator that handed the memory out */
  struct BlockObject *prev;      /* the owner's live list while ALIVE (NULL otherwise) */
  struct BlockObject *next;
} BlockObject;

extern PyTypeObject BlockBase_Type;
/* Is `op` a Block? The registered subclass is the only one, so one pointer
   comparison answers for every Block the safe layer made. */
#define SAFE_IS_BLOCK(op) (Py_TYPE(op) == safe_block_type || PyObject_TypeCheck((op), &BlockBase_Type))
/* The registered Block subclass (NULL until allocffi.interface registers it). */
extern PyTypeObject *safe_block_type;
/* A new Block of the registered type, not yet filled in (address 0, owner
   NULL). May run the garbage collector, hence arbitrary Python code. */
BlockObject *safe_block_blank(void);
/* A blank Block with the collector paused: runs no Python code (see batch.c). */
PyObject *safe_blank_blocks(Py_ssize_t n);

/* ----------------------------------------------------------------------------
 * The state lock (statelock.c)
 * ------------------------------------------------------------------------- */

typedef struct {
  PyObject_HEAD
  PyThread_type_lock lock; /* never NULL; taken by holders that may release the GIL */
  bool held;               /* true exactly while some thread owns the state (GIL held to change it) */
  bool os_locked;          /* the current holder also holds `lock` */
  unsigned long owner;     /* the holding thread's ident while held; written only by the holder */
} StateLock;

extern PyTypeObject StateLock_Type;
/* Take the lock, waiting with the GIL released. REASON_REENTERED when this
   thread already holds it (a __del__ or signal handler re-entered an
   operation), -1 with an exception when a signal handler raised, else 0.
   The caller must not release the GIL before statelock_drop() (see
   statelock.c); statelock_try() is the same without waiting. */
int statelock_take(StateLock *l);
void statelock_drop(StateLock *l);
bool statelock_try(StateLock *l);

/* ----------------------------------------------------------------------------
 * Allocators (allocator.c, batch.c)
 * ------------------------------------------------------------------------- */

/* Memory held by foreign owners (NumPy arrays through the data handler),
   which may allocate and free without the GIL. `state` packs the count of
   live foreign blocks with two flags; close/reset/trim move it from 0 to
   EXCLUSIVE (refusing otherwise) so that no foreign allocation can start in
   the middle of them, and close leaves CLOSED behind for good. */
typedef struct {
  _Atomic uint64_t state; /* live count | FOREIGN_EXCLUSIVE | FOREIGN_CLOSED */
  _Atomic uint64_t bytes; /* bytes the foreign owners asked for, live */
} ForeignOwners;

#define FOREIGN_CLOSED     (1ull << 63)
#define FOREIGN_EXCLUSIVE  (1ull << 62)
#define FOREIGN_COUNT_MASK (FOREIGN_EXCLUSIVE - 1)

typedef struct {
  PyObject_HEAD
  StateLock *lock;               /* guards the fields below; never NULL */
  af_allocator *handle;          /* the af_locked_new wrapper; NULL before _attach() and after close */
  bool attached;                 /* _attach() happened (it may happen once) */
  uint32_t caps;                 /* af_caps(handle) */
  unsigned long creator;         /* ident of the thread that attached the handle */
  unsigned long long generation; /* successful reset() count; ALIVE blocks all carry it */
  BlockObject *live;             /* list of exactly the ALIVE Blocks owned, each holding a reference */
  Py_ssize_t live_count;         /* length of that list */
  PyObject *name;                /* str: af_name(handle), for messages */
  ForeignOwners foreign;         /* NumPy's blocks */
} AllocatorObject;

extern PyTypeObject AllocatorBase_Type;

/* The reason close/reset/trim must refuse for (lock held), or 0: foreign
   owners first, then views when `check_views`. On 0 with `exclusive`, the
   foreign state is EXCLUSIVE until foreign_release(). *count and *bytes say
   how much is outstanding. */
int safe_release_check(AllocatorObject *self, bool check_views, Py_ssize_t *count, uint64_t *bytes);
void safe_foreign_release(AllocatorObject *self, bool closed);

/* The live list (lock held). Linking takes a reference to the Block;
   unlinking hands it to the caller, who drops it when no Python code can
   harm (the Block's deallocation may run weakref callbacks). */
void safe_live_link(AllocatorObject *self, BlockObject *b);
void safe_live_unlink(AllocatorObject *self, BlockObject *b);

/* Take the lock of an open allocator: 0, or a reason (REASON_CLOSED: the
   lock is dropped again) or -1 with an exception (lock not held). */
int safe_enter(AllocatorObject *self);

/* alloc_many / free_many (batch.c), methods of AllocatorBase. */
PyObject *safe_alloc_many(PyObject *op, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames);
PyObject *safe_free_many(PyObject *op, PyObject *arg);

/* ----------------------------------------------------------------------------
 * Arguments and refusals (refuse.c)
 * ------------------------------------------------------------------------- */

/* A vectorcall's arguments by position or keyword: `names` NULL-terminated,
   the first `required` of them required; found[i] NULL when absent. 0, or -1
   with a TypeError quoting `usage`. */
int safe_parse_args(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames, const char *const *names, int required,
                    PyObject **found, const char *usage);
/* Parse a size in [0, AF_MAX_ALLOC_SIZE] or an alignment; 0 or a reason.
   May run Python code (__index__): call before taking a lock. */
int safe_size_arg(PyObject *arg, long long *out);
int safe_align_arg(PyObject *arg, long long *out);

/* Raise the exception for `reason` (a REASON_* or af_status) and return
   NULL. `op` names the call the user made ("alloc(48, align=16)"), may be
   NULL; `subject` is what the reason is about (the Block, the size, the
   count of views), may be NULL. Runs Python code: no lock may be held. */
PyObject *safe_refuse(int reason, AllocatorObject *allocator, const char *op, PyObject *subject);
/* The same for a bad argument: the subject is (what, value). */
PyObject *safe_refuse_arg(int reason, AllocatorObject *allocator, const char *op, const char *what, PyObject *value);
/* The same with a C integer subject (sizes, counts). */
PyObject *safe_refuse_n(int reason, AllocatorObject *allocator, const char *op, long long subject);
/* The same for reasons about the outstanding views/arrays of a release. */
PyObject *safe_refuse_release(int reason, AllocatorObject *allocator, const char *op, Py_ssize_t count, uint64_t bytes);
/* errors.error_for, bound by module.c's bind(). */
extern PyObject *safe_error_for;

/* ----------------------------------------------------------------------------
 * The entry points of the cffi module (entry.c)
 * ------------------------------------------------------------------------- */

typedef struct {
  __typeof__(&af_alloc) alloc;
  __typeof__(&af_calloc) calloc;
  __typeof__(&af_free) free;
  __typeof__(&af_realloc) realloc;
  __typeof__(&af_usable_size) usable_size;
  __typeof__(&af_reset) reset;
  __typeof__(&af_trim) trim;
  __typeof__(&af_destroy) destroy;
  __typeof__(&af_last_error) last_error;
  __typeof__(&af_alloc_batch) alloc_batch;
  __typeof__(&af_free_batch) free_batch;
  __typeof__(&af_name) name;
  __typeof__(&af_caps) caps;
} EntryPoints;

/* All NULL until entry_bind() succeeded (once, at import of allocffi.interface). */
extern EntryPoints entry;
/* bind(addresses: dict[name, int]): every field above, by its af_* name. */
int entry_bind(PyObject *addresses);
/* The af_* names bind() needs, in table order (the module's ENTRY_POINT_NAMES): the one list of them. */
PyObject *entry_names(void);
bool entry_bound(void);

/* ----------------------------------------------------------------------------
 * Module parts
 * ------------------------------------------------------------------------- */
extern PyMethodDef safe_rawpath_functions[];
extern PyMethodDef safe_numpy_functions[];
extern Py_ssize_t safe_open_handles; /* allocator.c */

#endif
