/* test_large.c: unit behaviour of the large-region cache (large.c). */
#include "af_internal.h"
#include "check.h"
#include "os.h"

#include <time.h>

static af_stats stats_of(af_allocator *a) {
  af_stats st;
  af_get_stats(a, &st);
  return st;
}

static af_allocator *make(size_t max_cached, uint64_t purge_delay, size_t limit) {
  af_large_options o = {.max_cached_bytes = max_cached, .purge_delay_ns = purge_delay, .byte_limit = limit};
  af_allocator *a = af_large_new(&o, NULL);
  CHECK(a != NULL);
  return a;
}

static void sleep_ms(long ms) {
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

static void test_sizes_and_alignment(void) {
  af_allocator *a = af_large_new(NULL, NULL);
  CHECK(strcmp(af_name(a), "large") == 0);
  CHECK_EQ(af_caps(a), AF_CAP_FREE | AF_CAP_TRIM | AF_CAP_OWNS);
  static const size_t sizes[] = {0, 1, 4095, 4096, 4097, 5 * 4096 + 1, 100000, 256 << 10, (1 << 20) + 1, 3 << 20};
  void *blocks[10];
  for (size_t i = 0; i < 10; i++) {
    size_t align = (size_t)1 << (i + 3);
    blocks[i] = af_alloc(a, sizes[i], align > 4096 ? 4096 : align);
    CHECK(blocks[i] != NULL);
    CHECK_EQ((uintptr_t)blocks[i] % 4096, 0);
    size_t usable = af_usable_size(a, blocks[i], sizes[i], 16);
    size_t pages = sizes[i] == 0 ? 4096 : (sizes[i] + 4095) / 4096 * 4096;
    CHECK(usable >= pages && usable % 4096 == 0);
    CHECK((usable - pages) * 4 <= usable); /* bucket rounding wastes at most 25% */
    memset(blocks[i], (int)i, sizes[i]);
    CHECK(af_owns(a, blocks[i]) == 1);
  }
  af_stats st = stats_of(a);
  CHECK_EQ(st.os_maps, 10);
  CHECK_EQ(st.cache_misses, 10);
  CHECK_EQ(st.blocks_in_use, 10);
  for (size_t i = 0; i < 10; i++) CHECK_EQ(af_free(a, blocks[i], sizes[i], 16), AF_OK);
  st = stats_of(a);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK_EQ(st.bytes_in_use, 0);
  CHECK_EQ(st.cached_bytes, st.os_bytes);
  CHECK_EQ(af_reset(a), AF_ERR_UNSUPPORTED);
  af_destroy(a);
}

static void test_steady_cycle(void) {
  af_allocator *a = af_large_new(NULL, NULL);
  static const size_t sizes[] = {256 << 10, 1 << 20, 4 << 20};
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < 3; i++) {
      char *p = af_alloc(a, sizes[i], 16);
      p[0] = 1;
      p[sizes[i] - 1] = 2;
      af_free(a, p, sizes[i], 16);
    }
  }
  af_stats warm = stats_of(a);
  CHECK_EQ(warm.os_maps, 3);
  for (int round = 0; round < 3000; round++) {
    size_t size = sizes[round % 3] - (size_t)(round % 7) * 1000; /* same bucket, other sizes */
    char *p = af_alloc(a, size, 64);
    p[0] = 1;
    p[size - 1] = 2;
    CHECK_EQ(af_free(a, p, size, 64), AF_OK);
  }
  af_stats st = stats_of(a);
  CHECK_EQ(st.os_maps, warm.os_maps);
  CHECK_EQ(st.os_unmaps, 0);
  CHECK_EQ(st.cache_hits, warm.cache_hits + 3000);
  CHECK_EQ(st.os_bytes, (256 << 10) + (1 << 20) + (4 << 20));
  af_trim(a);
  st = stats_of(a);
  CHECK_EQ(st.cached_bytes, 0);
  CHECK_EQ(st.os_bytes, 0);
  CHECK_EQ(st.os_unmaps, 3);
  af_destroy(a);
}

static void test_foreign_pointers(void) {
  af_allocator *a = af_large_new(NULL, NULL);
  char *p = af_alloc(a, 10000, 16);
  af_stats before = stats_of(a);
  int local;
  CHECK_EQ(af_free(a, &local, 4, 4), AF_ERR_NOT_OWNED);
  CHECK_EQ(af_free(a, p + 4096, 100, 16), AF_ERR_NOT_OWNED); /* interior */
  CHECK_EQ(af_free(a, p + 16, 100, 16), AF_ERR_NOT_OWNED);
  CHECK(af_owns(a, p + 16) == 0);
  CHECK(af_usable_size(a, p + 16, 1, 16) == 0);
  CHECK(af_realloc(a, &local, 4, 8, 4) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_NOT_OWNED);
  af_stats after = stats_of(a);
  CHECK_EQ(after.frees, before.frees);
  CHECK_EQ(after.blocks_in_use, 1);
  CHECK_EQ(af_free(a, p, 10000, 16), AF_OK);
  CHECK_EQ(af_free(a, p, 10000, 16), AF_ERR_NOT_OWNED); /* double free: cached, not live */
  CHECK(af_owns(a, p) == 0);
  after = stats_of(a);
  CHECK_EQ(after.frees, 1);
  CHECK_EQ(after.blocks_in_use, 0);
  af_destroy(a);
}

static void test_calloc_and_realloc(void) {
  af_allocator *a = make(0, UINT64_MAX, 0);
  unsigned char *p = af_alloc(a, 50000, 16);
  memset(p, 0xAA, 50000);
  af_free(a, p, 50000, 16);
  unsigned char *q = af_calloc(a, 50000, 16); /* the same dirty region comes back zeroed */
  CHECK(q == p);
  int nonzero = 0;
  for (int i = 0; i < 50000; i++) nonzero |= q[i];
  CHECK(nonzero == 0);
  memset(q, 0x11, 50000);
  /* same bucket: in place; other bucket: moves with the contents */
  CHECK(af_realloc(a, q, 50000, 51000, 16) == q);
  unsigned char *r = af_realloc(a, q, 51000, 400000, 16);
  CHECK(r != NULL && r != q);
  CHECK(r[0] == 0x11 && r[49999] == 0x11);
  CHECK(af_owns(a, q) == 0);
  r = af_realloc(a, r, 400000, 100, 16);
  CHECK(r != NULL && r[99] == 0x11);
  af_stats st = stats_of(a);
  CHECK_EQ(st.reallocs, 3);
  CHECK_EQ(st.bytes_in_use, 100);
  CHECK_EQ(st.blocks_in_use, 1);
  CHECK_EQ(st.purged_bytes, 0);
  af_free(a, r, 100, 16);
  af_destroy(a);
}

static void test_cache_bound_and_limit(void) {
  af_allocator *a = make(1 << 20, 0, 0);
  void *p[3];
  for (int i = 0; i < 3; i++) p[i] = af_alloc(a, 512 << 10, 16);
  for (int i = 0; i < 3; i++) af_free(a, p[i], 512 << 10, 16);
  af_stats st = stats_of(a);
  CHECK_EQ(st.cached_bytes, 1 << 20);
  CHECK_EQ(st.os_unmaps, 1);
  CHECK_EQ(st.os_bytes, 1 << 20);
  /* a region larger than the whole cache is unmapped at once */
  void *huge = af_alloc(a, 2 << 20, 16);
  af_free(a, huge, 2 << 20, 16);
  st = stats_of(a);
  CHECK_EQ(st.os_unmaps, 2);
  CHECK_EQ(st.cached_bytes, 1 << 20);
  af_destroy(a);

  a = make(0, 0, 2 << 20);
  void *x = af_alloc(a, 1 << 20, 16), *y = af_alloc(a, 1 << 20, 16);
  CHECK(x != NULL && y != NULL);
  CHECK(af_alloc(a, 4096, 16) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_LIMIT);
  CHECK_EQ(af_free(a, x, 1 << 20, 16), AF_OK);
  void *z = af_alloc(a, 512 << 10, 16); /* evicts the cached region to stay under the limit */
  CHECK(z != NULL);
  st = stats_of(a);
  CHECK(st.os_bytes <= (2 << 20));
  CHECK_EQ(st.failures, 1);
  CHECK_EQ(st.cached_bytes, 0);
  af_free(a, y, 1 << 20, 16);
  af_free(a, z, 512 << 10, 16);
  af_destroy(a);
}

static void test_purge(void) {
  /* never purges with an infinite delay */
  af_allocator *a = make(0, UINT64_MAX, 0);
  char *p = af_alloc(a, 1 << 20, 16);
  af_free(a, p, 1 << 20, 16);
  for (int i = 0; i < 200; i++) af_free(a, af_alloc(a, 8192, 16), 8192, 16);
  CHECK_EQ(stats_of(a).purged_bytes, 0);
  af_destroy(a);

  /* purges a region idle longer than the delay; its pages read zero again */
  a = make(0, 1000000 /* 1 ms */, 0);
  p = af_alloc(a, 1 << 20, 16);
  memset(p, 0x77, 1 << 20);
  af_free(a, p, 1 << 20, 16);
  af_stats st = stats_of(a);
  CHECK_EQ(st.purged_bytes, 0);
  for (int tries = 0; tries < 2000 && stats_of(a).purged_bytes < (1 << 20); tries++) {
    sleep_ms(1);
    for (int i = 0; i < 40; i++) af_free(a, af_alloc(a, 8192, 16), 8192, 16);
  }
  st = stats_of(a);
  CHECK(st.purged_bytes >= (1 << 20));
  CHECK_EQ(st.os_unmaps, 0);
  unsigned char *q = af_alloc(a, 1 << 20, 16);
  CHECK(q == (unsigned char *)p);
  int nonzero = 0;
  for (int i = 0; i < (1 << 20); i += 512) nonzero |= q[i];
  CHECK(nonzero == 0);
  af_free(a, q, 1 << 20, 16);
  af_destroy(a);
}

/* Default (adaptive) bound: a live set above 256 MiB comes back from the
   cache in full, with no unmap and no new mapping (no cliff). The regions are
   only touched at one byte, so this costs address space, not memory. */
static void test_adaptive_bound(void) {
  enum { REGIONS = 320, SIZE = 1 << 20 }; /* 320 MiB: above the 256 MiB floor */
  af_allocator *a = make(0, UINT64_MAX, 0);
  static char *p[REGIONS];
  for (int round = 0; round < 2; round++) {
    for (int i = 0; i < REGIONS; i++) {
      p[i] = af_alloc(a, SIZE, 16);
      CHECK(p[i] != NULL);
      p[i][0] = 1;
    }
    for (int i = 0; i < REGIONS; i++) CHECK_EQ(af_free(a, p[(i * 7) % REGIONS], SIZE, 16), AF_OK); /* 7 is coprime */
  }
  af_stats st = stats_of(a);
  CHECK_EQ(st.os_maps, REGIONS);
  CHECK_EQ(st.os_unmaps, 0);
  CHECK_EQ(st.cache_hits, REGIONS);
  CHECK_EQ(st.cached_bytes, (uint64_t)REGIONS * SIZE);
  af_destroy(a);

  /* an explicit max_cached_bytes stays a fixed bound */
  a = make(64 << 20, UINT64_MAX, 0);
  for (int i = 0; i < 128; i++) p[i] = af_alloc(a, SIZE, 16);
  for (int i = 0; i < 128; i++) af_free(a, p[i], SIZE, 16);
  st = stats_of(a);
  CHECK_EQ(st.cached_bytes, 64 << 20);
  CHECK_EQ(st.os_unmaps, 64);
  af_destroy(a);
}

/* Idle memory goes back to the OS within the purge delay (the next calls
   after it purge: there is no background thread), whatever the bound: the
   resident set falls, the mappings stay for reuse. When the peak that let
   the cache grow expires (two windows of 16 purge delays), the cache shrinks
   back to the floor plus the current peak. */
static void test_idle_return(void) {
  enum { REGIONS = 48, SIZE = 1 << 20, BIG = 300 };
  const uint64_t delay_ns = 20 * 1000000ull; /* 20 ms */
  af_allocator *a = make(0, delay_ns, 0);
  static char *p[BIG];
  for (int i = 0; i < REGIONS; i++) {
    p[i] = af_alloc(a, SIZE, 16);
    memset(p[i], 0x5a, SIZE);
  }
  size_t rss_live = _af_os_rss_bytes();
  for (int i = 0; i < REGIONS; i++) af_free(a, p[i], SIZE, 16);
  af_stats st = stats_of(a);
  CHECK_EQ(st.cached_bytes, (uint64_t)REGIONS * SIZE);
  CHECK_EQ(st.purged_bytes, 0);
  size_t rss_cached = _af_os_rss_bytes();
  CHECK(rss_cached + (8u << 20) > rss_live); /* freed into the cache: still resident */
  sleep_ms(3 * 20);                          /* idle for longer than the delay */
  for (int i = 0; i < 64; i++) af_free(a, af_alloc(a, 8192, 16), 8192, 16); /* the next calls */
  st = stats_of(a);
  size_t rss_idle = _af_os_rss_bytes();
  CHECK(st.purged_bytes >= (uint64_t)REGIONS * SIZE);
  CHECK_EQ(st.os_unmaps, 0);
  CHECK(st.cached_bytes >= (uint64_t)REGIONS * SIZE);
  CHECK(rss_idle + (REGIONS - 8) * (size_t)SIZE < rss_cached); /* at least 40 of the 48 MiB went back */
  printf("idle return: RSS %.1f MiB live, %.1f MiB cached, %.1f MiB after %d ms idle\n", rss_live / 1048576.0,
         rss_cached / 1048576.0, rss_idle / 1048576.0, 3 * 20);
  /* purged regions are reused: no new mapping, pages read zero */
  char *q = af_alloc(a, SIZE, 16);
  CHECK(q[0] == 0 && q[SIZE - 1] == 0);
  CHECK_EQ(stats_of(a).os_maps, REGIONS + 1); /* + the 8 KiB region */
  af_free(a, q, SIZE, 16);

  /* a peak above the floor lets 300 MiB stay cached; two windows later it has expired */
  for (int i = 0; i < BIG; i++) {
    p[i] = af_alloc(a, SIZE, 16);
    p[i][0] = 1;
  }
  for (int i = 0; i < BIG; i++) af_free(a, p[i], SIZE, 16);
  CHECK_EQ(stats_of(a).cached_bytes, (uint64_t)BIG * SIZE + 8192);
  for (int tries = 0; tries < 200 && stats_of(a).cached_bytes > ((uint64_t)256 << 20) + (1 << 20); tries++) {
    sleep_ms(20);
    for (int i = 0; i < 64; i++) af_free(a, af_alloc(a, 8192, 16), 8192, 16);
  }
  st = stats_of(a);
  CHECK(st.cached_bytes <= ((uint64_t)256 << 20) + (1 << 20));
  CHECK(st.os_unmaps > 0);
  af_destroy(a);
}

int main(void) {
  test_sizes_and_alignment();
  test_steady_cycle();
  test_foreign_pointers();
  test_calloc_and_realloc();
  test_cache_bound_and_limit();
  test_purge();
  test_adaptive_bound();
  test_idle_return();
  return check_summary();
}
