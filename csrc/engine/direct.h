/* ----------------------------------------------------------------------------
 * direct.h: the fixed-N pairs loop of the engine with the vtable taken out.
 *
 * Per op it does exactly what workloads.c's pairs kernel does for fixed-N in
 * free mode: draw 64 random bits (the tag), allocate, write the tag at the
 * block's first and last 8 bytes, read both back with volatile loads into
 * the checksum, add the size to the byte count, free. The only difference
 * is the call: here the library's own entry points through plain function
 * pointers, there the allocator's vtable (counters, size floor, alignment
 * dispatch). Same seed and ops give the same checksum as af_bench_run, which
 * csrc/tests/test_calibrate.c checks.
 *
 * DIRECT_PAIRS(name, alloc_type, ALLOC_CALL, free_type, FREE_CALL) defines
 *   static uint64_t name(void *alloc_sym, void *free_sym, size_t size,
 *                        uint64_t n, direct_state *st)
 * where ALLOC_CALL may use `alloc_fn` and `size`, FREE_CALL `free_fn`, `p`
 * and `size`. The sizes 48, 256 and 4096 get loops with the size a
 * constant, as the engine's fixed-N kernels have it. Returns the ops done
 * (n unless an allocation failed).
 * ------------------------------------------------------------------------- */
#ifndef AF_BENCH_DIRECT_H
#define AF_BENCH_DIRECT_H

#include "af_internal.h"
#include "afbench.h"
#include "engine/rng.h"

/* The state a direct loop carries from one call to the next. */
typedef struct direct_state {
  uint64_t rng;               /* the op stream, as the engine's worker 0 seeds it */
  uint64_t sum;               /* checksum accumulator: data read back only */
  uint64_t bytes;             /* sum of requested sizes */
} direct_state;

typedef uint64_t direct_word __attribute__((aligned(1), may_alias));

static inline __attribute__((always_inline)) void direct_write_tag(uint8_t *p, size_t size, uint64_t tag) {
  *(direct_word *)p = tag;
  *(direct_word *)(p + size - 8) = ~tag;
}

static inline __attribute__((always_inline)) uint64_t direct_read_back(const uint8_t *p, size_t size) {
  uint64_t head = *(const volatile direct_word *)p;
  uint64_t tail = *(const volatile direct_word *)(p + size - 8);
  return head ^ bench_rotl(tail, 23);
}

#define DIRECT_PAIRS(name, alloc_type, ALLOC_CALL, free_type, FREE_CALL)                          \
  static inline __attribute__((always_inline)) uint64_t name##_body(                             \
    alloc_type alloc_fn, free_type free_fn, const size_t size, uint64_t n, direct_state *st) {    \
    uint64_t rng = st->rng, sum = st->sum, i = 0;                                                 \
    for (; i < n; i++) {                                                                          \
      uint64_t r = bench_rand(&rng);                                                              \
      uint8_t *p = (uint8_t *)(ALLOC_CALL);                                                       \
      if (af_unlikely(p == NULL)) break;                                                          \
      direct_write_tag(p, size, r);                                                               \
      sum += direct_read_back(p, size);                                                           \
      FREE_CALL;                                                                                  \
    }                                                                                             \
    st->rng = rng;                                                                                \
    st->sum = sum;                                                                                \
    st->bytes += i * size;                                                                        \
    return i;                                                                                     \
  }                                                                                               \
  static __attribute__((unused)) uint64_t name(void *alloc_sym, void *free_sym, size_t size,     \
                                               uint64_t n, direct_state *st) {                    \
    alloc_type alloc_fn = (alloc_type)alloc_sym;                                                  \
    free_type free_fn = (free_type)free_sym;                                                      \
    switch (size) {                                                                               \
      case 48: return name##_body(alloc_fn, free_fn, 48, n, st);                                  \
      case 256: return name##_body(alloc_fn, free_fn, 256, n, st);                                \
      case 4096: return name##_body(alloc_fn, free_fn, 4096, n, st);                              \
      default: return name##_body(alloc_fn, free_fn, size, n, st);                                \
    }                                                                                             \
  }

/* The shape every library's chosen entry points have (see _af_entry_points). */
typedef void *(*direct_malloc_fn)(size_t size);
typedef void (*direct_free_fn)(void *ptr);

#endif /* AF_BENCH_DIRECT_H */
