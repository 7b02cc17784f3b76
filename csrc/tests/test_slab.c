/* test_slab.c: unit behaviour of the slab allocator (slab.c). */
#include "af_internal.h"
#include "check.h"

static af_stats stats_of(af_allocator *a) {
  af_stats st;
  af_get_stats(a, &st);
  return st;
}

static void test_default_classes(void) {
  af_allocator *a = af_slab_new(NULL, NULL);
  CHECK(a != NULL);
  CHECK(strcmp(af_name(a), "slab") == 0);
  CHECK_EQ(af_caps(a), AF_CAP_FREE | AF_CAP_TRIM | AF_CAP_OWNS);
  size_t n = af_slab_class_count(a);
  CHECK_EQ(n, 60);
  af_class_stats cs;
  size_t prev = 0;
  for (size_t i = 0; i < n; i++) {
    CHECK_EQ(af_slab_class_stats(a, i, &cs), AF_OK);
    CHECK(cs.class_size > prev && cs.class_size % 16 == 0);
    prev = cs.class_size;
  }
  CHECK_EQ(prev, 1 << 20);
  CHECK_EQ(af_slab_class_stats(a, n, &cs), AF_ERR_INVALID);
  /* worst-case waste: < 16 bytes up to 48, <= 25% from 49 bytes to 1 MiB */
  int bad = 0;
  double worst = 0;
  for (size_t size = 1; size <= (1 << 20); size++) {
    size_t c = af_slab_class_for(a, size);
    if (c < size) bad++;
    if (size <= 48 && c - size >= 16) bad++;
    if (size >= 49) {
      double waste = (double)(c - size) / (double)c;
      if (waste > worst) worst = waste;
    }
  }
  CHECK_EQ(bad, 0);
  CHECK(worst <= 0.25);
  CHECK_EQ(af_slab_class_for(a, 0), 16);
  CHECK_EQ(af_slab_class_for(a, 49), 64);
  CHECK_EQ(af_slab_class_for(a, 129), 160);
  CHECK_EQ(af_slab_class_for(a, 8193), 10240);
  CHECK_EQ(af_slab_class_for(a, (1 << 20) + 1), 0);
  af_destroy(a);
}

static void test_custom_classes(void) {
  static const size_t classes[] = {1024, 4096, 16384, 65536};
  af_slab_options o = {.class_sizes = classes, .class_count = 4};
  af_allocator *a = af_slab_new(&o, NULL);
  CHECK(a != NULL);
  CHECK_EQ(af_slab_class_count(a), 4);
  CHECK_EQ(af_slab_class_for(a, 2048), 4096);
  CHECK_EQ(af_slab_class_for(a, 1), 1024);
  CHECK_EQ(af_slab_class_for(a, 16385), 65536);
  CHECK_EQ(af_slab_class_for(a, 65537), 0);
  void *p = af_alloc(a, 2048, 16);
  CHECK(p != NULL);
  CHECK_EQ(af_usable_size(a, p, 2048, 16), 4096);
  memset(p, 1, 4096);
  af_class_stats cs;
  CHECK_EQ(af_slab_class_stats(a, 1, &cs), AF_OK);
  CHECK_EQ(cs.class_size, 4096);
  CHECK_EQ(cs.in_use, 1);
  CHECK_EQ(cs.misses, 1);
  CHECK_EQ(cs.slabs, 1);
  CHECK_EQ(af_free(a, p, 2048, 16), AF_OK);
  CHECK(af_alloc(a, 3000, 16) == p); /* the freed block is reused */
  CHECK_EQ(af_slab_class_stats(a, 1, &cs), AF_OK);
  CHECK_EQ(cs.hits, 1);
  CHECK_EQ(cs.free, 0);
  void *q = af_alloc(a, 4096, 16);
  CHECK(q == (char *)p + 4096);
  CHECK_EQ(af_free(a, p, 3000, 16), AF_OK);
  CHECK_EQ(af_slab_class_stats(a, 1, &cs), AF_OK);
  CHECK_EQ(cs.in_use, 1);
  CHECK_EQ(cs.free, 1);
  CHECK_EQ(af_free(a, q, 4096, 16), AF_OK); /* a small class keeps its list: most recently freed first */
  CHECK_EQ(af_slab_class_stats(a, 1, &cs), AF_OK);
  CHECK_EQ(cs.in_use, 0);
  CHECK_EQ(cs.free, 2);
  CHECK_EQ(af_free(a, q, 4096, 16), AF_ERR_NOT_OWNED); /* the list head */
  CHECK(af_alloc(a, 4000, 16) == q);
  CHECK_EQ(af_slab_class_stats(a, 1, &cs), AF_OK);
  CHECK_EQ(cs.hits, 2);
  CHECK_EQ(cs.misses, 2);
  af_destroy(a);
}

static void expect_invalid(const size_t *classes, size_t n, const char *needle) {
  af_slab_options o = {.class_sizes = classes, .class_count = n};
  af_error err = {0};
  CHECK(af_slab_new(&o, &err) == NULL);
  CHECK_EQ(err.code, AF_ERR_INVALID);
  CHECK(strstr(err.message, needle) != NULL);
}

static void test_invalid_configs(void) {
  static const size_t not16[] = {16, 40};
  static const size_t descending[] = {64, 32};
  static const size_t zero[] = {0, 32};
  static size_t dense[64];
  for (size_t i = 0; i < 64; i++) dense[i] = 16384 + 16 * i;
  expect_invalid(not16, 2, "multiple of 16");
  expect_invalid(descending, 2, "ascending");
  expect_invalid(zero, 2, "multiple of 16");
  expect_invalid(not16, 0, "class_count");
  expect_invalid(dense, 64, "too dense");
  af_slab_options o = {.class_sizes = NULL, .class_count = 3};
  af_error err = {0};
  CHECK(af_slab_new(&o, &err) == NULL);
  CHECK_EQ(err.code, AF_ERR_INVALID);
}

static void test_alignment_and_reuse(void) {
  af_allocator *a = af_slab_new(NULL, NULL);
  void *blocks[13][8];
  for (size_t ai = 0; ai <= 12; ai++) {
    size_t align = (size_t)1 << ai;
    for (size_t k = 0; k < 8; k++) {
      size_t size = k * 300;
      char *p = af_alloc(a, size, align);
      CHECK(p != NULL);
      CHECK_EQ((uintptr_t)p % align, 0);
      CHECK(af_usable_size(a, p, size, align) >= size);
      memset(p, (int)(ai * 8 + k), size);
      blocks[ai][k] = p;
    }
  }
  for (size_t ai = 0; ai <= 12; ai++)
    for (size_t k = 0; k < 8; k++) {
      size_t size = k * 300;
      unsigned char *p = blocks[ai][k];
      if (size > 0) CHECK(p[0] == ai * 8 + k && p[size - 1] == ai * 8 + k);
      CHECK_EQ(af_free(a, p, size, (size_t)1 << ai), AF_OK);
    }
  af_stats st = stats_of(a);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK_EQ(st.allocs, 13 * 8);
  /* LIFO reuse and zero-size uniqueness */
  void *x = af_alloc(a, 64, 16);
  af_free(a, x, 64, 16);
  CHECK(af_alloc(a, 60, 16) == x);
  void *z1 = af_alloc(a, 0, 1), *z2 = af_alloc(a, 0, 1);
  CHECK(z1 != z2);
  af_destroy(a);
}

static void test_foreign_pointers(void) {
  af_allocator *a = af_slab_new(NULL, NULL);
  char *p = af_alloc(a, 64, 16);
  char *q = af_alloc(a, 64, 16);
  af_stats before = stats_of(a);
  int local;
  void *heap = malloc(64);
  CHECK_EQ(af_free(a, &local, 4, 4), AF_ERR_NOT_OWNED);
  CHECK_EQ(af_free(a, heap, 64, 16), AF_ERR_NOT_OWNED);
  CHECK_EQ(af_free(a, p + 8, 56, 8), AF_ERR_NOT_OWNED);     /* misaligned */
  CHECK_EQ(af_free(a, q + 64 * 10, 64, 16), AF_ERR_NOT_OWNED); /* in the slab, never handed out */
  CHECK(af_owns(a, p + 8) == 0);
  CHECK(af_owns(a, heap) == 0);
  CHECK(af_owns(a, p) == 1);
  CHECK(af_realloc(a, p + 16, 48, 100, 16) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_NOT_OWNED);
  af_stats after = stats_of(a);
  CHECK_EQ(after.frees, before.frees);
  CHECK_EQ(after.blocks_in_use, 2);
  CHECK_EQ(af_free(a, q, 64, 16), AF_OK);
  CHECK_EQ(af_free(a, q, 64, 16), AF_ERR_NOT_OWNED); /* double free of the list head */
  memset(p, 0x33, 64); /* the refused calls left p live and intact */
  CHECK(af_owns(a, p) == 1 && p[63] == 0x33);
  CHECK_EQ(af_free(a, p, 64, 16), AF_OK);
  free(heap);
  af_destroy(a);
}

/* Every carved block boundary of a full slab is owned and every other
   16-byte step inside it is refused (the divisibility test of free/owns
   against a plain modulo), for classes of every shape. */
static void test_block_boundaries(void) {
  static const size_t classes[] = {16, 48, 80, 112, 208, 1040, 4096, 9984, 65536, 96 << 10};
  af_slab_options o = {.class_sizes = classes, .class_count = sizeof classes / sizeof classes[0]};
  af_allocator *a = af_slab_new(&o, NULL);
  CHECK(a != NULL);
  for (size_t c = 0; c < o.class_count; c++) {
    size_t size = classes[c];
    char *first = af_alloc(a, size, 16), *last = first, *next;
    CHECK(first != NULL);
    size_t blocks = 1;
    while ((next = af_alloc(a, size, 16)) == last + size) { /* consecutive while in one slab */
      last = next;
      blocks++;
    }
    CHECK_EQ(af_free(a, next, size, 16), AF_OK); /* the first block of the next slab */
    size_t span = blocks * size, bad = 0;
    for (size_t off = 0; off < span; off += 16)
      if (af_owns(a, first + off) != (off % size == 0)) bad++;
    CHECK_EQ(bad, 0);
    af_stats before = stats_of(a);
    if (size > 16) CHECK_EQ(af_free(a, first + 16, size - 16, 16), AF_ERR_NOT_OWNED);
    if (size > 32) CHECK_EQ(af_free(a, last + size / 2 / 16 * 16 + 16, 16, 16), AF_ERR_NOT_OWNED);
    CHECK_EQ(stats_of(a).frees, before.frees);
    for (size_t i = 0; i < blocks; i++) CHECK_EQ(af_free(a, first + i * size, size, 16), AF_OK);
  }
  af_stats st = stats_of(a);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK_EQ(st.allocs, st.frees);
  af_destroy(a);
}

static void test_oversize(void) {
  af_allocator *a = af_slab_new(NULL, NULL);
  size_t big = 3 << 20;
  char *p = af_alloc(a, big, 4096);
  CHECK(p != NULL);
  CHECK_EQ((uintptr_t)p % 4096, 0);
  p[0] = 1;
  p[big - 1] = 2;
  af_stats st = stats_of(a);
  CHECK_EQ(st.oversize_allocs, 1);
  CHECK_EQ(st.oversize_in_use, 1);
  CHECK_EQ(st.cache_misses, 1);
  CHECK(af_usable_size(a, p, big, 4096) >= big);
  CHECK(af_owns(a, p) == 1);
  CHECK_EQ(af_free(a, p, big, 4096), AF_OK);
  st = stats_of(a);
  CHECK_EQ(st.oversize_in_use, 0);
  CHECK_EQ(st.cached_bytes, big);
  uint64_t maps = st.os_maps;
  for (int i = 0; i < 1000; i++) {
    char *r = af_alloc(a, big - (size_t)i, 16);
    r[0] = 1;
    CHECK_EQ(af_free(a, r, big - (size_t)i, 16), AF_OK);
  }
  st = stats_of(a);
  CHECK_EQ(st.os_maps, maps); /* never a fresh mapping per request */
  CHECK_EQ(st.cache_hits, 1000);
  /* realloc between slab blocks and oversize regions keeps the contents */
  char *s = af_alloc(a, 100, 16);
  memset(s, 0x42, 100);
  char *t = af_realloc(a, s, 100, 2 << 20, 16);
  CHECK(t != NULL && t[0] == 0x42 && t[99] == 0x42);
  CHECK_EQ(stats_of(a).oversize_in_use, 1);
  char *u = af_realloc(a, t, 2 << 20, 5 << 20, 16);
  CHECK(u != NULL && u[99] == 0x42);
  char *v = af_realloc(a, u, 5 << 20, 1000, 16);
  CHECK(v != NULL && v[0] == 0x42 && v[99] == 0x42);
  CHECK(af_realloc(a, v, 1000, 1020, 16) == v); /* same class: in place */
  st = stats_of(a);
  CHECK_EQ(st.oversize_in_use, 0);
  CHECK_EQ(st.blocks_in_use, 1);
  CHECK_EQ(st.bytes_in_use, 1020);
  CHECK_EQ(st.reallocs, 4);
  af_free(a, v, 1020, 16);
  af_destroy(a);
}

static void test_zeroing(void) {
  af_slab_options o = {.zero_on_alloc = 1};
  af_allocator *a = af_slab_new(&o, NULL);
  for (int round = 0; round < 3; round++) {
    unsigned char *p = af_alloc(a, 200, 16);
    int nonzero = 0;
    for (int i = 0; i < 200; i++) nonzero |= p[i];
    CHECK(nonzero == 0);
    memset(p, 0xFF, 200);
    af_free(a, p, 200, 16);
  }
  af_destroy(a);
  a = af_slab_new(NULL, NULL);
  unsigned char *p = af_alloc(a, 500, 16);
  memset(p, 0xFF, 500);
  af_free(a, p, 500, 16);
  unsigned char *q = af_calloc(a, 500, 16);
  CHECK(q == p);
  int nonzero = 0;
  for (int i = 0; i < 500; i++) nonzero |= q[i];
  CHECK(nonzero == 0);
  af_free(a, q, 500, 16);
  af_destroy(a);
}

static void test_trim_and_limit(void) {
  af_allocator *a = af_slab_new(NULL, NULL);
  enum { N = 5000 };
  static void *blocks[N];
  for (int i = 0; i < N; i++) blocks[i] = af_alloc(a, 100 + (size_t)(i % 7) * 200, 16);
  void *big = af_alloc(a, 2 << 20, 16);
  af_stats st = stats_of(a);
  CHECK(st.slabs > 7);
  for (int i = 0; i < N; i++) CHECK_EQ(af_free(a, blocks[i], 100 + (size_t)(i % 7) * 200, 16), AF_OK);
  af_free(a, big, 2 << 20, 16);
  af_trim(a);
  st = stats_of(a);
  CHECK_EQ(st.slabs, 0);
  CHECK_EQ(st.os_bytes, 0);
  CHECK_EQ(st.cached_bytes, 0);
  CHECK_EQ(st.os_maps, st.os_unmaps);
  af_class_stats cs;
  af_slab_class_stats(a, 6, &cs);
  CHECK_EQ(cs.free, 0);
  CHECK_EQ(cs.slabs, 0);
  /* still works after a trim; a slab with a live block stays */
  void *x = af_alloc(a, 64, 16);
  void *y = af_alloc(a, 64, 16);
  af_free(a, y, 64, 16);
  af_trim(a);
  CHECK_EQ(stats_of(a).slabs, 1);
  CHECK(af_owns(a, x) == 1);
  af_free(a, x, 64, 16);
  af_destroy(a);

  const size_t limit = 1 << 20;
  af_slab_options o = {.byte_limit = limit};
  a = af_slab_new(&o, NULL);
  size_t n = 0;
  while (n < 100000 && af_alloc(a, 64, 16) != NULL) n++;
  CHECK(n > 1000 && n < 100000);
  CHECK_EQ(af_last_error(a), AF_ERR_LIMIT);
  st = stats_of(a);
  CHECK(st.os_bytes <= limit);
  CHECK(af_alloc(a, 2 << 20, 16) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_LIMIT);
  CHECK_EQ(stats_of(a).failures, 2);
  af_destroy(a);
}

static void test_not_a_slab(void) {
  af_allocator *b = af_bump_new(NULL, NULL);
  af_class_stats cs;
  CHECK_EQ(af_slab_class_count(b), 0);
  CHECK_EQ(af_slab_class_stats(b, 0, &cs), AF_ERR_UNSUPPORTED);
  CHECK_EQ(af_slab_class_for(b, 64), 0);
  af_destroy(b);
  af_allocator *l = af_locked_new(af_slab_new(NULL, NULL), NULL);
  CHECK_EQ(af_slab_class_count(l), 60);
  CHECK_EQ(af_slab_class_for(l, 100), 112);
  void *p = af_alloc(l, 100, 16);
  CHECK_EQ(af_slab_class_stats(l, 6, &cs), AF_OK);
  CHECK_EQ(cs.in_use, 1);
  af_free(l, p, 100, 16);
  af_destroy(l);
}

/* In a class of more than 1 MiB of slabs, a slab whose blocks are all free is
   reset: after frees in any order the next allocations come in address order
   again; a late double free into the empty slab is refused; calloc of a
   block used before reads zero. A smaller class keeps its lists (most
   recently freed first). */
static void test_empty_slab_reset(void) {
  enum { N = 20000, SMALL = 1000 }; /* 64 B blocks: twenty 64 KiB slabs (1.25 MiB); one */
  af_allocator *a = af_slab_new(NULL, NULL);
  static char *p[N];
  uint64_t rng = 99;
  for (int round = 0; round < 3; round++) {
    for (int i = 0; i < N; i++) {
      p[i] = af_alloc(a, 64, 16);
      CHECK(p[i] != NULL);
      memset(p[i], 0xab, 64);
    }
    /* within a slab, blocks come in address order, one after the other */
    int out_of_order = 0;
    for (int i = 1; i < N; i++)
      if (p[i] != p[i - 1] + 64 && ((uintptr_t)p[i] & 0xffff) != 0) out_of_order++;
    CHECK_EQ(out_of_order, 0);
    for (int i = N - 1; i > 0; i--) { /* free in a random order */
      int j = (int)(test_rand(&rng) % (uint64_t)(i + 1));
      char *t = p[i];
      p[i] = p[j];
      p[j] = t;
    }
    for (int i = 0; i < N; i++) CHECK_EQ(af_free(a, p[i], 64, 16), AF_OK);
    CHECK_EQ(af_free(a, p[N - 1], 64, 16), AF_ERR_NOT_OWNED); /* its slab is empty now */
    CHECK_EQ(af_free(a, p[0], 64, 16), AF_ERR_NOT_OWNED);
    CHECK(af_owns(a, p[0]) == 0);
  }
  af_stats st = stats_of(a);
  CHECK_EQ(st.allocs, 3 * N);
  CHECK_EQ(st.frees, 3 * N);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK(st.slabs <= 21); /* the same slabs served every round */
  af_class_stats cs = {0};
  for (size_t i = 0; i < af_slab_class_count(a) && cs.class_size != 64; i++) af_slab_class_stats(a, i, &cs);
  CHECK_EQ(cs.class_size, 64);
  CHECK_EQ(cs.in_use, 0);
  CHECK_EQ(cs.free, 0); /* reset slabs hold no free list */
  CHECK_EQ(cs.misses, 3 * N);
  /* calloc of blocks written before (the slab was reset, not fresh) reads zero */
  for (int i = 0; i < 100; i++) {
    unsigned char *z = af_calloc(a, 64, 16);
    int nonzero = 0;
    for (int k = 0; k < 64; k++) nonzero |= z[k];
    CHECK_EQ(nonzero, 0);
    p[i] = (char *)z;
  }
  for (int i = 0; i < 100; i++) CHECK_EQ(af_free(a, p[i], 64, 16), AF_OK);
  af_trim(a);
  CHECK_EQ(stats_of(a).slabs, 0);
  /* one slab: its list stays, so the block freed last comes back first */
  for (int i = 0; i < SMALL; i++) p[i] = af_alloc(a, 64, 16);
  for (int i = 0; i < SMALL; i++) CHECK_EQ(af_free(a, p[(i * 7) % SMALL], 64, 16), AF_OK); /* 7 is coprime */
  char *last = p[((SMALL - 1) * 7) % SMALL];
  CHECK(af_alloc(a, 64, 16) == last);
  CHECK_EQ(af_free(a, last, 64, 16), AF_OK);
  af_destroy(a);
}

int main(void) {
  test_default_classes();
  test_custom_classes();
  test_invalid_configs();
  test_alignment_and_reuse();
  test_foreign_pointers();
  test_block_boundaries();
  test_oversize();
  test_zeroing();
  test_trim_and_limit();
  test_not_a_slab();
  test_empty_slab_reset();
  return check_summary();
}
