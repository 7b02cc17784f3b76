/* ----------------------------------------------------------------------------
 * workloads.c: the benchmark workloads, as four kernels and one table.
 *
 * Kernels (each runs n more ops, resumable, see bench.h):
 *   pairs    alloc, touch, read back, free: nothing stays live
 *   replace  a fixed array of slots; each op frees a random slot's block (if
 *            any) and puts a new one there (pools, mixed, threads-N)
 *   burst    a phase allocates `phase` blocks and keeps them all, then the
 *            phase end releases them in allocation order (batch-100, stress)
 *   pressure allocate; after every 50 allocations free 25 random live blocks;
 *            the phase end frees the rest (memory-pressure)
 *
 * Free policy (the run's mode, chosen in engine.c). In ARENA MODE (the bump
 * arena always; mimalloc-heap and jemalloc-arena when asked) a workload's
 * individual frees are skipped (the block is simply abandoned) and every
 * phase ends with one reset, which is how an arena is meant to be used. In
 * FREE MODE each block is freed at the point where the workload frees it,
 * and all blocks still held are freed at the phase end (for pairs workloads
 * the phase then changes nothing). Both modes read back exactly the same blocks
 * at exactly the same points, so the checksum does not depend on the mode.
 *
 * Touching. Every block gets an 8-byte tag (64 random bits of the op stream)
 * written at its first and last 8 bytes (copy workloads and stress "strings"
 * memcpy a seed-derived source buffer over the whole block first). Blocks are
 * read back (volatile loads of both words) at the point where the workload
 * frees them or at the phase end: pairs at once, held blocks possibly much
 * later, so an allocator that hands out overlapping live blocks changes the
 * checksum. The checksum only ever sees the data read back, never an
 * address, so it is the same on every correct allocator.
 * That is the "ends" touch policy (AF_TOUCH_ENDS), the default. "pages"
 * (the -pages workloads) also writes one word every 4 KiB from the block's
 * start, so every page the block spans is written, and reads those words
 * back too; "all" first writes every byte (memset), then does what pages
 * does. What is written depends only on the tag and the size, so the
 * checksum stays allocator-independent under every policy.
 *
 * Hot loops hold no per-op branch that could be hoisted: the free policy, the
 * touch policy and the size distribution are compile-time constants of each
 * kernel instance
 * (always_inline + constant arguments), the phase end is handled outside the
 * inner loop, and the allocator is called once per alloc/free through the
 * function pointer cached from its vtable. All requests use BENCH_ALIGN.
 *
 * Spec workloads (af_workload_spec, a user's own pattern) run the same four
 * kernels with DIST_SPEC: the size is a lookup in a table of ranges built
 * before timing (spec.c), and the phase and slot count come from the spec.
 * Each (kernel, touch) pair has its instance, so only those two stay
 * run-time values.
 * ------------------------------------------------------------------------- */
#include "engine/bench.h"
#include "engine/rng.h"

#include <stdlib.h>

#define BENCH_INLINE static inline __attribute__((always_inline))

/* ----------------------------------------------------------------------------
 * Touching memory
 * ------------------------------------------------------------------------- */

/* A 64-bit word at any address (block ends need not be 8-aligned). */
typedef uint64_t bench_word __attribute__((aligned(1), may_alias));

BENCH_INLINE void write_tag(uint8_t *p, size_t size, uint64_t tag) {
  *(bench_word *)p = tag;
  *(bench_word *)(p + size - 8) = ~tag;
}

/* Volatile: the loads must really reach the block even right after the writes. */
BENCH_INLINE uint64_t read_back(const uint8_t *p, size_t size) {
  uint64_t head = *(const volatile bench_word *)p;
  uint64_t tail = *(const volatile bench_word *)(p + size - 8);
  return head ^ bench_rotl(tail, 23);
}

enum { TOUCH_ENDS = AF_TOUCH_ENDS, TOUCH_PAGES = AF_TOUCH_PAGES, TOUCH_ALL = AF_TOUCH_ALL };
/* The stride of the pages policy: a page on every platform we run on. */
#define TOUCH_STRIDE ((size_t)4096)

/* Page words sit at offsets k * TOUCH_STRIDE (k >= 1) clear of the tail tag. */
BENCH_INLINE void write_pages(uint8_t *p, size_t size, uint64_t tag) {
  for (size_t off = TOUCH_STRIDE; off + 16 <= size; off += TOUCH_STRIDE) *(bench_word *)(p + off) = tag + off;
}

BENCH_INLINE uint64_t read_pages(const uint8_t *p, size_t size) {
  uint64_t sum = 0;
  for (size_t off = TOUCH_STRIDE; off + 16 <= size; off += TOUCH_STRIDE)
    sum += bench_rotl(*(const volatile bench_word *)(p + off), (unsigned)(off >> 12) & 63);
  return sum;
}

/* The tag (and, by policy, the page words or every byte) of a new block. */
BENCH_INLINE void write_touched(const int touch, uint8_t *p, size_t size, uint64_t tag) {
  if (touch == TOUCH_ALL) memset(p, (int)(tag >> 56), size);
  if (touch != TOUCH_ENDS) write_pages(p, size, tag);
  write_tag(p, size, tag);
}

/* Reads back every word the policy wrote (all: the same words as pages). */
BENCH_INLINE uint64_t read_touched(const int touch, const uint8_t *p, size_t size) {
  uint64_t sum = read_back(p, size);
  if (touch != TOUCH_ENDS) sum += read_pages(p, size);
  return sum;
}

/* ----------------------------------------------------------------------------
 * Size distributions. Every request is at least 8 bytes (the tag).
 * Each op draws ONE 64-bit r: its tag is r, a replace kernel's slot comes from
 * the low 32 bits (their top bits dominate), a size from the high 32 bits,
 * and a choice between ranges from the lowest 16 bits. `index` is the op's
 * position in its phase.
 * ------------------------------------------------------------------------- */

enum bench_dist {
  DIST_48, DIST_256, DIST_4096,           /* fixed-N */
  DIST_COPY_48, DIST_COPY_256, DIST_COPY_4096,
  DIST_64, DIST_1024,                     /* pool-N */
  DIST_HIGH_FREQUENCY,                    /* 1 KiB */
  DIST_SMALL,                             /* 64 B - 512 B */
  DIST_LARGE,                             /* 64 KiB - 512 KiB */
  DIST_EXACT,                             /* 1, 4, 16 or 64 KiB */
  DIST_INEXACT,                           /* 512 B, 2, 8 or 32 KiB */
  DIST_OVERSIZE,                          /* 128 KiB - 1 MiB */
  DIST_LARGE_CYCLE,                       /* 256 KiB, 1 MiB, 4 MiB in turn */
  DIST_MIXED,                             /* 50% 64-256 B, 30% 1-4 KiB, 20% 16-64 KiB */
  DIST_BATCH,                             /* 50 x 1 KiB then 50 x 4 KiB */
  DIST_PRESSURE,                          /* 64 B - 4 KiB */
  DIST_STRESS,                            /* primitives, structs, slices, strings */
  DIST_LIVE_MIXED,                        /* 16 B - 256 B (live-mixed-*) */
  DIST_LIVE_LARGE,                        /* 256 KiB - 1 MiB (live-large-*) */
  DIST_SPEC                               /* a workload spec's table (bench_ctx.spec_table) */
};

#define KIB ((size_t)1024)

/* Uniform in [lo, hi] from 32 random bits. */
BENCH_INLINE size_t between(uint64_t bits32, size_t lo, size_t hi) {
  return lo + (size_t)((bits32 * (uint64_t)(hi - lo + 1)) >> 32);
}

/* Random choices between size ranges (size_range, bench.h) are table
   lookups, not branches: a mispredicted branch per op would be engine cost
   charged to the allocator. */
#define RANGE(lo, hi) {(lo), (hi) - (lo) + 1}

/* mixed, in steps of 5%: 10 x 64-256 B (50%), 6 x 1-4 KiB (30%), 4 x 16-64 KiB (20%) */
#define MIXED_SMALL RANGE(64, 256)
#define MIXED_MEDIUM RANGE(1 * KIB, 4 * KIB)
#define MIXED_LARGE RANGE(16 * KIB, 64 * KIB)
static const size_range MIXED_RANGES[20] = {
  MIXED_SMALL, MIXED_SMALL, MIXED_SMALL, MIXED_SMALL, MIXED_SMALL, MIXED_SMALL, MIXED_SMALL,
  MIXED_SMALL, MIXED_SMALL, MIXED_SMALL, MIXED_MEDIUM, MIXED_MEDIUM, MIXED_MEDIUM, MIXED_MEDIUM,
  MIXED_MEDIUM, MIXED_MEDIUM, MIXED_LARGE, MIXED_LARGE, MIXED_LARGE, MIXED_LARGE};

/* Stress kinds, chosen by the low two bits of r. */
enum { STRESS_PRIMITIVE, STRESS_STRUCT, STRESS_SLICE, STRESS_STRING };
static const size_range STRESS_RANGES[4] = {[STRESS_PRIMITIVE] = RANGE(8, 16), [STRESS_STRUCT] = RANGE(24, 128),
                                             [STRESS_SLICE] = RANGE(64, 8 * KIB), [STRESS_STRING] = RANGE(8, 256)};

/* A size in the range from 32 random bits. */
BENCH_INLINE size_t in_range(uint64_t bits32, const size_range *range) {
  return (size_t)(range->lo + ((bits32 * range->span) >> 32));
}

/* Uniform in [0, n) from the lowest 16 bits of r. */
BENCH_INLINE unsigned low16_below(uint64_t r, unsigned n) { return (unsigned)(((r & 0xffff) * n) >> 16); }

BENCH_INLINE size_t draw_size(int dist, uint64_t r, uint64_t index) {
  uint64_t hi = r >> 32;
  switch (dist) {
    case DIST_48: case DIST_COPY_48: return 48;
    case DIST_256: case DIST_COPY_256: return 256;
    case DIST_4096: case DIST_COPY_4096: return 4096;
    case DIST_64: return 64;
    case DIST_1024: case DIST_HIGH_FREQUENCY: return 1024;
    case DIST_SMALL: return between(hi, 64, 512);
    case DIST_LARGE: return between(hi, 64 * KIB, 512 * KIB);
    case DIST_EXACT: return KIB << (2 * (hi & 3));
    case DIST_INEXACT: return (KIB / 2) << (2 * (hi & 3));
    case DIST_OVERSIZE: return between(hi, 128 * KIB, 1024 * KIB);
    case DIST_LARGE_CYCLE: return (256 * KIB) << (2 * (index % 3));
    case DIST_MIXED: return in_range(hi, &MIXED_RANGES[low16_below(r, 20)]);
    case DIST_BATCH: return index < 50 ? 1 * KIB : 4 * KIB;
    case DIST_PRESSURE: return between(hi, 64, 4 * KIB);
    case DIST_STRESS: return in_range(hi, &STRESS_RANGES[r & 3]);
    case DIST_LIVE_MIXED: return between(hi, 16, 256);
    case DIST_LIVE_LARGE: return between(hi, 256 * KIB, 1024 * KIB);
    default: __builtin_unreachable(); /* DIST_SPEC goes through pick_size */
  }
}

/* draw_size, plus the spec workloads' table (NULL for the built-in ones). */
BENCH_INLINE size_t pick_size(int dist, uint64_t r, uint64_t index, const size_range *spec_table) {
  if (dist == DIST_SPEC) return in_range(r >> 32, &spec_table[r & (BENCH_SPEC_TABLE_SIZE - 1)]);
  return draw_size(dist, r, index);
}

/* Writes the block's contents: a copy of the source buffer for copy
   workloads and stress strings, then what the touch policy writes. */
BENCH_INLINE void fill_touched(int dist, const int touch, uint8_t *p, size_t size, uint64_t r,
                               const uint8_t *src) {
  bool copy = dist == DIST_COPY_48 || dist == DIST_COPY_256 || dist == DIST_COPY_4096 ||
              (dist == DIST_STRESS && (r & 3) == STRESS_STRING);
  if (copy) memcpy(p, src, size);
  write_touched(touch, p, size, r);
}

/* The "ends" policy. */
BENCH_INLINE void fill(int dist, uint8_t *p, size_t size, uint64_t r, const uint8_t *src) {
  fill_touched(dist, TOUCH_ENDS, p, size, r, src);
}

/* ----------------------------------------------------------------------------
 * Releasing held blocks
 * ------------------------------------------------------------------------- */

/* Reads back (into *sum, by the workload's touch policy) and releases every
   held block among live[0, count): frees each one in free mode; in arena mode
   abandons them and resets once. Returns AF_OK or the failing status. */
static int release_held(bench_ctx *c, size_t count, uint64_t *sum, bool arena) {
  int status = AF_OK;
  const int touch = c->touch;
  for (size_t i = 0; i < count; i++) {
    bench_block *b = &c->live[i];
    if (b->ptr == NULL) continue;
    *sum += read_touched(touch, b->ptr, b->size);
    if (!arena) {
      int s = c->free(c->a, b->ptr, b->size, BENCH_ALIGN);
      if (s != AF_OK && status == AF_OK) status = s;
    }
    b->ptr = NULL;
  }
  c->live_count = 0;
  if (arena) {
    int s = c->reset(c->a);
    if (s != AF_OK && status == AF_OK) status = s;
  }
  return status;
}

int _af_bench_release_all(bench_ctx *c, bool arena) { return release_held(c, c->live_cap, &c->sum, arena); }

/* ----------------------------------------------------------------------------
 * Kernels. All share one shape: hot state in locals, an outer loop over
 * phase chunks, a tight inner loop, the phase end between chunks.
 * ------------------------------------------------------------------------- */

#define KERNEL_ENTER                                                     \
  af_allocator *const a = c->a;                                          \
  void *(*const alloc_fn)(af_allocator *, size_t, size_t) = c->alloc;    \
  int (*const free_fn)(af_allocator *, void *, size_t, size_t) = c->free; \
  const uint8_t *const src = c->src;                                     \
  const size_range *const spec_table = c->spec_table;                    \
  uint64_t rng = c->rng, sum = c->sum, bytes = c->bytes;                 \
  uint64_t pos = c->phase_pos, done = 0;                                 \
  (void)free_fn; (void)src; (void)spec_table

#define KERNEL_LEAVE       \
  c->rng = rng;            \
  c->sum = sum;            \
  c->bytes = bytes;        \
  c->phase_pos = pos;      \
  return done

/* The allocator's status for a NULL return (always non-zero). */
static int alloc_failure(af_allocator *a) { return a->last_error != AF_OK ? a->last_error : AF_ERR_NOMEM; }

/* Ops of the current phase that fit in the rest of this call. */
BENCH_INLINE uint64_t chunk_of(uint64_t n, uint64_t done, uint64_t phase, uint64_t pos) {
  uint64_t left = n - done, room = phase - pos;
  return left < room ? left : room;
}

BENCH_INLINE uint64_t kernel_pairs(bench_ctx *c, uint64_t n, const bool arena, const int dist, const int touch,
                                   const uint64_t phase, const size_t slots) {
  (void)slots;
  KERNEL_ENTER;
  while (done < n) {
    uint64_t chunk = chunk_of(n, done, phase, pos);
    for (uint64_t i = 0; i < chunk; i++) {
      uint64_t r = bench_rand(&rng);
      size_t size = pick_size(dist, r, pos + i, spec_table);
      uint8_t *p = alloc_fn(a, size, BENCH_ALIGN);
      if (af_unlikely(p == NULL)) {
        c->status = alloc_failure(a);
        done += i, pos += i;
        KERNEL_LEAVE;
      }
      fill_touched(dist, touch, p, size, r, src);
      sum += read_touched(touch, p, size);
      bytes += size;
      if (!arena) {
        int status = free_fn(a, p, size, BENCH_ALIGN);
        if (af_unlikely(status != AF_OK)) {
          c->status = status;
          done += i + 1, pos += i + 1;
          KERNEL_LEAVE;
        }
      }
    }
    done += chunk, pos += chunk;
    if (pos == phase) {
      pos = 0;
      if (arena) {
        int status = c->reset(a);
        if (af_unlikely(status != AF_OK)) {
          c->status = status;
          KERNEL_LEAVE;
        }
      }
    }
  }
  KERNEL_LEAVE;
}

BENCH_INLINE uint64_t kernel_replace(bench_ctx *c, uint64_t n, const bool arena, const int dist, const int touch,
                                     const uint64_t phase, const size_t slots) {
  KERNEL_ENTER;
  bench_block *const live = c->live;
  while (done < n) {
    uint64_t chunk = chunk_of(n, done, phase, pos);
    for (uint64_t i = 0; i < chunk; i++) {
      uint64_t r = bench_rand(&rng);
      bench_block *b = &live[bench_below_lo(r, slots)];
      if (b->ptr != NULL) {
        sum += read_touched(touch, b->ptr, b->size);
        if (!arena) {
          int status = free_fn(a, b->ptr, b->size, BENCH_ALIGN);
          if (af_unlikely(status != AF_OK)) {
            c->status = status;
            done += i, pos += i;
            KERNEL_LEAVE;
          }
        }
        b->ptr = NULL;
      }
      size_t size = pick_size(dist, r, pos + i, spec_table);
      uint8_t *p = alloc_fn(a, size, BENCH_ALIGN);
      if (af_unlikely(p == NULL)) {
        c->status = alloc_failure(a);
        done += i, pos += i;
        KERNEL_LEAVE;
      }
      fill_touched(dist, touch, p, size, r, src);
      b->ptr = p;
      b->size = size;
      bytes += size;
    }
    done += chunk, pos += chunk;
    if (pos == phase) {
      pos = 0;
      int status = release_held(c, slots, &sum, arena);
      if (af_unlikely(status != AF_OK)) {
        c->status = status;
        KERNEL_LEAVE;
      }
    }
  }
  KERNEL_LEAVE;
}

BENCH_INLINE uint64_t kernel_burst(bench_ctx *c, uint64_t n, const bool arena, const int dist, const int touch,
                                   const uint64_t phase, const size_t slots) {
  (void)slots; /* == phase: every block of a phase is held until its end */
  KERNEL_ENTER;
  bench_block *const live = c->live;
  while (done < n) {
    uint64_t chunk = chunk_of(n, done, phase, pos);
    for (uint64_t i = 0; i < chunk; i++) {
      uint64_t r = bench_rand(&rng);
      size_t size = pick_size(dist, r, pos + i, spec_table);
      uint8_t *p = alloc_fn(a, size, BENCH_ALIGN);
      if (af_unlikely(p == NULL)) {
        c->status = alloc_failure(a);
        done += i, pos += i;
        KERNEL_LEAVE;
      }
      fill_touched(dist, touch, p, size, r, src);
      live[pos + i] = (bench_block){p, size};
      bytes += size;
    }
    done += chunk, pos += chunk;
    c->live_count = pos;
    if (pos == phase) {
      pos = 0;
      int status = release_held(c, phase, &sum, arena);
      if (af_unlikely(status != AF_OK)) {
        c->status = status;
        KERNEL_LEAVE;
      }
    }
  }
  KERNEL_LEAVE;
}

enum { PRESSURE_PHASE = 1000, PRESSURE_GROUP = 50, PRESSURE_FREES = 25 };
/* Most blocks memory-pressure holds: just before the phase's last group frees. */
#define PRESSURE_SLOTS ((PRESSURE_PHASE / PRESSURE_GROUP - 1) * (PRESSURE_GROUP - PRESSURE_FREES) + PRESSURE_GROUP)

BENCH_INLINE uint64_t kernel_pressure(bench_ctx *c, uint64_t n, const bool arena, const int dist, const int touch,
                                      const uint64_t phase, const size_t slots) {
  (void)slots;
  KERNEL_ENTER;
  bench_block *const live = c->live;
  size_t count = c->live_count;
  uint64_t group_pos = c->group_pos;
  while (done < n) {
    uint64_t chunk = chunk_of(n, done, phase, pos);
    for (uint64_t i = 0; i < chunk; i++) {
      uint64_t r = bench_rand(&rng);
      size_t size = pick_size(dist, r, pos + i, spec_table);
      uint8_t *p = alloc_fn(a, size, BENCH_ALIGN);
      if (af_unlikely(p == NULL)) {
        c->status = alloc_failure(a);
        done += i, pos += i;
        goto leave;
      }
      fill_touched(dist, touch, p, size, r, src);
      live[count++] = (bench_block){p, size};
      bytes += size;
      if (++group_pos < PRESSURE_GROUP) continue;
      group_pos = 0;
      for (int k = 0; k < PRESSURE_FREES; k++) {
        bench_block *b = &live[bench_below_hi(bench_rand(&rng), count)];
        sum += read_touched(touch, b->ptr, b->size);
        if (!arena) {
          int status = free_fn(a, b->ptr, b->size, BENCH_ALIGN);
          if (af_unlikely(status != AF_OK)) {
            c->status = status;
            done += i + 1, pos += i + 1;
            goto leave;
          }
        }
        *b = live[--count]; /* keep held blocks contiguous */
        live[count].ptr = NULL;
      }
    }
    done += chunk, pos += chunk;
    if (pos == phase) {
      pos = 0;
      group_pos = 0;
      c->live_count = count;
      int status = release_held(c, count, &sum, arena);
      count = 0;
      if (af_unlikely(status != AF_OK)) {
        c->status = status;
        goto leave;
      }
    }
  }
leave:
  c->live_count = count;
  c->group_pos = group_pos;
  KERNEL_LEAVE;
}

/* live: a phase allocates `phase` (= slots) blocks and keeps them all; the
   i-th block of a phase goes to slot order[i], and the phase end releases the
   slots in index order, so the blocks die in a seed-derived random order of
   their allocation (the same permutation on every allocator and in every
   phase). Storing at a permuted slot rather than reading one keeps the
   engine's own random memory accesses to stores, which do not stall. */
BENCH_INLINE uint64_t kernel_live(bench_ctx *c, uint64_t n, const bool arena, const int dist, const int touch,
                                  const uint64_t phase, const size_t slots) {
  (void)slots; /* == phase */
  KERNEL_ENTER;
  bench_block *const live = c->live;
  const uint32_t *const order = c->order;
  while (done < n) {
    uint64_t chunk = chunk_of(n, done, phase, pos);
    for (uint64_t i = 0; i < chunk; i++) {
      uint64_t r = bench_rand(&rng);
      size_t size = draw_size(dist, r, pos + i);
      uint8_t *p = alloc_fn(a, size, BENCH_ALIGN);
      if (af_unlikely(p == NULL)) {
        c->status = alloc_failure(a);
        done += i, pos += i;
        KERNEL_LEAVE;
      }
      fill_touched(dist, touch, p, size, r, src);
      live[order[pos + i]] = (bench_block){p, size};
      bytes += size;
    }
    done += chunk, pos += chunk;
    if (pos == phase) {
      pos = 0;
      int status = release_held(c, phase, &sum, arena);
      if (af_unlikely(status != AF_OK)) {
        c->status = status;
        KERNEL_LEAVE;
      }
    }
  }
  KERNEL_LEAVE;
}

/* The free order of the live workloads: a Fisher-Yates shuffle of the slot
   numbers from a stream derived from the run's seed (ctx->rng before the first op). */
static int prepare_shuffled(bench_ctx *c) {
  size_t n = c->live_cap;
  c->order = malloc(n * sizeof *c->order);
  if (c->order == NULL) return AF_ERR_NOMEM;
  for (size_t i = 0; i < n; i++) c->order[i] = (uint32_t)i;
  uint64_t state = bench_mix64(c->rng ^ 0x6f72646572ULL); /* not the op stream */
  for (size_t i = n - 1; i > 0; i--) {
    size_t j = (size_t)bench_below_hi(bench_rand(&state), i + 1);
    uint32_t t = c->order[i];
    c->order[i] = c->order[j];
    c->order[j] = t;
  }
  return AF_OK;
}

/* The allocation-order counterpart: slot i for the i-th block. */
static int prepare_in_order(bench_ctx *c) {
  c->order = malloc(c->live_cap * sizeof *c->order);
  if (c->order == NULL) return AF_ERR_NOMEM;
  for (size_t i = 0; i < c->live_cap; i++) c->order[i] = (uint32_t)i;
  return AF_OK;
}

/* One workload = one kernel instantiated twice (free mode and arena mode)
   with its distribution, touch policy, phase length and slot count as
   constants. BENCH_INSTANCE touches the ends. */
#define BENCH_INSTANCE_TOUCH(fn, kernel, dist, touch, phase, slots)                                      \
  static uint64_t fn##_free(bench_ctx *c, uint64_t n) { return kernel(c, n, false, dist, touch, phase, slots); } \
  static uint64_t fn##_arena(bench_ctx *c, uint64_t n) { return kernel(c, n, true, dist, touch, phase, slots); }
#define BENCH_INSTANCE(fn, kernel, dist, phase, slots) BENCH_INSTANCE_TOUCH(fn, kernel, dist, TOUCH_ENDS, phase, slots)

/* Phases: 1000 ops for small blocks (the "reset every 1000" of arena mode);
   16 for the 64 KiB-1 MiB ranges and 12 (4 rotations) for large-cycle, so
   that an arena holds tens of MiB, not GiB, before its reset. */
enum { PHASE_SMALL = 1000, PHASE_BIG = 16, PHASE_CYCLE = 12 };
enum { POOL_SLOTS = 1000, POOL_PHASE = 10000, MIXED_SLOTS = 256, MIXED_PHASE = 4096 };
enum { BATCH_PHASE = 100, STRESS_PHASE = 10000 };

BENCH_INSTANCE(fixed_48, kernel_pairs, DIST_48, PHASE_SMALL, 0)
BENCH_INSTANCE(fixed_256, kernel_pairs, DIST_256, PHASE_SMALL, 0)
BENCH_INSTANCE(fixed_4096, kernel_pairs, DIST_4096, PHASE_SMALL, 0)
BENCH_INSTANCE(copy_48, kernel_pairs, DIST_COPY_48, PHASE_SMALL, 0)
BENCH_INSTANCE(copy_256, kernel_pairs, DIST_COPY_256, PHASE_SMALL, 0)
BENCH_INSTANCE(copy_4096, kernel_pairs, DIST_COPY_4096, PHASE_SMALL, 0)
BENCH_INSTANCE(pool_64, kernel_replace, DIST_64, POOL_PHASE, POOL_SLOTS)
BENCH_INSTANCE(pool_1024, kernel_replace, DIST_1024, POOL_PHASE, POOL_SLOTS)
BENCH_INSTANCE(batch_100, kernel_burst, DIST_BATCH, BATCH_PHASE, BATCH_PHASE)
BENCH_INSTANCE(mixed, kernel_replace, DIST_MIXED, MIXED_PHASE, MIXED_SLOTS)
BENCH_INSTANCE(small, kernel_pairs, DIST_SMALL, PHASE_SMALL, 0)
BENCH_INSTANCE(large, kernel_pairs, DIST_LARGE, PHASE_BIG, 0)
BENCH_INSTANCE(exact, kernel_pairs, DIST_EXACT, PHASE_SMALL, 0)
BENCH_INSTANCE(inexact, kernel_pairs, DIST_INEXACT, PHASE_SMALL, 0)
BENCH_INSTANCE(oversize, kernel_pairs, DIST_OVERSIZE, PHASE_BIG, 0)
BENCH_INSTANCE(high_frequency, kernel_pairs, DIST_HIGH_FREQUENCY, PHASE_SMALL, 0)
BENCH_INSTANCE(memory_pressure, kernel_pressure, DIST_PRESSURE, PRESSURE_PHASE, PRESSURE_SLOTS)
BENCH_INSTANCE(large_cycle, kernel_pairs, DIST_LARGE_CYCLE, PHASE_CYCLE, 0)
BENCH_INSTANCE(stress, kernel_burst, DIST_STRESS, STRESS_PHASE, STRESS_PHASE)
BENCH_INSTANCE_TOUCH(large_pages, kernel_pairs, DIST_LARGE, TOUCH_PAGES, PHASE_BIG, 0)
BENCH_INSTANCE_TOUCH(oversize_pages, kernel_pairs, DIST_OVERSIZE, TOUCH_PAGES, PHASE_BIG, 0)
BENCH_INSTANCE_TOUCH(large_cycle_pages, kernel_pairs, DIST_LARGE_CYCLE, TOUCH_PAGES, PHASE_CYCLE, 0)

#define ENTRY(fn, name, desc, slots, round, threads) ENTRY_TOUCH(fn, name, desc, slots, round, threads, TOUCH_ENDS)
#define ENTRY_TOUCH(fn, name, desc, slots, round, threads, touch) \
  {name, desc, fn##_free, fn##_arena, slots, round, threads, touch, false, NULL}
#define ENTRY_SHARED(fn, name, desc, slots, round, threads) \
  {name, desc, fn##_free, fn##_arena, slots, round, threads, TOUCH_ENDS, true, NULL}

BENCH_INSTANCE(live_64_1e3, kernel_live, DIST_64, 1000, 1000)
BENCH_INSTANCE(live_64_1e4, kernel_live, DIST_64, 10000, 10000)
BENCH_INSTANCE(live_64_1e5, kernel_live, DIST_64, 100000, 100000)
BENCH_INSTANCE(live_64_1e6, kernel_live, DIST_64, 1000000, 1000000)
BENCH_INSTANCE(live_mixed_1e6, kernel_live, DIST_LIVE_MIXED, 1000000, 1000000)
BENCH_INSTANCE(live_large_1e2, kernel_live, DIST_LIVE_LARGE, 100, 100)
BENCH_INSTANCE(live_large_1e3, kernel_live, DIST_LIVE_LARGE, 1000, 1000)

/* A live-set workload of n blocks: order is shuffled or in_order. */
#define LIVE_ENTRY(fn, label, desc, n, order) \
  {.name = label, .description = desc, .run_free = fn##_free, .run_arena = fn##_arena, .live_slots = n, \
   .round = (n) < 10000 ? 10000 : (n), .prepare = prepare_##order}

/* name, one-line description, live slots, time-budget round (a multiple of
   the phase), threads. */
const bench_workload _af_bench_workloads[] = {
  ENTRY(fixed_48, "fixed-48", "alloc, touch, free 48 B (arena: reset every 1000)", 0, PHASE_SMALL, 0),
  ENTRY(fixed_256, "fixed-256", "alloc, touch, free 256 B (arena: reset every 1000)", 0, PHASE_SMALL, 0),
  ENTRY(fixed_4096, "fixed-4096", "alloc, touch, free 4 KiB (arena: reset every 1000)", 0, PHASE_SMALL, 0),
  ENTRY(copy_48, "copy-48", "alloc 48 B, memcpy 48 B in, read back, free", 0, PHASE_SMALL, 0),
  ENTRY(copy_256, "copy-256", "alloc 256 B, memcpy 256 B in, read back, free", 0, PHASE_SMALL, 0),
  ENTRY(copy_4096, "copy-4096", "alloc 4 KiB, memcpy 4 KiB in, read back, free", 0, PHASE_SMALL, 0),
  ENTRY(pool_64, "pool-64", "1000-slot pool of 64 B objects: each op replaces a random slot; emptied every 10000", POOL_SLOTS, POOL_PHASE, 0),
  ENTRY(pool_1024, "pool-1024", "1000-slot pool of 1 KiB objects: each op replaces a random slot; emptied every 10000", POOL_SLOTS, POOL_PHASE, 0),
  ENTRY(batch_100, "batch-100", "50 x 1 KiB then 50 x 4 KiB, then free all", BATCH_PHASE, 10 * BATCH_PHASE, 0),
  ENTRY(mixed, "mixed", "256 live blocks, each op replaces a random one: 50% 64-256 B, 30% 1-4 KiB, 20% 16-64 KiB", MIXED_SLOTS, MIXED_PHASE, 0),
  ENTRY(small, "small", "alloc, touch, free 64-512 B", 0, PHASE_SMALL, 0),
  ENTRY(large, "large", "alloc, touch, free 64-512 KiB (arena: reset every 16)", 0, 4 * PHASE_BIG, 0),
  ENTRY(exact, "exact", "alloc, touch, free exactly 1, 4, 16 or 64 KiB", 0, PHASE_SMALL, 0),
  ENTRY(inexact, "inexact", "alloc, touch, free 512 B, 2, 8 or 32 KiB", 0, PHASE_SMALL, 0),
  ENTRY(oversize, "oversize", "alloc, touch, free 128 KiB-1 MiB (arena: reset every 16)", 0, 4 * PHASE_BIG, 0),
  ENTRY(high_frequency, "high-frequency", "alloc, touch, free 1 KiB, repeated", 0, PHASE_SMALL, 0),
  ENTRY(memory_pressure, "memory-pressure", "64 B-4 KiB: 50 allocs, free 25 random, repeat; free the rest every 1000", PRESSURE_SLOTS, PRESSURE_PHASE, 0),
  ENTRY(large_cycle, "large-cycle", "alloc, touch, free 256 KiB, 1 MiB, 4 MiB in rotation (arena: reset every 12)", 0, 4 * PHASE_CYCLE, 0),
  ENTRY(stress, "stress", "bursts of 10000 primitives (8-16 B), structs, slices, copied strings; then free all", STRESS_PHASE, STRESS_PHASE, 0),
  LIVE_ENTRY(live_64_1e3, "live-64-1e3-random", "hold 1,000 blocks of 64 B, free them in a random order, repeat", 1000, shuffled),
  LIVE_ENTRY(live_64_1e4, "live-64-1e4-random", "hold 10,000 blocks of 64 B, free them in a random order, repeat", 10000, shuffled),
  LIVE_ENTRY(live_64_1e5, "live-64-1e5-random", "hold 100,000 blocks of 64 B, free them in a random order, repeat", 100000, shuffled),
  LIVE_ENTRY(live_64_1e6, "live-64-1e6-random", "hold 1,000,000 blocks of 64 B, free them in a random order, repeat", 1000000, shuffled),
  LIVE_ENTRY(live_64_1e3, "live-64-1e3-inorder", "hold 1,000 blocks of 64 B, free them in allocation order, repeat", 1000, in_order),
  LIVE_ENTRY(live_64_1e4, "live-64-1e4-inorder", "hold 10,000 blocks of 64 B, free them in allocation order, repeat", 10000, in_order),
  LIVE_ENTRY(live_64_1e5, "live-64-1e5-inorder", "hold 100,000 blocks of 64 B, free them in allocation order, repeat", 100000, in_order),
  LIVE_ENTRY(live_64_1e6, "live-64-1e6-inorder", "hold 1,000,000 blocks of 64 B, free them in allocation order, repeat", 1000000, in_order),
  LIVE_ENTRY(live_mixed_1e6, "live-mixed-1e6-random", "hold 1,000,000 blocks of 16-256 B, free them in a random order, repeat", 1000000, shuffled),
  LIVE_ENTRY(live_mixed_1e6, "live-mixed-1e6-inorder", "hold 1,000,000 blocks of 16-256 B, free them in allocation order, repeat", 1000000, in_order),
  LIVE_ENTRY(live_large_1e2, "live-large-1e2-random", "hold 100 blocks of 256 KiB-1 MiB, free them in a random order, repeat", 100, shuffled),
  LIVE_ENTRY(live_large_1e3, "live-large-1e3-random", "hold 1,000 blocks of 256 KiB-1 MiB (~640 MiB), free them in a random order, repeat", 1000, shuffled),
  LIVE_ENTRY(live_large_1e3, "live-large-1e3-inorder", "hold 1,000 blocks of 256 KiB-1 MiB (~640 MiB), free them in allocation order, repeat", 1000, in_order),
  ENTRY(mixed, "threads-2", "mixed on 2 threads, one allocator instance each (any threads-N works)", MIXED_SLOTS, MIXED_PHASE, 2),
  ENTRY(mixed, "threads-4", "mixed on 4 threads, one allocator instance each (any threads-N works)", MIXED_SLOTS, MIXED_PHASE, 4),
  ENTRY_SHARED(mixed, "shared-threads-2", "mixed on 2 threads sharing ONE allocator instance (any shared-threads-N works)", MIXED_SLOTS, MIXED_PHASE, 2),
  ENTRY_SHARED(mixed, "shared-threads-4", "mixed on 4 threads sharing ONE allocator instance (any shared-threads-N works)", MIXED_SLOTS, MIXED_PHASE, 4),
  ENTRY_TOUCH(large_pages, "large-pages", "large, writing one word in every 4 KiB page of each block", 0, 4 * PHASE_BIG, 0, TOUCH_PAGES),
  ENTRY_TOUCH(oversize_pages, "oversize-pages", "oversize, writing one word in every 4 KiB page of each block", 0, 4 * PHASE_BIG, 0, TOUCH_PAGES),
  ENTRY_TOUCH(large_cycle_pages, "large-cycle-pages", "large-cycle, writing one word in every 4 KiB page of each block", 0, 4 * PHASE_CYCLE, 0, TOUCH_PAGES),
};

const size_t _af_bench_workload_total = sizeof _af_bench_workloads / sizeof _af_bench_workloads[0];

const bench_workload *_af_bench_threads_workload(void) {
  for (size_t i = 0; i < _af_bench_workload_total; i++)
    if (strcmp(_af_bench_workloads[i].name, "mixed") == 0) return &_af_bench_workloads[i];
  __builtin_unreachable(); /* the table has "mixed" */
}

/* ----------------------------------------------------------------------------
 * Spec workloads: one instance per (kernel, touch); phase and slots come from
 * the context.
 * ------------------------------------------------------------------------- */
#define SPEC_INSTANCE(fn, kernel, touch)                                                              \
  static uint64_t fn##_free(bench_ctx *c, uint64_t n) {                                               \
    return kernel(c, n, false, DIST_SPEC, touch, c->spec_phase, c->live_cap);                          \
  }                                                                                                   \
  static uint64_t fn##_arena(bench_ctx *c, uint64_t n) {                                              \
    return kernel(c, n, true, DIST_SPEC, touch, c->spec_phase, c->live_cap);                           \
  }
#define SPEC_INSTANCES(fn, kernel)                     \
  SPEC_INSTANCE(fn##_ends, kernel, TOUCH_ENDS)         \
  SPEC_INSTANCE(fn##_pages, kernel, TOUCH_PAGES)       \
  SPEC_INSTANCE(fn##_all, kernel, TOUCH_ALL)

SPEC_INSTANCES(spec_pairs, kernel_pairs)
SPEC_INSTANCES(spec_replace, kernel_replace)
SPEC_INSTANCES(spec_burst, kernel_burst)
SPEC_INSTANCES(spec_pressure, kernel_pressure)

/* [AF_KERNEL_*][AF_TOUCH_*][arena] */
#define SPEC_ROW(fn) {{fn##_ends_free, fn##_ends_arena}, {fn##_pages_free, fn##_pages_arena}, {fn##_all_free, fn##_all_arena}}
static const bench_kernel SPEC_KERNELS[4][3][2] = {
  [AF_KERNEL_PAIRS] = SPEC_ROW(spec_pairs),
  [AF_KERNEL_REPLACE] = SPEC_ROW(spec_replace),
  [AF_KERNEL_BURST] = SPEC_ROW(spec_burst),
  [AF_KERNEL_PRESSURE] = SPEC_ROW(spec_pressure),
};

/* Ops per time-budget round: whole phases, at least about a thousand ops. */
static uint64_t spec_round(uint64_t phase) { return phase >= 1000 ? phase : phase * ((1000 + phase - 1) / phase); }

void _af_bench_spec_workload(const af_workload_spec *spec, bench_workload *out) {
  uint64_t slots = 0;
  switch (spec->kernel) {
    case AF_KERNEL_REPLACE: slots = spec->live; break;
    case AF_KERNEL_BURST: slots = spec->phase; break;
    /* At most phase/2 + 25 held at once (25 freed per 50 allocated), +1 for the
       50th allocation before its group's frees. */
    case AF_KERNEL_PRESSURE: slots = spec->phase / 2 + PRESSURE_GROUP; break;
    default: break;
  }
  *out = (bench_workload){
    .name = spec->name,
    .description = "a workload spec",
    .run_free = SPEC_KERNELS[spec->kernel][spec->touch][0],
    .run_arena = SPEC_KERNELS[spec->kernel][spec->touch][1],
    .live_slots = (uint32_t)slots,
    .round = (uint32_t)spec_round(spec->phase),
    .threads = spec->threads,
    .touch = spec->touch,
  };
}
