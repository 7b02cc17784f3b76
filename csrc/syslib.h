/* ----------------------------------------------------------------------------
 * syslib.h: the system allocator libraries, loaded at run time.
 *
 * Each library is dlopen'ed once per process (RTLD_NOW | RTLD_LOCAL, so its
 * malloc/free never replace the process's own), its entry points resolved
 * into a function table, and the handle kept for the life of the process:
 * a system allocator library is never dlclose'd, since blocks and threads
 * may still refer to it. A failed load is remembered with its reason and
 * reported again on every later request.
 *
 * Names are looked up in each library's own handle, so jemalloc's malloc is
 * jemalloc's, never the process's. Which names serve a block with alignment
 * <= 16 is decided by measurement, in one table (_af_entry_points). "libc"
 * is glibc's own malloc, looked up in libc.so.6 itself, whatever a preload
 * or a sanitizer put in front of it.
 * ------------------------------------------------------------------------- */
#ifndef AF_SYSLIB_H
#define AF_SYSLIB_H

#include "af_internal.h"

/* Alignment the plain malloc of every library guarantees for requests of at
   least AF_SYSLIB_SMALL_FLOOR bytes. mimalloc, jemalloc and tcmalloc give
   only 8-byte alignment to blocks of 8 bytes or less, so callers that need
   16 round such requests up to the floor (glibc aligns everything to 16). */
#define AF_SYSLIB_MIN_ALIGN 16
#define AF_SYSLIB_SMALL_FLOOR 16

/* glibc (libc.so.6) */
typedef struct af_libc_api {
  void *(*malloc)(size_t size);
  void *(*calloc)(size_t count, size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void (*free)(void *ptr);
  void *(*aligned_alloc)(size_t align, size_t size);
  size_t (*malloc_usable_size)(void *ptr);
} af_libc_api;

/* mimalloc (libmimalloc.so.2). A heap is an opaque mi_heap_t. */
typedef struct af_mi_heap af_mi_heap;
typedef struct af_mimalloc_api {
  void *(*malloc)(size_t size);
  void *(*zalloc)(size_t size);
  void *(*malloc_aligned)(size_t size, size_t align);
  void *(*zalloc_aligned)(size_t size, size_t align);
  void *(*realloc)(void *ptr, size_t size);
  void *(*realloc_aligned)(void *ptr, size_t size, size_t align);
  void (*free)(void *ptr);
  size_t (*usable_size)(const void *ptr);
  af_mi_heap *(*heap_new)(void);
  void (*heap_destroy)(af_mi_heap *heap);
  void *(*heap_malloc)(af_mi_heap *heap, size_t size);
  void *(*heap_zalloc)(af_mi_heap *heap, size_t size);
  void *(*heap_malloc_aligned)(af_mi_heap *heap, size_t size, size_t align);
  void *(*heap_zalloc_aligned)(af_mi_heap *heap, size_t size, size_t align);
  void *(*heap_realloc)(af_mi_heap *heap, void *ptr, size_t size);
  void *(*heap_realloc_aligned)(af_mi_heap *heap, void *ptr, size_t size, size_t align);
} af_mimalloc_api;

/* jemalloc (libjemalloc.so.2): the standard names for alignment <= 16 (2.4x
   faster than mallocx/dallocx in jemalloc 5.3, see _af_entry_points), the
   non-standard API for larger alignments and for the arenas. */
typedef struct af_jemalloc_api {
  void *(*malloc)(size_t size);
  void *(*calloc)(size_t count, size_t size);
  void *(*realloc)(void *ptr, size_t size);      /* never size 0: that would free ptr */
  void (*free)(void *ptr);                       /* any jemalloc block, mallocx's too */
  void *(*mallocx)(size_t size, int flags);      /* size 0 is undefined: callers pass >= 1 */
  void *(*rallocx)(void *ptr, size_t size, int flags);
  void (*dallocx)(void *ptr, int flags);         /* unsized: measured as fast as sdallocx */
  size_t (*sallocx)(const void *ptr, int flags);
  int (*mallctl)(const char *name, void *oldp, size_t *oldlenp, void *newp, size_t newlen);
} af_jemalloc_api;

/* The mallocx flag encoding of jemalloc 5 (include/jemalloc/jemalloc_macros.h). */
#define AF_MALLOCX_LG_ALIGN(lg) ((int)(lg))              /* alignment 1 << lg */
#define AF_MALLOCX_ZERO ((int)0x40)
#define AF_MALLOCX_TCACHE(tc) ((int)(((unsigned)(tc) + 2) << 8)) /* an explicit cache from tcache.create */
#define AF_MALLOCX_ARENA(i) ((int)(((unsigned)(i) + 1) << 20))

/* tcmalloc (libtcmalloc_minimal.so.4, gperftools): the tc_* names only. */
typedef struct af_tcmalloc_api {
  void *(*malloc)(size_t size);
  void *(*calloc)(size_t count, size_t size);
  void *(*realloc)(void *ptr, size_t size);
  void *(*memalign)(size_t align, size_t size);
  void (*free)(void *ptr);                       /* tc_free_sized is no faster, and wrong after an in-place shrink */
  size_t (*malloc_size)(void *ptr);
} af_tcmalloc_api;

/* ----------------------------------------------------------------------------
 * The entry points for alignment <= 16, one row per library (syslib.c holds
 * the table and the measurement behind it). Every chosen pair has the shape
 * void *alloc(size_t) / void free(void *).
 * ------------------------------------------------------------------------- */
typedef struct af_entry_choice {
  const char *library;        /* "libc", "mimalloc", "jemalloc", "tcmalloc" */
  const char *alloc;          /* symbol name in the library */
  const char *free;
} af_entry_choice;
extern const af_entry_choice _af_entry_points[];
extern const size_t _af_entry_point_count;
/* The row of `library`, or NULL. */
const af_entry_choice *_af_entry_choice(const char *library);

/* A library's chosen entry points as bound, for calling it directly. */
typedef struct af_direct_entry {
  void *(*malloc)(size_t size);
  void (*free)(void *ptr);
  void *handle;               /* the library's dlopen handle (for dlsym of other names) */
  const af_entry_choice *choice;
} af_direct_entry;
/* Loads `library` if needed and fills *out; else a status with the reason in *err. */
int _af_syslib_direct(const char *library, af_direct_entry *out, af_error *err);

/* Each returns the library's function table, loading the library on first
   use (thread-safe), or NULL with the reason in *err (may be NULL): code
   AF_ERR_UNAVAILABLE and a message naming the Debian package to install, or
   what else to do. */
const af_libc_api *_af_syslib_libc(af_error *err);
const af_mimalloc_api *_af_syslib_mimalloc(af_error *err);
const af_jemalloc_api *_af_syslib_jemalloc(af_error *err);
const af_tcmalloc_api *_af_syslib_tcmalloc(af_error *err);

/* The resettable heaps (system_heaps.c), created through af_system_new. */
af_allocator *_af_mimalloc_heap_new(af_error *err);
af_allocator *_af_jemalloc_arena_new(af_error *err);
/* mimalloc heaps abandoned because af_destroy ran on a thread other than the
   one that created them (see system_heaps.c); process-wide, never decreases. */
uint64_t _af_mimalloc_heaps_leaked(void);

#endif /* AF_SYSLIB_H */
