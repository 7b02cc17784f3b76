/* ----------------------------------------------------------------------------
 * bench.h: what the engine driver (engine.c) and the workloads (workloads.c)
 * share: the per-thread run state and the workload table.
 *
 * A workload is a kernel that performs n more allocations ("ops") of an
 * endless, seed-determined operation stream, continuing from the state left
 * by the previous call. Running k calls of n ops therefore performs exactly
 * the same operations as one call of k*n ops, which keeps the time-budget
 * mode deterministic.
 * ------------------------------------------------------------------------- */
#ifndef AF_BENCH_H
#define AF_BENCH_H

#include "af_internal.h"
#include "afbench.h"

/* One block the workload still holds. */
typedef struct bench_block {
  uint8_t *ptr;               /* NULL: the slot is empty */
  size_t size;                /* requested size; meaningful only when ptr != NULL */
} bench_block;

/* A range of request sizes: lo .. lo + span - 1. Random choices between
   ranges are table lookups (see workloads.c). */
typedef struct size_range {
  uint64_t lo;                /* smallest size, >= 8 */
  uint64_t span;              /* number of sizes, >= 1 */
} size_range;

/* Entries of a workload spec's size table (a power of two): an op picks one
   with 10 random bits, then a size uniformly within its range. */
#define BENCH_SPEC_TABLE_SIZE 1024

/* Everything one thread's run needs. Kernels copy the hot fields into locals
   and store them back when they return. */
typedef struct bench_ctx {
  af_allocator *a;            /* the instance under test, owned by this thread */
  void *(*alloc)(af_allocator *, size_t, size_t);  /* a->vt->alloc, cached */
  int (*free)(af_allocator *, void *, size_t, size_t);
  int (*reset)(af_allocator *);
  uint64_t rng;               /* wyrand state of the operation stream */
  uint64_t sum;               /* checksum accumulator: data read back only */
  uint64_t bytes;             /* sum of requested sizes so far */
  uint64_t phase_pos;         /* ops done in the current phase, < the workload's phase */
  uint64_t group_pos;         /* memory-pressure: allocations since the last group of frees */
  bench_block *live;          /* live_cap slots; ptr != NULL exactly for held blocks */
  size_t live_cap;            /* the workload's live_slots */
  size_t live_count;          /* list workloads: held blocks are live[0, live_count) */
  const uint8_t *src;         /* BENCH_SRC_SIZE seed-derived bytes for copy workloads */
  uint32_t *order;            /* live-set workloads: live_cap slot numbers, a seed-derived permutation
                                 made by the workload's prepare before timing (free()d by the engine) */
  int status;                 /* AF_OK, or the status that stopped the run */
  int touch;                  /* the workload's AF_TOUCH_* (kernels have it as a constant too) */
  const size_range *spec_table; /* spec workloads: BENCH_SPEC_TABLE_SIZE ranges; else NULL */
  uint64_t spec_phase;        /* spec workloads: ops per phase */
} bench_ctx;

/* Runs n more ops; returns how many were done (n unless ctx->status is set). */
typedef uint64_t (*bench_kernel)(bench_ctx *ctx, uint64_t n);

typedef struct bench_workload {
  const char *name;
  const char *description;
  bench_kernel run_free;      /* free mode: free each block where the workload frees it */
  bench_kernel run_arena;     /* arena mode: skip frees, reset per phase */
  uint32_t live_slots;        /* size of ctx->live (0: the kernel holds nothing) */
  uint32_t round;             /* ops per time-budget round: a multiple of the phase */
  uint32_t threads;           /* 0: run on the calling thread; N: threads-N */
  int touch;                  /* AF_TOUCH_*; 0 (ends) unless the entry says otherwise */
  bool shared;                /* shared-threads-N: the threads share one instance */
  /* NULL, or called once per worker after setup and before the first
     reading (not measured): builds tables such as ctx->order. AF_OK or a status. */
  int (*prepare)(bench_ctx *ctx);
} bench_workload;

/* The seed of a run whose config says 0 (engine.c, calibrate.c). */
#define BENCH_DEFAULT_SEED 0x5eed0fa110cff1ULL

/* Largest source buffer a copy workload reads. */
#define BENCH_SRC_SIZE 4096
/* Every request uses this alignment. */
#define BENCH_ALIGN AF_DEFAULT_ALIGN

/* The table (workloads.c). */
extern const bench_workload _af_bench_workloads[];
extern const size_t _af_bench_workload_total;

/* The workload that threads-N and shared-threads-N run on each thread. */
const bench_workload *_af_bench_threads_workload(void);

/* A spec's workload: its kernel instance for the spec's kernel and touch
   policy, slots, round and threads (spec.c checks the spec first). */
void _af_bench_spec_workload(const af_workload_spec *spec, bench_workload *out);

/* spec.c: AF_OK if the spec is within the limits of allocffi.h, else
   AF_ERR_INVALID with the spec's name, the field and what is wrong. */
int _af_bench_spec_check(const af_workload_spec *spec, af_error *err);

/* spec.c: fills table[BENCH_SPEC_TABLE_SIZE] from a checked spec's sizes. */
void _af_bench_spec_table(const af_workload_spec *spec, size_range *table);

/* Teardown after measurement: reads back every block still held into the
   checksum (so blocks held at the end are verified too), then hands them back
   to the allocator (free or reset). */
int _af_bench_release_all(bench_ctx *ctx, bool arena);

#endif /* AF_BENCH_H */
