/* test_afmalloc.c: afmalloc (csrc/afmalloc), built into this test under the
 * names afm_malloc, afm_free, ... (AFM_TEST_NAMES), with the process's malloc
 * as "the real allocator": ASan and valgrind check both sides.
 *
 * Every entry point; an alignment sweep; zero sizes; overflow; realloc growing,
 * shrinking and moving with its contents kept; blocks of the real allocator
 * handed to afmalloc; 8 threads exchanging blocks (cross-thread frees), in
 * rounds, so that later threads adopt the heaps of exited ones; fork from a
 * multi-threaded process; a double free caught. */
#define _GNU_SOURCE
#include "afmalloc/afmalloc.h" /* the afm_* entry points */
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>


#define MiB ((size_t)1 << 20)

static void fill(unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++) p[i] = (unsigned char)(seed + i * 13);
}

static bool intact(const unsigned char *p, size_t n, unsigned seed) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != (unsigned char)(seed + i * 13)) return false;
  return true;
}

static bool all_zero(const unsigned char *p, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (p[i] != 0) return false;
  return true;
}

/* ----------------------------------------------------------------------------
 * Single-threaded
 * ------------------------------------------------------------------------- */

static void test_every_entry_point(void) {
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  static const size_t sizes[] = {1, 48, 100, 8192, 70000, MiB, MiB + 1, 3 * MiB};
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    unsigned char *p = afm_malloc(n);
    CHECKF(p != NULL && (uintptr_t)p % 16 == 0, "malloc(%zu) = %p", n, (void *)p);
    CHECKF(afm_malloc_usable_size(p) >= n, "usable %zu < %zu", afm_malloc_usable_size(p), n);
    fill(p, n, 1);
    CHECK(intact(p, n, 1));
    afm_free(p);

    /* calloc on memory that held data a moment ago */
    p = afm_malloc(n);
    memset(p, 0xff, n);
    afm_free(p);
    p = afm_calloc(1, n);
    CHECKF(p != NULL && all_zero(p, n), "calloc(1, %zu) not zeroed", n);
    afm_free(p);

    void *q = NULL;
    CHECK_EQ(afm_posix_memalign(&q, 64, n), 0);
    CHECK(q != NULL && (uintptr_t)q % 64 == 0);
    afm_free(q);
    q = afm_aligned_alloc(256, n);
    CHECK(q != NULL && (uintptr_t)q % 256 == 0);
    afm_free(q);
    q = afm_memalign(4096, n);
    CHECK(q != NULL && (uintptr_t)q % 4096 == 0);
    afm_free(q);
    q = afm_valloc(n);
    CHECK(q != NULL && (uintptr_t)q % page == 0);
    afm_free(q);
    q = afm_pvalloc(n);
    CHECK(q != NULL && (uintptr_t)q % page == 0 && afm_malloc_usable_size(q) >= (n + page - 1) / page * page);
    afm_free(q);
    q = afm_reallocarray(NULL, 3, n);
    CHECK(q != NULL && afm_malloc_usable_size(q) >= 3 * n);
    afm_free(q);
  }
  afm_free(NULL);
  CHECK_EQ(afm_malloc_usable_size(NULL), 0);
}

static void test_alignment_sweep(void) {
  static const size_t sizes[] = {0, 1, 15, 16, 17, 100, 4095, 4096, 5000, MiB - 1, MiB, MiB + 1, 3 * MiB};
  for (size_t align = sizeof(void *); align <= ((size_t)1 << 16); align *= 2) {
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
      size_t n = sizes[i];
      void *p = NULL;
      int status = afm_posix_memalign(&p, align, n);
      CHECKF(status == 0 && p != NULL && (uintptr_t)p % align == 0, "posix_memalign(%zu, %zu) = %d, %p", align, n,
             status, p);
      if (p == NULL) continue;
      CHECKF(afm_malloc_usable_size(p) >= n, "align %zu size %zu: usable %zu", align, n, afm_malloc_usable_size(p));
      memset(p, 0xa5, n);
      afm_free(p);
    }
  }
}

static void test_zero_sizes(void) {
  void *a = afm_malloc(0), *b = afm_malloc(0);
  CHECK(a != NULL && b != NULL && a != b);
  afm_free(a);
  afm_free(b);
  void *c = afm_calloc(0, 10);
  CHECK(c != NULL);
  afm_free(c);
  void *d = afm_malloc(32);
  errno = 0;
  CHECK(afm_realloc(d, 0) == NULL); /* glibc: frees d */
  void *e = afm_realloc(NULL, 0);
  CHECK(e != NULL);
  afm_free(e);
  void *f = afm_pvalloc(0);
  CHECK(f != NULL && afm_malloc_usable_size(f) >= (size_t)sysconf(_SC_PAGESIZE));
  afm_free(f);
}

static void test_overflow_and_bad_arguments(void) {
  errno = 0;
  CHECK(afm_malloc(SIZE_MAX) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(afm_malloc((size_t)1 << 50) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(afm_calloc(SIZE_MAX / 2, 3) == NULL && errno == ENOMEM);
  errno = 0;
  CHECK(afm_calloc((size_t)1 << 33, (size_t)1 << 33) == NULL && errno == ENOMEM);
  unsigned char *p = afm_malloc(100);
  fill(p, 100, 7);
  errno = 0;
  CHECK(afm_reallocarray(p, SIZE_MAX / 4, 8) == NULL && errno == ENOMEM);
  CHECK(intact(p, 100, 7)); /* untouched */
  errno = 0;
  CHECK(afm_realloc(p, SIZE_MAX - 10) == NULL && errno == ENOMEM);
  CHECK(intact(p, 100, 7));
  afm_free(p);
  errno = 0;
  CHECK(afm_pvalloc(SIZE_MAX) == NULL && errno == ENOMEM);
  void *q = (void *)1;
  CHECK_EQ(afm_posix_memalign(&q, 24, 10), EINVAL);
  CHECK_EQ(afm_posix_memalign(&q, 4, 10), EINVAL); /* below sizeof(void *) */
  CHECK_EQ(afm_posix_memalign(&q, 64, SIZE_MAX), ENOMEM);
  CHECK(q == (void *)1); /* untouched on failure */
  errno = 0;
  CHECK(afm_aligned_alloc(48, 10) == NULL && errno == EINVAL);
  errno = 0;
  CHECK(afm_memalign(SIZE_MAX, 10) == NULL && errno == EINVAL);
  void *r = afm_memalign(48, 10); /* glibc rounds a non-power of two up */
  CHECK(r != NULL && (uintptr_t)r % 64 == 0);
  afm_free(r);
}

static void test_realloc_keeps_contents(void) {
  static const size_t steps[] = {1, 16, 17, 100, 5000, 100000, 2 * MiB, 10 * MiB, 3 * MiB, 1000, 10, 64 * 1024, 5};
  unsigned char *p = NULL;
  size_t held = 0;
  for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
    size_t n = steps[i];
    unsigned char *q = afm_realloc(p, n);
    CHECKF(q != NULL, "realloc to %zu", n);
    if (q == NULL) break;
    size_t kept = held < n ? held : n;
    CHECKF(intact(q, kept, 3), "realloc %zu -> %zu lost contents", held, n);
    fill(q, n, 3);
    p = q;
    held = n;
  }
  /* Shrinking a little stays in place; shrinking a lot moves to a smaller class. */
  unsigned char *big = afm_malloc(4096);
  fill(big, 4096, 9);
  CHECK(afm_realloc(big, 4000) == big);
  unsigned char *small = afm_realloc(big, 64);
  CHECK(small != NULL && afm_malloc_usable_size(small) < 4096 && intact(small, 64, 9));
  afm_free(small);
  afm_free(p);
}

/* Blocks of the allocator that was there first go back to it (ASan and
   valgrind would flag a free of theirs by anyone else). */
static void test_foreign_pointers(void) {
  unsigned char *f = malloc(200);
  fill(f, 200, 5);
  CHECK(afm_malloc_usable_size(f) >= 200);
  f = afm_realloc(f, 100000);
  CHECK(f != NULL && intact(f, 200, 5));
  CHECK(afm_malloc_usable_size(f) == malloc_usable_size(f)); /* still the real allocator's */
  afm_free(f);
  void *g = malloc(10);
  CHECK(afm_realloc(g, 0) == NULL); /* freed by the real allocator */
  void *h = aligned_alloc(64, 64);
  afm_free(h);
}

/* The slab catches a free of the head of a free list: glibc aborts, so do we. */
static void test_double_free_aborts(void) {
  if (getenv("AF_VALGRIND") != NULL) return; /* memcheck reports the abort's child as an error */
  fflush(NULL);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);
    if (null >= 0) dup2(null, 2); /* the report is expected */
    void *p = afm_malloc(48);
    afm_free(p);
    afm_free(p);
    _exit(0);
  }
  int status = 0;
  CHECK(waitpid(pid, &status, 0) == pid);
  CHECKF(WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT, "status %d", status);
}

/* ----------------------------------------------------------------------------
 * Threads: blocks handed from thread to thread through an exchange array
 * ------------------------------------------------------------------------- */

#define THREADS 8
#define EXCHANGE 256

typedef struct exchange {
  _Atomic(unsigned char *) slots[EXCHANGE];
  uint64_t ops;
} exchange;

typedef struct worker {
  exchange *x;
  unsigned id;
  uint64_t bad, crossed;
} worker;

/* A block: its size (8 bytes), its seed (8 bytes), the pattern over at most
   256 bytes, and the seed's low byte again in its last byte. */
static size_t pattern_bytes(size_t n) { return n - 17 < 256 ? n - 17 : 256; }

static unsigned char *make_block(uint64_t *rng) {
  uint64_t r = test_rand(rng);
  size_t n = 17 + (size_t)(r % 64 == 0 ? r % (3 * MiB) : r % 2048);
  unsigned char *p = (r & 1) ? afm_malloc(n) : afm_calloc(1, n);
  if (p == NULL) return NULL;
  uint64_t seed = r >> 8;
  memcpy(p, &n, 8);
  memcpy(p + 8, &seed, 8);
  fill(p + 16, pattern_bytes(n), (unsigned)seed);
  p[n - 1] = (unsigned char)seed;
  return p;
}

static bool check_block(const unsigned char *p) {
  size_t n;
  uint64_t seed;
  memcpy(&n, p, 8);
  memcpy(&seed, p + 8, 8);
  return n >= 17 && afm_malloc_usable_size((void *)p) >= n && intact(p + 16, pattern_bytes(n), (unsigned)seed) &&
         p[n - 1] == (unsigned char)seed;
}

static void *churn(void *arg) {
  worker *w = arg;
  uint64_t rng = w->id * 7919u + 1;
  unsigned char *mine[32] = {0};
  for (uint64_t i = 0; i < w->x->ops; i++) {
    uint64_t r = test_rand(&rng);
    if (r % 3 == 0) { /* swap a block into the exchange: whoever takes it out frees it */
      unsigned char *b = make_block(&rng);
      if (b == NULL) continue;
      unsigned char *old = atomic_exchange(&w->x->slots[r % EXCHANGE], b);
      if (old != NULL) {
        if (!check_block(old)) w->bad++;
        w->crossed++;
        afm_free(old);
      }
    } else { /* private churn, with realloc */
      unsigned slot = (unsigned)(r % 32);
      if (mine[slot] != NULL && !check_block(mine[slot])) w->bad++;
      afm_free(mine[slot]);
      mine[slot] = make_block(&rng);
    }
  }
  for (unsigned s = 0; s < 32; s++) afm_free(mine[s]);
  return NULL;
}

static void run_round(exchange *x, unsigned threads) {
  pthread_t t[THREADS];
  worker w[THREADS];
  for (unsigned i = 0; i < threads; i++) {
    w[i] = (worker){.x = x, .id = i};
    CHECK(pthread_create(&t[i], NULL, churn, &w[i]) == 0);
  }
  uint64_t bad = 0, crossed = 0;
  for (unsigned i = 0; i < threads; i++) {
    pthread_join(t[i], NULL);
    bad += w[i].bad;
    crossed += w[i].crossed;
  }
  CHECK_EQ(bad, 0);
  CHECKF(crossed > 0, "no block crossed threads");
}

static void test_threads(void) {
  exchange *x = calloc(1, sizeof *x);
  x->ops = scaled(40000, 500);
  /* Rounds: the threads of a round adopt the heaps the last round's left. */
  for (int round = 0; round < 4; round++) run_round(x, THREADS);
  for (unsigned i = 0; i < EXCHANGE; i++) {
    unsigned char *b = atomic_load(&x->slots[i]);
    if (b != NULL) CHECK(check_block(b));
    afm_free(b); /* blocks of exited threads' heaps */
  }
  free(x);
}

/* fork while other threads allocate: the child allocates (small and large),
   frees blocks the parent's threads made, and exits cleanly. */
static void *background(void *arg) {
  exchange *x = arg;
  uint64_t rng = 99;
  while (atomic_load_explicit((_Atomic uint64_t *)&x->ops, memory_order_relaxed) != 0) {
    unsigned char *b = make_block(&rng);
    unsigned char *old = atomic_exchange(&x->slots[test_rand(&rng) % EXCHANGE], b);
    afm_free(old);
  }
  return NULL;
}

static void test_fork_with_threads(void) {
  exchange *x = calloc(1, sizeof *x);
  atomic_store((_Atomic uint64_t *)&x->ops, 1);
  pthread_t t[2];
  for (int i = 0; i < 2; i++) CHECK(pthread_create(&t[i], NULL, background, x) == 0);
  int forks = (int)scaled(20, 3);
  for (int i = 0; i < forks; i++) {
    unsigned char *mine = afm_malloc(5000);
    fill(mine, 5000, 11);
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
      int ok = intact(mine, 5000, 11);
      afm_free(mine);
      for (unsigned s = 0; s < EXCHANGE; s++) { /* the threads' blocks: heaps lost in the child */
        unsigned char *b = atomic_exchange(&x->slots[s], NULL);
        if (b != NULL && !check_block(b)) ok = 0;
        afm_free(b);
      }
      uint64_t rng = 5;
      for (int k = 0; k < 2000; k++) {
        unsigned char *b = make_block(&rng);
        if (b == NULL || !check_block(b)) ok = 0;
        afm_free(b);
      }
      void *big = afm_malloc(8 * MiB);
      if (big == NULL) ok = 0;
      afm_free(big);
      free(x); /* the child's copy (valgrind checks the child's leaks too) */
      _exit(ok ? 0 : 3);
    }
    int status = 0;
    CHECK(waitpid(pid, &status, 0) == pid);
    CHECKF(WIFEXITED(status) && WEXITSTATUS(status) == 0, "fork %d: child status %d", i, status);
    afm_free(mine);
  }
  atomic_store((_Atomic uint64_t *)&x->ops, 0);
  for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
  for (unsigned s = 0; s < EXCHANGE; s++) afm_free(atomic_load(&x->slots[s]));
  free(x);
}

int main(void) {
  test_every_entry_point();
  test_alignment_sweep();
  test_zero_sizes();
  test_overflow_and_bad_arguments();
  test_realloc_keeps_contents();
  test_foreign_pointers();
  test_double_free_aborts();
  test_threads();
  test_fork_with_threads();
  return check_summary();
}
