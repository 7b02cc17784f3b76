/* ----------------------------------------------------------------------------
 * blockbuffer.h: what the two halves of allocffi._blockbuffer share.
 *
 * blockbuffer.c defines BlockBase (the C base type of allocffi.Block);
 * allocstate.c defines AllocatorBase (the C base type of allocffi.Allocator),
 * whose fast paths create and retire Blocks. Both are compiled into the one
 * extension module, so the struct is shared here, not through a capsule.
 * ------------------------------------------------------------------------- */
#ifndef ALLOCFFI_BLOCKBUFFER_H
#define ALLOCFFI_BLOCKBUFFER_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>

/* The fast paths rely on the GIL making a C function that runs no Python code
   atomic with respect to other threads. */
#ifdef Py_GIL_DISABLED
#error "allocffi._blockbuffer needs the GIL (see allocstate.c)"
#endif

/* Lifecycle states; anything but ALIVE means the memory is gone. */
enum {
  BLOCK_ALIVE = 0,
  BLOCK_FREED = 1,  /* free() */
  BLOCK_RESET = 2,  /* the allocator was reset */
  BLOCK_CLOSED = 3, /* the allocator was closed */
  BLOCK_MOVED = 4,  /* realloc() returned a new Block for this memory */
  BLOCK_STATE_COUNT
};

typedef struct {
  PyObject_HEAD
  uintptr_t address;          /* start of the memory; never 0 */
  Py_ssize_t size;            /* bytes a view spans; >= 0 */
  Py_ssize_t align;           /* the alignment the block was allocated with */
  unsigned long long generation; /* the allocator's reset count at allocation */
  Py_ssize_t exports;         /* live Py_buffer exports; >= 0 */
  int state;                  /* BLOCK_*; exports == 0 unless ALIVE */
  PyObject *owner;            /* the allocator that handed the memory out */
} BlockBase;

/* The registered Block subclass (NULL until allocffi.allocator registers it). */
extern PyTypeObject *_allocffi_block_type;

/* A new Block of the registered type, not yet filled in (address 0, owner
   NULL): the caller fills it before anyone else can see it. May run the
   garbage collector, hence arbitrary Python code. */
BlockBase *_allocffi_block_blank(void);

/* Raise allocffi.errors.ViewsOutstandingError for `exports` live views. */
void _allocffi_raise_views(Py_ssize_t exports);

/* Adds StateLock and AllocatorBase (allocstate.c) to the module. */
int _allocffi_allocstate_init(PyObject *module);

#endif
