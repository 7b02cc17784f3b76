/* ----------------------------------------------------------------------------
 * allocffi.h: the public C interface of allocffi.
 *
 * Every allocator, ours (bump, slab, large-region cache) and the system ones
 * loaded at run time (glibc, mimalloc, jemalloc, tcmalloc and the resettable
 * mimalloc heap / jemalloc arena), is an `af_allocator` driven through one
 * vtable, so C code such as the benchmark engine can run any of them with no
 * Python in the loop.
 *
 * The allocator API only: the benchmark engine, calibration, trace reading and
 * replay, which the harness uses, are declared in afbench.h.
 *
 * This file is also the cffi cdef: allocffi/_build.py drops every
 * preprocessor line except `#define NAME <integer>` and hands the rest to
 * ffi.cdef(). Keep it to declarations cffi can parse: no macros with
 * expressions, no inline functions, no conditional sections.
 * ------------------------------------------------------------------------- */
#ifndef ALLOCFFI_H
#define ALLOCFFI_H

#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------------------
 * Limits
 * ------------------------------------------------------------------------- */

/* Largest size any allocator accepts (1 TiB); larger requests fail with
   AF_ERR_SIZE before reaching an allocator. */
#define AF_MAX_ALLOC_SIZE 1099511627776
/* Largest alignment any allocator accepts: one page. */
#define AF_MAX_ALIGN 4096
/* Alignment used when the caller has no preference. */
#define AF_DEFAULT_ALIGN 16
#define AF_ERROR_MESSAGE_SIZE 256

/* ----------------------------------------------------------------------------
 * Status codes and errors
 * ------------------------------------------------------------------------- */

typedef enum af_status {
  AF_OK = 0,
  AF_ERR_NOMEM = 1,       /* the OS (or the system allocator) refused memory */
  AF_ERR_LIMIT = 2,       /* the allocator's configured byte limit is reached */
  AF_ERR_SIZE = 3,        /* size larger than AF_MAX_ALLOC_SIZE */
  AF_ERR_ALIGN = 4,       /* alignment not a power of two, or > AF_MAX_ALIGN */
  AF_ERR_UNSUPPORTED = 5, /* operation not offered by this allocator (see caps) */
  AF_ERR_NOT_OWNED = 6,   /* pointer was not handed out by this allocator */
  AF_ERR_UNAVAILABLE = 7, /* system library missing or cannot be loaded */
  AF_ERR_INVALID = 8,     /* bad option or argument */
  AF_ERR_THREAD = 9       /* called from a thread the allocator is bound away from */
} af_status;

/* Filled by constructors and af_bench_run on failure; message is one
   human-readable sentence (what went wrong and, where known, what to do). */
typedef struct af_error {
  int code;                                  /* an af_status */
  char message[AF_ERROR_MESSAGE_SIZE];
} af_error;

/* Text of a status code, e.g. "byte limit reached". Never NULL. */
const char *af_status_text(int status);

/* ----------------------------------------------------------------------------
 * Capabilities: what an allocator offers beyond alloc.
 * ------------------------------------------------------------------------- */

enum {
  AF_CAP_FREE = 1,          /* free() makes the block's memory reusable at once */
  AF_CAP_RESET = 2,         /* reset() releases every live block in one call */
  AF_CAP_TRIM = 4,          /* trim() returns cached/empty memory to the OS */
  AF_CAP_OWNS = 8,          /* owns() answers in O(1) without touching the memory */
  AF_CAP_THREAD_SAFE = 16,  /* several threads may call it at once */
  AF_CAP_THREAD_BOUND = 32, /* alloc/realloc/reset only on the creating thread */
  AF_CAP_SYSTEM = 64        /* a process-wide allocator from a shared library */
};

/* ----------------------------------------------------------------------------
 * Statistics. Every allocator fills the common part; the rest is zero where it
 * does not apply. Byte counts of live blocks count requested sizes.
 * ------------------------------------------------------------------------- */

typedef struct af_stats {
  /* common to all allocators */
  uint64_t allocs;            /* successful alloc/calloc calls */
  uint64_t frees;             /* successful free calls (bump: counted, reclaimed at reset) */
  uint64_t reallocs;          /* successful realloc calls */
  uint64_t failures;          /* calls that returned an error */
  uint64_t resets;            /* successful reset calls */
  uint64_t blocks_in_use;     /* live blocks */
  uint64_t bytes_in_use;      /* requested bytes of live blocks */
  uint64_t peak_bytes_in_use; /* high-water mark of bytes_in_use */
  uint64_t os_bytes;          /* bytes mapped from the OS and not yet returned (ours only) */
  /* bump arena */
  uint64_t chunks;            /* chunks currently held */
  uint64_t capacity_bytes;    /* total bytes of those chunks */
  /* slab allocator */
  uint64_t slabs;             /* slabs currently held, all classes */
  uint64_t oversize_allocs;   /* requests above the largest class, served by the large cache */
  uint64_t oversize_in_use;   /* live oversize blocks */
  /* large-region cache (the slab's oversize cache reports here too) */
  uint64_t os_maps;           /* mmap calls made */
  uint64_t os_unmaps;         /* munmap calls made */
  uint64_t cache_hits;        /* requests served by a cached region */
  uint64_t cache_misses;      /* requests that needed a fresh mapping */
  uint64_t cached_bytes;      /* bytes of free regions kept for reuse */
  uint64_t purged_bytes;      /* bytes released with madvise while cached (cumulative) */
} af_stats;

/* One slab size class. */
typedef struct af_class_stats {
  uint64_t class_size;        /* bytes handed out for every request of this class */
  uint64_t in_use;            /* live blocks */
  uint64_t free;              /* blocks carved or returned and ready for reuse */
  uint64_t hits;              /* allocations served from the free list */
  uint64_t misses;            /* allocations that had to carve a block or map a slab */
  uint64_t slabs;             /* slabs held by this class */
} af_class_stats;

/* ----------------------------------------------------------------------------
 * The allocator object: a vtable every allocator fills in the same way.
 *
 * Contract for every implementation:
 * - alloc returns memory aligned to `align` (a power of two <= AF_MAX_ALIGN)
 *   with at least `size` usable bytes, or NULL with self->last_error set.
 *   size 0 is valid and returns a unique pointer. Arguments are already
 *   validated by the af_* entry points; the engine calls the vtable directly
 *   with valid arguments only.
 * - free/realloc/usable_size receive the size and align the block was
 *   allocated with (sized deallocation). free returns AF_OK, or
 *   AF_ERR_NOT_OWNED when the allocator can tell the pointer is not its own
 *   (then nothing is changed).
 * - reset and trim return AF_ERR_UNSUPPORTED / do nothing unless caps says so.
 * - Nothing is thread-safe unless caps has AF_CAP_THREAD_SAFE; af_locked_new
 *   makes any allocator safe to share.
 * ------------------------------------------------------------------------- */

typedef struct af_allocator af_allocator;

typedef struct af_vtable {
  const char *name;
  uint32_t caps;
  void *(*alloc)(af_allocator *self, size_t size, size_t align);
  void *(*calloc)(af_allocator *self, size_t size, size_t align);
  int (*free)(af_allocator *self, void *ptr, size_t size, size_t align);
  void *(*realloc)(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align);
  size_t (*usable_size)(af_allocator *self, const void *ptr, size_t size, size_t align);
  int (*owns)(af_allocator *self, const void *ptr); /* 1 yes, 0 no, -1 cannot tell */
  int (*reset)(af_allocator *self);
  void (*trim)(af_allocator *self);
  void (*get_stats)(af_allocator *self, af_stats *out);
  void (*destroy)(af_allocator *self);
  /* Wrappers only (NULL for every allocator that wraps nothing): the wrapped
     allocator with the wrapper's lock taken, and the lock dropped again. The
     batch path and allocator-specific introspection (the slab's classes)
     reach the inner allocator through these, never by comparing vtables. */
  af_allocator *(*acquire_inner)(af_allocator *self);
  void (*release_inner)(af_allocator *self);
} af_vtable;

struct af_allocator {
  const af_vtable *vt;        /* never NULL */
  int last_error;             /* af_status of the most recent failed call */
};

/* ----------------------------------------------------------------------------
 * Options. A zeroed struct (or NULL) means "all defaults".
 * ------------------------------------------------------------------------- */

typedef struct af_bump_options {
  size_t first_chunk_size;    /* 0: 64 KiB. Later chunks double, up to max_chunk_size */
  size_t max_chunk_size;      /* 0: 64 MiB. Requests larger than a chunk get a chunk of their own */
  size_t byte_limit;          /* 0: none. Cap on total chunk bytes; beyond it alloc fails with AF_ERR_LIMIT */
} af_bump_options;

typedef struct af_large_options {
  size_t max_cached_bytes;    /* Free regions kept for reuse beyond this are unmapped. 0: adaptive, the larger
                                 of 256 MiB and the recent peak of live bytes (see large.c) */
  uint64_t purge_delay_ns;    /* 0: 250 ms. Cached regions idle longer are madvise'd away; UINT64_MAX: never */
  size_t byte_limit;          /* 0: none. Cap on bytes mapped (live + cached) */
} af_large_options;

typedef struct af_slab_options {
  const size_t *class_sizes;  /* ascending, multiples of 16; NULL: the default classes up to 1 MiB */
  size_t class_count;
  int zero_on_alloc;          /* nonzero: every block comes back zeroed */
  size_t byte_limit;          /* 0: none. Cap on bytes mapped for slabs plus oversize blocks */
  af_large_options large;     /* the cache behind requests above the largest class */
} af_slab_options;

/* ----------------------------------------------------------------------------
 * Constructors. Each returns NULL and fills *err (may be NULL) on failure.
 * ------------------------------------------------------------------------- */

af_allocator *af_bump_new(const af_bump_options *options, af_error *err);
af_allocator *af_slab_new(const af_slab_options *options, af_error *err);
af_allocator *af_large_new(const af_large_options *options, af_error *err);
/* name: "libc", "mimalloc", "jemalloc", "tcmalloc", "mimalloc-heap", "jemalloc-arena". */
af_allocator *af_system_new(const char *name, af_error *err);
/* Baselines for the benchmark: "mmap" maps and unmaps every request;
   "null" hands out one static buffer and never fails (measures overhead). */
af_allocator *af_mmap_new(af_error *err);
af_allocator *af_null_new(af_error *err);
/* Any allocator by name with default options: the nine above plus "bump",
   "slab", "large", "mmap", "null". */
af_allocator *af_create(const char *name, af_error *err);
/* AF_OK if af_create(name) can work in this process, else the status with
   the reason in *err (e.g. the Debian package to install). */
int af_available(const char *name, af_error *err);
/* The registry's names in a stable order, the one list of them: index
   0 .. af_registry_count()-1; af_registry_kind says what each is. */
enum {
  AF_KIND_OURS = 0,     /* an allocator of this library (bump, slab, large) */
  AF_KIND_SYSTEM = 1,   /* a system allocator loaded at run time (af_system_new) */
  AF_KIND_BASELINE = 2  /* a benchmark baseline (mmap, null): not offered to Python */
};
size_t af_registry_count(void);
const char *af_registry_name(size_t index);  /* NULL past the end */
int af_registry_kind(size_t index);          /* an AF_KIND_*; -1 past the end */
/* Wraps `inner` (taking ownership) so any number of threads may share it.
   Adds AF_CAP_THREAD_SAFE; all else forwards. */
af_allocator *af_locked_new(af_allocator *inner, af_error *err);

/* ----------------------------------------------------------------------------
 * Entry points: validate arguments, then dispatch through the vtable.
 * Failures return NULL / a status and set a->last_error.
 * ------------------------------------------------------------------------- */

void *af_alloc(af_allocator *a, size_t size, size_t align);
void *af_calloc(af_allocator *a, size_t size, size_t align);
int af_free(af_allocator *a, void *ptr, size_t size, size_t align);
void *af_realloc(af_allocator *a, void *ptr, size_t old_size, size_t new_size, size_t align);
size_t af_usable_size(af_allocator *a, const void *ptr, size_t size, size_t align);
int af_owns(af_allocator *a, const void *ptr);
int af_reset(af_allocator *a);
void af_trim(af_allocator *a);
void af_get_stats(af_allocator *a, af_stats *out);
void af_destroy(af_allocator *a);
const char *af_name(af_allocator *a);
uint32_t af_caps(af_allocator *a);
int af_last_error(af_allocator *a);
/* Does nothing: the floor of one call from Python, for the overhead benchmarks. */
void af_noop(void);

/* Batch path: n blocks of one size in one call. af_alloc_batch is
   all-or-nothing: it returns n, or 0 after freeing what it got. */
size_t af_alloc_batch(af_allocator *a, size_t size, size_t align, size_t n, void **out);
/* Frees n blocks; returns how many were freed (stops at the first one the
   allocator refuses, leaving it and the rest untouched). */
size_t af_free_batch(af_allocator *a, void **ptrs, size_t n, size_t size, size_t align);

/* Slab introspection (AF_ERR_UNSUPPORTED / 0 for other allocators; works
   through af_locked_new too). */
size_t af_slab_class_count(af_allocator *a);
int af_slab_class_stats(af_allocator *a, size_t index, af_class_stats *out);
/* The class size that serves `size`, or 0 when it is oversize. */
size_t af_slab_class_for(af_allocator *a, size_t size);

/* ----------------------------------------------------------------------------
 * Footprint: what a system library says about its own memory (footprint.c).
 * Figures are the library's, process-wide (a jemalloc-arena reports all of
 * jemalloc). A field is meaningful only when its bit is set in `known`: a
 * library that cannot tell leaves it unset, never a 0 that reads as a value.
 * ------------------------------------------------------------------------- */

enum {
  AF_FOOTPRINT_ALLOCATED = 1,          /* bytes in live blocks, as the library counts them */
  AF_FOOTPRINT_ACTIVE = 2,             /* bytes of pages holding live blocks */
  AF_FOOTPRINT_RESIDENT = 4,           /* bytes of the library's memory in RAM */
  AF_FOOTPRINT_MAPPED = 8,             /* bytes the library has mapped or committed from the OS */
  AF_FOOTPRINT_PEAK_MAPPED = 16,       /* high-water mark of mapped_bytes */
  AF_FOOTPRINT_PROCESS_PEAK_RESIDENT = 32 /* the process's peak resident set, as the library reads it */
};

typedef struct af_footprint {
  uint32_t known;                      /* AF_FOOTPRINT_* bits of the fields filled in */
  uint64_t allocated_bytes;            /* jemalloc stats.allocated, tcmalloc current_allocated_bytes, glibc mallinfo2 */
  uint64_t active_bytes;               /* jemalloc stats.active */
  uint64_t resident_bytes;             /* jemalloc stats.resident, tcmalloc heap_size - unmapped */
  uint64_t mapped_bytes;               /* jemalloc stats.mapped, mimalloc commit, tcmalloc heap_size, glibc arena + mmap */
  uint64_t peak_mapped_bytes;          /* mimalloc peak commit */
  uint64_t process_peak_resident_bytes; /* mimalloc mi_process_info (getrusage) */
} af_footprint;

/* Fills *out (known = 0 first). AF_OK when the allocator is a system one,
   even if its library can tell nothing (known stays 0); AF_ERR_UNSUPPORTED
   for ours and the baselines, whose own stats say what they map. */
int af_get_footprint(af_allocator *a, af_footprint *out);

#endif /* ALLOCFFI_H */
