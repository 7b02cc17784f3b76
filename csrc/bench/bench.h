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

/* One block the workload still holds. */
typedef struct bench_block {
  uint8_t *ptr;               /* NULL: the slot is empty */
  size_t size;                /* requested size; meaningful only when ptr != NULL */
} bench_block;

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
} bench_ctx;

/* Runs n more ops; returns how many were done (n unless ctx->status is set). */
typedef uint64_t (*bench_kernel)(bench_ctx *ctx, uint64_t n);

typedef struct bench_workload {
  const char *name;
  const char *description;
  bench_kernel run_free;      /* allocators without AF_CAP_RESET: free each block */
  bench_kernel run_arena;     /* allocators with AF_CAP_RESET: skip frees, reset per phase */
  uint32_t live_slots;        /* size of ctx->live (0: the kernel holds nothing) */
  uint32_t round;             /* ops per time-budget round: a multiple of the phase */
  uint32_t threads;           /* 0: run on the calling thread; N: threads-N */
  /* NULL, or called once per worker after setup and before the first
     reading (not measured): builds tables such as ctx->order. AF_OK or a status. */
  int (*prepare)(bench_ctx *ctx);
} bench_workload;

/* Largest source buffer a copy workload reads. */
#define BENCH_SRC_SIZE 4096
/* Every request uses this alignment. */
#define BENCH_ALIGN AF_DEFAULT_ALIGN

/* The table (workloads.c). */
extern const bench_workload _af_bench_workloads[];
extern const size_t _af_bench_workload_total;

/* The workload that threads-N runs on each thread. */
const bench_workload *_af_bench_threads_workload(void);

/* Teardown after measurement: reads back every block still held into the
   checksum (so blocks held at the end are verified too), then hands them back
   to the allocator (free or reset). */
int _af_bench_release_all(bench_ctx *ctx, bool arena);

#endif /* AF_BENCH_H */
