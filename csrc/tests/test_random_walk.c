/* test_random_walk.c: a long random walk of alloc/calloc/realloc/free (and
 * reset for the bump arena) against each of our allocators, with random sizes
 * and alignments. Every live block carries a cookie pattern that is checked on
 * free, on realloc and at the end; alignment, non-overlap and the allocator's
 * stats are checked against the walk's own model. 1,000,000 operations per
 * allocator at AF_TEST_SCALE=1. */
#include "af_internal.h"
#include "check.h"

typedef struct block {
  unsigned char *ptr;         /* NULL: slot empty */
  size_t size, align;
  uint64_t cookie;
} block;

typedef struct model {
  uint64_t allocs, frees, reallocs, failures, resets, blocks, bytes;
} model;

typedef struct walk {
  const char *name;
  af_allocator *a;
  size_t slots;
  size_t max_small, max_medium, max_large; /* size ranges */
  unsigned pct_medium, pct_large;          /* how often the bigger ranges are drawn */
  unsigned reset_every;                    /* 1 in N ops resets (bump); 0: never */
  size_t limit;                            /* os_bytes must stay below (0: none) */
} walk;

/* The pattern byte at offset i of a block with this cookie. */
static inline unsigned char pattern(uint64_t cookie, size_t i) { return (unsigned char)((cookie >> ((i & 7) * 8)) + i); }

/* Big blocks get their first and last 256 bytes patterned: enough to catch
   overlaps and stray writes without making the walk memory-bound. */
#define EDGE 256

static void fill(const block *b) {
  size_t n = b->size;
  if (n <= 2 * EDGE) {
    for (size_t i = 0; i < n; i++) b->ptr[i] = pattern(b->cookie, i);
  } else {
    for (size_t i = 0; i < EDGE; i++) b->ptr[i] = pattern(b->cookie, i);
    for (size_t i = n - EDGE; i < n; i++) b->ptr[i] = pattern(b->cookie, i);
  }
}

/* True if the first `n` bytes (of those patterned) still hold the cookie. */
static bool intact(const block *b, size_t n) {
  if (n > b->size) n = b->size;
  size_t head = b->size <= 2 * EDGE || n <= EDGE ? n : EDGE;
  for (size_t i = 0; i < head; i++)
    if (b->ptr[i] != pattern(b->cookie, i)) return false;
  if (b->size > 2 * EDGE && n == b->size)
    for (size_t i = n - EDGE; i < n; i++)
      if (b->ptr[i] != pattern(b->cookie, i)) return false;
  return true;
}

static size_t draw_size(const walk *w, uint64_t *rng) {
  uint64_t r = test_rand(rng);
  unsigned pick = (unsigned)(r % 100);
  size_t max = pick < w->pct_large ? w->max_large : pick < w->pct_large + w->pct_medium ? w->max_medium : w->max_small;
  /* log-uniform-ish: a random number of low bits */
  unsigned bits = (unsigned)((r >> 8) % (af_log2(max) + 1));
  size_t size = (size_t)(test_rand(rng) & (((size_t)2 << bits) - 1));
  return size > max ? max : size;
}

static size_t draw_align(uint64_t *rng) {
  uint64_t r = test_rand(rng);
  if (r % 10 < 8) return (size_t)1 << (r >> 8) % 5; /* 1..16 mostly */
  return (size_t)1 << (r >> 8) % 13;                 /* up to 4096 */
}

static void check_stats(const walk *w, const model *m) {
  af_stats st;
  af_get_stats(w->a, &st);
  CHECK_EQ(st.allocs, m->allocs);
  CHECK_EQ(st.frees, m->frees);
  CHECK_EQ(st.reallocs, m->reallocs);
  CHECK_EQ(st.failures, m->failures);
  CHECK_EQ(st.resets, m->resets);
  CHECK_EQ(st.blocks_in_use, m->blocks);
  CHECK_EQ(st.bytes_in_use, m->bytes);
  CHECK(st.peak_bytes_in_use >= m->bytes);
  if (w->limit != 0) CHECK(st.os_bytes <= w->limit);
}

static int by_address(const void *x, const void *y) {
  const block *a = x, *b = y;
  return a->ptr < b->ptr ? -1 : a->ptr > b->ptr;
}

/* Every live block intact, and no two overlap. */
static void check_all(const walk *w, block *blocks) {
  block *sorted = malloc(w->slots * sizeof *sorted);
  size_t n = 0;
  for (size_t i = 0; i < w->slots; i++) {
    if (blocks[i].ptr == NULL) continue;
    CHECK(intact(&blocks[i], blocks[i].size));
    sorted[n++] = blocks[i];
  }
  qsort(sorted, n, sizeof *sorted, by_address);
  for (size_t i = 1; i < n; i++) CHECK(sorted[i - 1].ptr + sorted[i - 1].size <= sorted[i].ptr);
  free(sorted);
}

static void run(walk *w, uint64_t ops, uint64_t seed) {
  block *blocks = calloc(w->slots, sizeof *blocks);
  model m = {0};
  uint64_t rng = seed, cookie = seed * 7919;
  uint64_t limit_failures = 0;
  for (uint64_t op = 0; op < ops; op++) {
    uint64_t r = test_rand(&rng);
    if (w->reset_every != 0 && r % w->reset_every == 0) {
      check_all(w, blocks);
      CHECK_EQ(af_reset(w->a), AF_OK);
      memset(blocks, 0, w->slots * sizeof *blocks);
      m.resets++;
      m.blocks = m.bytes = 0;
      continue;
    }
    block *b = &blocks[(r >> 16) % w->slots];
    unsigned action = (unsigned)((r >> 40) % 100);
    if (b->ptr == NULL) {
      size_t size = draw_size(w, &rng), align = draw_align(&rng);
      bool zeroed = action < 15;
      unsigned char *p = zeroed ? af_calloc(w->a, size, align) : af_alloc(w->a, size, align);
      if (p == NULL) {
        m.failures++;
        if (af_last_error(w->a) == AF_ERR_LIMIT) limit_failures++;
        continue;
      }
      CHECK_EQ((uintptr_t)p % align, 0);
      if (zeroed) {
        bool zero = true;
        for (size_t i = 0; i < size && i < 2 * EDGE; i++) zero &= p[i] == 0;
        if (size > 0) zero &= p[size - 1] == 0;
        CHECK(zero);
      }
      *b = (block){.ptr = p, .size = size, .align = align, .cookie = ++cookie};
      fill(b);
      m.allocs++;
      m.blocks++;
      m.bytes += size;
    } else if (action < 60) {
      CHECK(intact(b, b->size));
      CHECK_EQ(af_free(w->a, b->ptr, b->size, b->align), AF_OK);
      m.frees++;
      m.blocks--;
      m.bytes -= b->size;
      b->ptr = NULL;
    } else if (action < 90) {
      size_t size = draw_size(w, &rng);
      unsigned char *p = af_realloc(w->a, b->ptr, b->size, size, b->align);
      if (p == NULL) {
        m.failures++;
        if (af_last_error(w->a) == AF_ERR_LIMIT) limit_failures++;
        CHECK(intact(b, b->size)); /* a failed realloc leaves the block alone */
        continue;
      }
      CHECK_EQ((uintptr_t)p % b->align, 0);
      block moved = *b;
      moved.ptr = p;
      CHECK(intact(&moved, size < b->size ? size : b->size)); /* the common prefix survived */
      m.reallocs++;
      m.bytes = m.bytes - b->size + size;
      *b = (block){.ptr = p, .size = size, .align = b->align, .cookie = ++cookie};
      fill(b);
    } else {
      CHECK(intact(b, b->size));
      CHECK(af_usable_size(w->a, b->ptr, b->size, b->align) >= b->size);
      CHECK(af_owns(w->a, b->ptr) == 1);
    }
    if (op % 50000 == 0) {
      check_stats(w, &m);
      check_all(w, blocks);
    }
  }
  check_stats(w, &m);
  check_all(w, blocks);
  if (w->limit != 0) CHECK(limit_failures > 0); /* the limit was actually exercised */
  CHECK_EQ(limit_failures, m.failures);           /* and it is the only reason anything failed */
  /* free everything: the allocator ends balanced */
  for (size_t i = 0; i < w->slots; i++) {
    if (blocks[i].ptr == NULL) continue;
    CHECK_EQ(af_free(w->a, blocks[i].ptr, blocks[i].size, blocks[i].align), AF_OK);
  }
  af_stats st;
  af_get_stats(w->a, &st);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK_EQ(st.bytes_in_use, 0);
  if (af_caps(w->a) & AF_CAP_FREE) {
    af_trim(w->a);
    af_get_stats(w->a, &st);
    CHECK_EQ(st.os_bytes, 0);
    CHECK_EQ(st.os_maps, st.os_unmaps);
  }
  printf("%-12s %llu ops, %llu allocs, %llu reallocs, %llu failures\n", w->name, (unsigned long long)ops,
         (unsigned long long)m.allocs, (unsigned long long)m.reallocs, (unsigned long long)m.failures);
  free(blocks);
  af_destroy(w->a);
}

int main(void) {
  uint64_t ops = scaled(1000000, 20000);
  walk bump = {.name = "bump", .a = af_bump_new(NULL, NULL), .slots = 1024, .max_small = 128,
               .max_medium = 4096, .max_large = 256 << 10, .pct_medium = 25, .pct_large = 1, .reset_every = 3000};
  run(&bump, ops, 1);
  walk slab = {.name = "slab", .a = af_slab_new(NULL, NULL), .slots = 4096, .max_small = 256,
               .max_medium = 64 << 10, .max_large = 3 << 20, .pct_medium = 20, .pct_large = 1};
  run(&slab, ops, 2);
  walk large = {.name = "large", .a = af_large_new(NULL, NULL), .slots = 64, .max_small = 64 << 10,
                .max_medium = 1 << 20, .max_large = 8 << 20, .pct_medium = 40, .pct_large = 10};
  run(&large, ops, 3);
  /* Few live blocks spread over many classes: slabs empty (and are reset) all the time. */
  walk sparse = {.name = "slab-sparse", .a = af_slab_new(NULL, NULL), .slots = 24, .max_small = 2048,
                 .max_medium = 64 << 10, .max_large = 1 << 20, .pct_medium = 20, .pct_large = 2};
  run(&sparse, ops, 5);
  af_slab_options limited = {.byte_limit = 4 << 20};
  walk slab_limit = {.name = "slab-limit", .a = af_slab_new(&limited, NULL), .slots = 2048, .max_small = 512,
                     .max_medium = 64 << 10, .max_large = 2 << 20, .pct_medium = 30, .pct_large = 2,
                     .limit = 4 << 20};
  run(&slab_limit, ops, 4);
  return check_summary();
}
