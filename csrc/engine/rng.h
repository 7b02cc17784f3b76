/* ----------------------------------------------------------------------------
 * rng.h: the benchmark engine's pseudo-random numbers.
 *
 * wyrand (64-bit state, one 64x64->128 multiply per draw) for the operation
 * stream: the state update is a single add, so the loop-carried dependency
 * is one cycle and the multiply overlaps with the allocator call. splitmix64
 * turns user seeds into well-spread states. Both are pure functions of their
 * state: the same seed gives the same stream on every allocator.
 * ------------------------------------------------------------------------- */
#ifndef AF_BENCH_RNG_H
#define AF_BENCH_RNG_H

#include <stdint.h>

/* Next 64 random bits; advances *state. */
static inline uint64_t bench_rand(uint64_t *state) {
  *state += 0xa0761d6478bd642fULL;
  __uint128_t product = (__uint128_t)*state * (*state ^ 0xe7037ed1a0b428dbULL);
  return (uint64_t)(product >> 64) ^ (uint64_t)product;
}

/* A uniform integer in [0, range) from the HIGH 32 bits of r (range < 2^32):
   multiply-shift instead of a division. */
static inline uint64_t bench_below_hi(uint64_t r, uint64_t range) { return ((r >> 32) * range) >> 32; }

/* The same from the LOW 32 bits, so one draw can pick two independent things. */
static inline uint64_t bench_below_lo(uint64_t r, uint64_t range) { return ((r & 0xffffffffu) * range) >> 32; }

/* splitmix64 finalizer: a bijective mix of all 64 bits. */
static inline uint64_t bench_mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

static inline uint64_t bench_rotl(uint64_t x, unsigned k) { return (x << k) | (x >> ((64 - k) & 63)); }

#endif /* AF_BENCH_RNG_H */
