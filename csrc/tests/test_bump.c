/* test_bump.c: unit behaviour of the bump arena (bump.c). */
#include "af_internal.h"
#include "check.h"

static af_stats stats_of(af_allocator *a) {
  af_stats st;
  af_get_stats(a, &st);
  return st;
}

static af_allocator *make(size_t first, size_t max, size_t limit) {
  af_bump_options o = {.first_chunk_size = first, .max_chunk_size = max, .byte_limit = limit};
  af_error err = {0};
  af_allocator *a = af_bump_new(&o, &err);
  CHECK(a != NULL);
  return a;
}

static void test_basics(void) {
  af_allocator *a = af_bump_new(NULL, NULL);
  CHECK(a != NULL);
  CHECK(strcmp(af_name(a), "bump") == 0);
  CHECK_EQ(af_caps(a), AF_CAP_RESET | AF_CAP_TRIM | AF_CAP_OWNS);
  af_stats st = stats_of(a);
  CHECK_EQ(st.chunks, 0);
  CHECK_EQ(st.os_bytes, 0);
  /* size 0 gives unique pointers */
  void *z1 = af_alloc(a, 0, 1), *z2 = af_alloc(a, 0, 1);
  CHECK(z1 != NULL && z2 != NULL && z1 != z2);
  /* every alignment, blocks disjoint and writable */
  char *blocks[13 * 9];
  size_t sizes[13 * 9], n = 0;
  for (size_t align = 1; align <= 4096; align *= 2) {
    for (size_t size = 1; size <= 300; size += 37) {
      char *p = af_alloc(a, size, align);
      CHECK(p != NULL);
      CHECK_EQ((uintptr_t)p % align, 0);
      memset(p, (int)n, size);
      blocks[n] = p;
      sizes[n++] = size;
    }
  }
  for (size_t i = 0; i < n; i++) {
    CHECK(blocks[i][0] == (char)i && blocks[i][sizes[i] - 1] == (char)i);
    for (size_t j = i + 1; j < n; j++)
      CHECK(blocks[i] + sizes[i] <= blocks[j] || blocks[j] + sizes[j] <= blocks[i]);
  }
  st = stats_of(a);
  CHECK_EQ(st.allocs, 2 + 13 * 9);
  CHECK_EQ(st.blocks_in_use, 2 + 13 * 9);
  CHECK_EQ(st.chunks, 2); /* 64 KiB, then 128 KiB */
  CHECK_EQ(st.capacity_bytes, 192 << 10);
  CHECK_EQ(st.os_bytes, st.capacity_bytes);
  CHECK(af_owns(a, z1) == 1);
  int local = 0;
  CHECK(af_owns(a, &local) == 0);
  CHECK(af_usable_size(a, z1, 0, 1) == 0);
  CHECK_EQ(af_reset(a), AF_OK);
  st = stats_of(a);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK_EQ(st.bytes_in_use, 0);
  CHECK_EQ(st.resets, 1);
  af_destroy(a);
  af_error err = {0};
  af_bump_options bad = {.first_chunk_size = 1 << 20, .max_chunk_size = 1 << 16};
  CHECK(af_bump_new(&bad, &err) == NULL);
  CHECK_EQ(err.code, AF_ERR_INVALID);
  CHECK(strstr(err.message, "first_chunk_size") != NULL);
}

static void test_growth_and_reset(void) {
  af_allocator *a = make(64 << 10, 1 << 20, 0);
  /* 64K, 128K, ... up to the 1 MiB cap */
  for (int i = 0; i < 4000; i++) CHECK(af_alloc(a, 1000, 8) != NULL);
  af_stats st = stats_of(a);
  CHECK(st.chunks >= 5);
  CHECK_EQ(st.capacity_bytes, st.os_bytes);
  /* a request larger than any chunk gets one of its own */
  char *big = af_alloc(a, 3 << 20, 64);
  CHECK(big != NULL);
  big[0] = 1;
  big[(3 << 20) - 1] = 2;
  st = stats_of(a);
  uint64_t chunks_before = st.chunks;
  CHECK_EQ(af_reset(a), AF_OK);
  st = stats_of(a);
  CHECK_EQ(st.chunks, 1);
  CHECK(st.capacity_bytes >= (3 << 20)); /* the largest chunk is kept */
  CHECK(chunks_before > 1);
  uint64_t kept = st.capacity_bytes;
  /* a steady fill/reset cycle maps nothing */
  for (int cycle = 0; cycle < 20; cycle++) {
    for (int i = 0; i < 1000; i++) {
      char *p = af_alloc(a, 256, 16);
      p[0] = (char)i;
      p[255] = (char)i;
    }
    CHECK_EQ(af_reset(a), AF_OK);
  }
  st = stats_of(a);
  CHECK_EQ(st.chunks, 1);
  CHECK_EQ(st.capacity_bytes, kept);
  CHECK_EQ(st.resets, 21);
  af_destroy(a);
}

/* The engine's large-cycle in arena mode: 256 KiB, 1 MiB, 4 MiB in turn,
   reset every 12. Requests above the geometric size get chunks of their own;
   after a warm-up the cycle must map and unmap nothing. */
static void test_steady_large_cycle(void) {
  af_allocator *a = make(0, 0, 0);
  af_stats warm = {0};
  for (int phase = 0; phase < 8; phase++) {
    for (int i = 0; i < 12; i++) {
      size_t size = ((size_t)256 << 10) << (2 * (i % 3));
      char *p = af_alloc(a, size, 16);
      CHECK(p != NULL);
      if (p == NULL) break;
      p[0] = (char)i;
      p[size - 1] = (char)i;
    }
    CHECK_EQ(af_reset(a), AF_OK);
    if (phase == 2) warm = stats_of(a);
  }
  af_stats st = stats_of(a);
  CHECK(warm.os_maps > 0);
  CHECK_EQ(st.os_maps, warm.os_maps);
  CHECK_EQ(st.os_unmaps, warm.os_unmaps);
  CHECK_EQ(st.chunks, 1);
  CHECK_EQ(st.capacity_bytes, warm.capacity_bytes);
  CHECK(st.capacity_bytes >= (size_t)4 * ((256 + 1024 + 4096) << 10)); /* one chunk holds a phase */
  CHECK(st.capacity_bytes <= (size_t)64 << 20);                       /* within max_chunk_size */
  af_destroy(a);

  /* With a byte limit the grown chunk must still fit beside the kept one. */
  a = make(0, 0, 40 << 20);
  for (int phase = 0; phase < 6; phase++) {
    for (int i = 0; i < 12; i++) CHECK(af_alloc(a, ((size_t)256 << 10) << (2 * (i % 3)), 16) != NULL);
    CHECK_EQ(af_reset(a), AF_OK);
    if (phase == 2) warm = stats_of(a);
  }
  st = stats_of(a);
  CHECK_EQ(st.os_maps, warm.os_maps);
  CHECK(st.capacity_bytes <= (size_t)40 << 20);
  af_destroy(a);
}

static void test_calloc_after_reset(void) {
  af_allocator *a = make(16 << 10, 16 << 10, 0);
  for (int round = 0; round < 3; round++) {
    unsigned char *p = af_alloc(a, 8000, 16);
    memset(p, 0xEE, 8000);
    CHECK_EQ(af_free(a, p, 8000, 16), AF_OK); /* rolls back: the memory is dirty */
    unsigned char *q = af_calloc(a, 10000, 16);
    CHECK(q == p);
    int nonzero = 0;
    for (int i = 0; i < 10000; i++) nonzero |= q[i];
    CHECK(nonzero == 0);
    memset(q, 0xAB, 10000);
    CHECK_EQ(af_reset(a), AF_OK);
    unsigned char *r = af_calloc(a, 12000, 4096);
    nonzero = 0;
    for (int i = 0; i < 12000; i++) nonzero |= r[i];
    CHECK(nonzero == 0);
    memset(r, 0xCD, 12000);
    CHECK_EQ(af_reset(a), AF_OK);
  }
  af_destroy(a);
}

static void test_free_and_realloc(void) {
  af_allocator *a = make(0, 0, 0);
  char *p = af_alloc(a, 100, 16);
  memset(p, 7, 100);
  /* free of the newest block rolls the pointer back */
  CHECK_EQ(af_free(a, p, 100, 16), AF_OK);
  char *q = af_alloc(a, 50, 16);
  CHECK(q == p);
  /* newest block grows and shrinks in place */
  memset(q, 3, 50);
  char *r = af_realloc(a, q, 50, 4000, 16);
  CHECK(r == q);
  CHECK(r[0] == 3 && r[49] == 3);
  r = af_realloc(a, r, 4000, 10, 16);
  CHECK(r == q);
  char *s = af_alloc(a, 16, 16);
  CHECK(s == q + 16);
  /* an older block moves on growth, keeps its bytes, shrinks in place */
  memset(r, 9, 10);
  char *t = af_realloc(a, r, 10, 200, 16);
  CHECK(t != r && t != NULL);
  CHECK(t[0] == 9 && t[9] == 9);
  CHECK(af_realloc(a, s, 16, 8, 16) == s);
  af_stats st = stats_of(a);
  CHECK_EQ(st.allocs, 3);
  CHECK_EQ(st.frees, 1);
  CHECK_EQ(st.reallocs, 4);
  CHECK_EQ(st.blocks_in_use, 2);
  CHECK_EQ(st.bytes_in_use, 200 + 8);
  CHECK_EQ(st.peak_bytes_in_use, 4000);
  /* foreign pointers: refused, nothing changes */
  int local;
  CHECK_EQ(af_free(a, &local, 4, 4), AF_ERR_NOT_OWNED);
  CHECK_EQ(af_last_error(a), AF_ERR_NOT_OWNED);
  CHECK(af_realloc(a, &local, 4, 8, 4) == NULL);
  CHECK_EQ(af_free(a, t + 4096 * 64, 4, 4), AF_ERR_NOT_OWNED); /* inside the chunk, never handed out */
  af_stats after = stats_of(a);
  CHECK_EQ(after.frees, st.frees);
  CHECK_EQ(after.blocks_in_use, st.blocks_in_use);
  CHECK_EQ(after.failures, st.failures + 1);
  af_destroy(a);
}

static void test_limit(void) {
  const size_t limit = 256 << 10;
  af_allocator *a = make(64 << 10, 1 << 20, limit);
  char *blocks[1000];
  size_t n = 0;
  for (; n < 1000; n++) {
    blocks[n] = af_alloc(a, 1000, 16);
    if (blocks[n] == NULL) break;
    memset(blocks[n], (int)(n & 0xFF), 1000);
  }
  CHECK(n > 150 && n < 1000);
  CHECK_EQ(af_last_error(a), AF_ERR_LIMIT);
  af_stats st = stats_of(a);
  CHECK(st.capacity_bytes <= limit);
  CHECK_EQ(st.failures, 1);
  CHECK_EQ(st.blocks_in_use, n);
  for (size_t i = 0; i < n; i++) CHECK(blocks[i][0] == (char)(i & 0xFF) && blocks[i][999] == (char)(i & 0xFF));
  /* a request larger than the limit fails too, and nothing held moves */
  CHECK(af_alloc(a, limit, 1) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_LIMIT);
  CHECK_EQ(af_reset(a), AF_OK);
  CHECK(af_alloc(a, 1000, 16) != NULL);
  af_destroy(a);
}

static void test_trim(void) {
  af_allocator *a = make(64 << 10, 64 << 10, 0);
  for (int i = 0; i < 300; i++) memset(af_alloc(a, 1000, 16), 1, 1000);
  af_reset(a);
  af_trim(a);
  af_stats st = stats_of(a);
  CHECK_EQ(st.chunks, 0);
  CHECK_EQ(st.os_bytes, 0);
  CHECK(af_owns(a, &st) == 0);
  /* usable again after a trim */
  char *p = af_alloc(a, 40000, 16);
  memset(p, 2, 40000);
  CHECK_EQ(af_free(a, p, 40000, 16), AF_OK);
  char *q = af_alloc(a, 100, 16);
  af_trim(a); /* purges the dirty pages above the pointer, keeps the live block */
  CHECK(q[0] == 2);
  unsigned char *r = af_calloc(a, 30000, 16);
  int nonzero = 0;
  for (int i = 0; i < 30000; i++) nonzero |= r[i];
  CHECK(nonzero == 0);
  st = stats_of(a);
  CHECK_EQ(st.chunks, 1);
  af_destroy(a);
}

int main(void) {
  test_basics();
  test_growth_and_reset();
  test_steady_large_cycle();
  test_calloc_after_reset();
  test_free_and_realloc();
  test_limit();
  test_trim();
  return check_summary();
}
