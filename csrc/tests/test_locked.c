/* test_locked.c: af_locked_new (locked.c). 8 threads share one wrapped
 * instance of each of bump, slab and large, hand blocks to each other through
 * a shared exchange array, and verify every block's contents before freeing
 * it; plus the wrapper's name, caps, error forwarding and unwrapping. */
#include "af_internal.h"
#include "check.h"

#include <pthread.h>

#define THREADS 8
#define EXCHANGE 64

typedef struct shared {
  af_allocator *a;
  size_t min_size, max_size;
  uint64_t ops_per_thread;
  _Atomic(unsigned char *) exchange[EXCHANGE];
} shared;

typedef struct worker {
  shared *s;
  unsigned id;
  uint64_t allocs, frees, bad;
} worker;

/* Every block starts with its size and a seed; the rest is derived from it. */
typedef struct header {
  uint64_t size, seed;
} header;

static inline unsigned char byte_at(uint64_t seed, size_t i) { return (unsigned char)(seed * 31 + i * 7); }

static void stamp(unsigned char *p, size_t size, uint64_t seed) {
  header h = {size, seed};
  memcpy(p, &h, sizeof h);
  for (size_t i = sizeof h; i < size && i < 1024; i++) p[i] = byte_at(seed, i);
  p[size - 1] = byte_at(seed, size - 1);
}

static bool verify(const unsigned char *p, size_t *size) {
  header h;
  memcpy(&h, p, sizeof h);
  *size = h.size;
  for (size_t i = sizeof h; i < h.size && i < 1024; i++)
    if (p[i] != byte_at(h.seed, i)) return false;
  return p[h.size - 1] == byte_at(h.seed, h.size - 1);
}

static void *work(void *arg) {
  worker *w = arg;
  shared *s = w->s;
  uint64_t rng = w->id * 1000003u + 17;
  for (uint64_t op = 0; op < s->ops_per_thread; op++) {
    uint64_t r = test_rand(&rng);
    size_t size = s->min_size + (size_t)(r % (s->max_size - s->min_size + 1));
    unsigned char *p = (r >> 40) % 8 == 0 ? af_calloc(s->a, size, 16) : af_alloc(s->a, size, 16);
    if (p == NULL) {
      w->bad++;
      continue;
    }
    w->allocs++;
    stamp(p, size, r);
    /* hand it over; whatever was there (often another thread's) is checked and freed */
    unsigned char *old = atomic_exchange(&s->exchange[(r >> 20) % EXCHANGE], p);
    if (old != NULL) {
      size_t old_size;
      if (!verify(old, &old_size)) w->bad++;
      if (af_free(s->a, old, old_size, 16) != AF_OK) w->bad++;
      w->frees++;
    }
    if (op % 1000 == 0) {
      af_stats st;
      af_get_stats(s->a, &st); /* stats under the lock while others allocate */
      if (st.blocks_in_use > st.allocs) w->bad++;
    }
  }
  return NULL;
}

static void share(const char *name, af_allocator *inner, size_t min_size, size_t max_size) {
  af_allocator *a = af_locked_new(inner, NULL);
  CHECK(a != NULL);
  CHECK(strcmp(af_name(a), name) == 0);
  CHECK_EQ(af_caps(a), inner->vt->caps | AF_CAP_THREAD_SAFE);
  CHECK(_af_inner_acquire(a) == inner);
  _af_inner_release(a);
  CHECK(_af_inner_acquire(inner) == inner);
  _af_inner_release(inner);
  shared *s = calloc(1, sizeof *s);
  s->a = a;
  s->min_size = min_size;
  s->max_size = max_size;
  s->ops_per_thread = scaled(40000, 1000);
  pthread_t threads[THREADS];
  worker workers[THREADS];
  for (unsigned t = 0; t < THREADS; t++) {
    workers[t] = (worker){.s = s, .id = t};
    CHECK(pthread_create(&threads[t], NULL, work, &workers[t]) == 0);
  }
  uint64_t allocs = 0, frees = 0, bad = 0;
  for (unsigned t = 0; t < THREADS; t++) {
    pthread_join(threads[t], NULL);
    allocs += workers[t].allocs;
    frees += workers[t].frees;
    bad += workers[t].bad;
  }
  for (size_t i = 0; i < EXCHANGE; i++) {
    unsigned char *p = atomic_load(&s->exchange[i]);
    if (p == NULL) continue;
    size_t size;
    CHECK(verify(p, &size));
    CHECK_EQ(af_free(a, p, size, 16), AF_OK);
    frees++;
  }
  CHECK_EQ(bad, 0);
  CHECK_EQ(allocs, THREADS * s->ops_per_thread);
  af_stats st;
  af_get_stats(a, &st);
  CHECK_EQ(st.allocs, allocs);
  CHECK_EQ(st.frees, frees);
  CHECK_EQ(st.blocks_in_use, 0);
  CHECK_EQ(st.bytes_in_use, 0);
  af_trim(a);
  if (af_caps(a) & AF_CAP_RESET) CHECK_EQ(af_reset(a), AF_OK);
  free(s);
  af_destroy(a); /* destroys inner too (valgrind/ASan would report a leak) */
}

static void test_errors_forwarded(void) {
  af_bump_options o = {.first_chunk_size = 64 << 10, .byte_limit = 64 << 10};
  af_allocator *a = af_locked_new(af_bump_new(&o, NULL), NULL);
  CHECK(af_alloc(a, 1 << 20, 16) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_LIMIT);
  int local;
  CHECK_EQ(af_free(a, &local, 4, 4), AF_ERR_NOT_OWNED);
  CHECK_EQ(af_last_error(a), AF_ERR_NOT_OWNED);
  CHECK(af_realloc(a, &local, 4, 8, 4) == NULL);
  CHECK_EQ(af_last_error(a), AF_ERR_NOT_OWNED);
  void *p = af_alloc(a, 100, 16);
  CHECK(af_owns(a, p) == 1);
  CHECK_EQ(af_usable_size(a, p, 100, 16), 100);
  void *batch[10];
  CHECK_EQ(af_alloc_batch(a, 64, 16, 10, batch), 10);
  CHECK_EQ(af_free_batch(a, batch, 10, 64, 16), 10);
  af_stats st;
  af_get_stats(a, &st);
  CHECK_EQ(st.failures, 2);
  CHECK_EQ(st.allocs, 11);
  af_destroy(a);
  af_allocator *l = af_locked_new(af_large_new(NULL, NULL), NULL);
  CHECK_EQ(af_reset(l), AF_ERR_UNSUPPORTED);
  CHECK_EQ(af_last_error(l), AF_ERR_UNSUPPORTED);
  af_destroy(l);
  af_error err = {0};
  CHECK(af_locked_new(NULL, &err) == NULL);
  CHECK_EQ(err.code, AF_ERR_INVALID);
}

int main(void) {
  test_errors_forwarded();
  share("bump", af_bump_new(NULL, NULL), 16, 512);
  share("slab", af_slab_new(NULL, NULL), 16, 8192);
  share("large", af_large_new(NULL, NULL), 16 << 10, 1 << 20);
  return check_summary();
}
