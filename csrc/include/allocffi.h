/* ----------------------------------------------------------------------------
 * allocffi.h: the public C interface of allocffi.
 *
 * Every allocator, ours (bump, slab, large-region cache) and the system ones
 * loaded at run time (glibc, mimalloc, jemalloc, tcmalloc and the resettable
 * mimalloc heap / jemalloc arena), is an `af_allocator` driven through one
 * vtable, so C code such as the benchmark engine can run any of them with no
 * Python in the loop.
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

/* ----------------------------------------------------------------------------
 * Benchmark engine: runs a named workload against an allocator entirely in C.
 *
 * One "op" is one allocation together with its share of touching, freeing or
 * resetting. The operation sequence depends only on (workload, seed, ops), so
 * every allocator runs exactly the same one; the checksum depends only on the
 * data written and read back, so it is equal across correct allocators.
 * ------------------------------------------------------------------------- */

/* How a run hands blocks back (af_bench_config.mode, af_bench_result.mode). */
enum {
  AF_BENCH_MODE_AUTO = 0,     /* FREE if the allocator has AF_CAP_FREE, else ARENA */
  AF_BENCH_MODE_FREE = 1,     /* free each block where the workload frees it (needs AF_CAP_FREE) */
  AF_BENCH_MODE_ARENA = 2     /* skip the frees, reset at each phase end (needs AF_CAP_RESET) */
};

/* How a workload touches each block it allocates (and reads back what it
   wrote, so the checksum stays allocator-independent). */
enum {
  AF_TOUCH_ENDS = 0,          /* the first and last 8 bytes */
  AF_TOUCH_PAGES = 1,         /* the ends plus one 8-byte word per 4 KiB page */
  AF_TOUCH_ALL = 2            /* every byte written; read back like pages */
};

/* The kernels a workload spec can use (see csrc/bench/workloads.c). */
enum {
  AF_KERNEL_PAIRS = 0,        /* alloc, touch, read back, free at once */
  AF_KERNEL_REPLACE = 1,      /* `live` slots; each op replaces a random slot's block */
  AF_KERNEL_BURST = 2,        /* keep a phase's blocks, free them all at its end */
  AF_KERNEL_PRESSURE = 3      /* every 50 allocations free 25 random held blocks */
};

/* Limits of a workload spec (af_bench_run refuses anything outside). */
#define AF_SPEC_MIN_SIZE 8
#define AF_SPEC_MAX_SIZE 1073741824
#define AF_SPEC_MAX_ENTRIES 256
#define AF_SPEC_MAX_LIVE 16777216
#define AF_SPEC_MAX_PHASE 16777216
#define AF_SPEC_MAX_THREADS 256
#define AF_SPEC_MAX_NAME 64

/* One entry of a spec's size distribution: uniform in [min, max] (a fixed
   size when min == max), or a log-normal with the given median and sigma
   truncated to [min, max] (when median > 0). Picked with probability
   weight / (sum of weights). */
typedef struct af_size_entry {
  uint64_t min;               /* AF_SPEC_MIN_SIZE <= min <= max <= AF_SPEC_MAX_SIZE */
  uint64_t max;
  double median;              /* 0: uniform; else min <= median <= max */
  double sigma;               /* log-normal only: 0 < sigma <= 10 */
  double weight;              /* >= 0, finite; the sum over entries > 0 */
} af_size_entry;

/* A user-described workload, run by the same kernels as the built-in ones. */
typedef struct af_workload_spec {
  const char *name;           /* 1..AF_SPEC_MAX_NAME of [A-Za-z0-9._-] */
  int kernel;                 /* an AF_KERNEL_* */
  const af_size_entry *sizes; /* size_count entries */
  size_t size_count;          /* 1..AF_SPEC_MAX_ENTRIES */
  uint64_t live;              /* replace: slots, 1..AF_SPEC_MAX_LIVE; other kernels: 0 */
  uint64_t phase;             /* ops per phase, 1..AF_SPEC_MAX_PHASE */
  int touch;                  /* an AF_TOUCH_* */
  uint32_t threads;           /* 0: the calling thread; N: N threads, one instance each */
} af_workload_spec;

typedef struct af_bench_config {
  const char *workload;       /* e.g. "fixed-48", "mixed", "threads-4", "shared-threads-4" */
  const char *allocator;      /* any af_create name; one instance per thread (shared-threads-N: one in all) */
  uint64_t ops;               /* allocations to run; 0: run for time_budget_ns */
  uint64_t time_budget_ns;    /* used when ops == 0 (0: 100 ms) */
  uint64_t seed;              /* PRNG seed (0: a fixed default) */
  const af_workload_spec *spec; /* non-NULL: run this spec; workload is then ignored (may be NULL) */
  int mode;                   /* an AF_BENCH_MODE_*; 0 (AUTO) when left zeroed */
} af_bench_config;

typedef struct af_bench_result {
  uint64_t elapsed_ns;        /* wall time of the measured loop */
  uint64_t ops;               /* allocations made */
  double ns_per_op;           /* elapsed_ns / (ops per thread): the time each thread spent per op */
  uint64_t checksum;          /* over data written and read back */
  uint64_t bytes_requested;   /* sum of requested sizes */
  uint32_t threads;
  af_stats stats;             /* allocator stats after the run (summed over threads) */
  uint64_t rss_before_bytes;  /* resident set before the run */
  uint64_t rss_after_bytes;   /* resident set after the run, before teardown */
  uint64_t peak_rss_bytes;    /* high-water mark of the process's resident set after the run (VmHWM) */
  uint64_t minor_faults;      /* during the run */
  uint64_t major_faults;
  uint64_t user_ns;           /* CPU time during the run */
  uint64_t sys_ns;
  uint32_t touch;             /* the workload's AF_TOUCH_* */
  uint32_t shared;            /* 1: the threads shared one allocator instance (shared-threads-N) */
  int mode;                   /* the mode the run used: AF_BENCH_MODE_FREE or AF_BENCH_MODE_ARENA */
} af_bench_result;

int af_bench_run(const af_bench_config *config, af_bench_result *out, af_error *err);
/* Whether af_bench_run would accept the config (workload or spec, allocator,
   and whether the allocator can run that workload, e.g. shared-threads-N),
   without running it: AF_OK, or the status with the reason in *err. */
int af_bench_check(const af_bench_config *config, af_error *err);
size_t af_bench_workload_count(void);
const char *af_bench_workload_name(size_t index);
const char *af_bench_workload_description(size_t index);

/* ----------------------------------------------------------------------------
 * Calibration (csrc/bench/calibrate.c): the work of a fixed-N workload with a
 * system library ("libc", "mimalloc", "jemalloc", "tcmalloc") called
 * directly, through the entry points allocffi binds for it, with no vtable
 * and no counters. With the same workload, seed and ops, af_bench_run on
 * the allocator of the same name does the same work through the vtable
 * (equal checksums): the difference is the wrapper's cost. Fills elapsed_ns,
 * ops, ns_per_op, checksum, bytes_requested, threads and mode of *out.
 * ------------------------------------------------------------------------- */
int af_calibrate_direct(const char *library, const char *workload, uint64_t ops, uint64_t seed,
                        af_bench_result *out, af_error *err);

/* ----------------------------------------------------------------------------
 * Traces: recorded allocation sequences of real programs (csrc/trace/; the
 * file format is documented in docs/trace-format.md) and their replay in C
 * against any allocator (csrc/bench/replay.c).
 * ------------------------------------------------------------------------- */

/* Call types, in the order of af_trace_summary.calls: malloc calloc realloc
   free posix_memalign aligned_alloc memalign valloc pvalloc reallocarray. */
#define AF_TRACE_CALL_KINDS 10
/* Histogram bucket 0 counts zeros; bucket i counts 2^(i-1) <= x < 2^i. */
#define AF_TRACE_HISTOGRAM_BUCKETS 48
#define AF_TRACE_COMMAND_SIZE 1024

/* Name of call type `index` ("malloc", ...), NULL past the last. */
const char *af_trace_call_name(size_t index);

typedef struct af_trace_summary {
  uint32_t version;           /* format version of the file */
  uint32_t pid;               /* the recorded process */
  uint32_t ppid;              /* its parent when it started */
  uint32_t threads;           /* threads that made calls */
  uint64_t start_unix_ns;     /* when the process started being recorded */
  uint64_t events;            /* calls recorded */
  uint64_t objects;           /* blocks allocated */
  uint64_t lost_events;       /* calls the capture lost (a thread killed before it flushed) */
  uint64_t calls[AF_TRACE_CALL_KINDS];  /* per call type, failed calls included */
  uint64_t failed[AF_TRACE_CALL_KINDS]; /* calls that returned NULL or an error */
  uint64_t runtime_calls[AF_TRACE_CALL_KINDS]; /* calls made by libc or the dynamic loader, not the program */
  uint64_t bytes_requested;   /* sum of the sizes of every successful allocation */
  uint64_t peak_live_bytes;   /* highest sum of the sizes of live blocks: the ideal footprint */
  uint64_t peak_live_blocks;
  uint64_t program_peak_live_bytes; /* the same over the program's own blocks (runtime_calls' excluded) */
  uint64_t live_bytes_at_end; /* never freed */
  uint64_t live_blocks_at_end;
  uint64_t frees;             /* blocks released (free, realloc's old block) */
  uint64_t unknown_frees;     /* frees of pointers allocated before capture or by the loader */
  uint64_t null_frees;        /* free(NULL) */
  uint64_t cross_thread_frees; /* releases of a block another thread allocated */
  uint64_t max_align;         /* largest alignment asked for */
  uint64_t size_histogram[AF_TRACE_HISTOGRAM_BUCKETS];     /* sizes of successful allocations */
  uint64_t lifetime_histogram[AF_TRACE_HISTOGRAM_BUCKETS]; /* calls between a block's allocation and its release */
  uint64_t file_bytes;        /* size of the trace file */
  uint32_t command_len;       /* length of the command line; command holds its start */
  char command[AF_TRACE_COMMAND_SIZE]; /* arguments separated by NUL bytes */
} af_trace_summary;

/* Turns a raw capture file (written by the capture library) into a trace. */
int af_trace_convert(const char *raw_path, const char *out_path, af_error *err);
/* Reads and fully validates a trace; errors name the file offset. */
int af_trace_summarize(const char *path, af_trace_summary *out, af_error *err);

/* Every call on one thread in recorded order, or each recorded thread on a
   thread of its own, waiting only where a block crosses threads. */
enum { AF_TRACE_SERIAL = 0, AF_TRACE_THREADS = 1 };

typedef struct af_trace_replay_config {
  const char *path;           /* a trace file */
  const char *allocator;      /* any af_create name */
  int touch;                  /* AF_TOUCH_*, as the engine's workloads touch */
  int mode;                   /* AF_TRACE_SERIAL or AF_TRACE_THREADS */
} af_trace_replay_config;

typedef struct af_trace_replay_result {
  uint64_t events;            /* calls replayed (the recording's failed calls included) */
  uint64_t elapsed_ns;        /* wall time of the replay loop(s) */
  double ns_per_event;
  uint64_t checksum;          /* over data written and read back: equal across allocators */
  uint32_t threads;           /* replay threads */
  uint32_t frees_ignored;     /* 1: the allocator cannot free (bump): frees were skipped */
  uint64_t peak_live_bytes;   /* the trace's ideal footprint (requested bytes) */
  uint64_t peak_live_blocks;
  uint64_t clamped_alignments; /* alignments above AF_MAX_ALIGN replayed at AF_MAX_ALIGN */
  af_stats stats;             /* allocator stats after the replay (summed over instances) */
  uint64_t table_bytes;       /* the replay's own tables, resident before timing starts */
  uint64_t rss_before_bytes;  /* resident set after the tables were built, before the replay */
  uint64_t rss_after_bytes;
  uint64_t peak_rss_bytes;    /* high-water mark during the replay (reset before it where Linux allows) */
  uint64_t minor_faults;
  uint64_t major_faults;
  uint64_t user_ns;
  uint64_t sys_ns;
} af_trace_replay_result;

int af_trace_replay(const af_trace_replay_config *config, af_trace_replay_result *out, af_error *err);

#endif /* ALLOCFFI_H */
