/* ----------------------------------------------------------------------------
 * afbench.h: the C interface of allocffi's harness: the benchmark engine,
 * the calibration of the wrapper, and traces (reading, summarising, replay).
 *
 * None of it is the allocator library: allocffi.h declares that, and the
 * library module (allocffi._native) is built without these sources. The
 * harness's cffi module (allocffi.harness._engine) is built from both headers:
 * allocffi/harness/_build_engine.py reads this file as its cdef, after
 * allocffi.h, with the same rules (declarations only, `#define NAME <int>`).
 * ------------------------------------------------------------------------- */
#ifndef AFBENCH_H
#define AFBENCH_H

#include "allocffi.h"

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

/* The kernels a workload spec can use (see csrc/engine/workloads.c). */
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
 * Calibration (csrc/engine/calibrate.c): the work of a fixed-N workload with a
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
 * against any allocator (csrc/engine/replay.c).
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

#endif /* AFBENCH_H */
