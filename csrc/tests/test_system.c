/* ----------------------------------------------------------------------------
 * test_system.c: the system allocators (glibc, mimalloc, jemalloc, tcmalloc),
 * the resettable mimalloc heap and jemalloc arena, the mmap and null
 * baselines, and the registry by name.
 *
 * Every allocator gets the same randomized workout (sizes 0..1 MiB,
 * alignments 1..4096, a byte pattern written into every block and verified
 * before it is freed or moved), then the checks specific to it. Env
 * AF_TEST_SCALE scales the operation counts (valgrind runs with 0.05).
 * The jemalloc static-TLS message is checked in a child process that
 * re-executes this program without GLIBC_TUNABLES.
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "syslib.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

/* ----------------------------------------------------------------------------
 * Minimal harness: a case passes when none of its checks failed.
 * ------------------------------------------------------------------------- */

static int cases_passed, cases_failed, case_checks_failed;
static const char *case_name;

#define CHECK(cond, ...)                                                                  \
  do {                                                                                    \
    if (!(cond)) {                                                                        \
      case_checks_failed++;                                                               \
      if (case_checks_failed <= 20) {                                                     \
        fprintf(stderr, "FAIL [%s] %s:%d: %s: ", case_name, __FILE__, __LINE__, #cond);   \
        fprintf(stderr, __VA_ARGS__);                                                     \
        fputc('\n', stderr);                                                              \
      }                                                                                   \
    }                                                                                     \
  } while (0)

static void case_begin(const char *name) {
  case_name = name;
  case_checks_failed = 0;
}
static void case_end(void) {
  if (case_checks_failed == 0) cases_passed++;
  else cases_failed++;
  printf("%s %s\n", case_checks_failed == 0 ? "ok  " : "FAIL", case_name);
}

static double test_scale = 1.0;
static size_t scaled(size_t n) {
  double v = (double)n * test_scale;
  return v < 1 ? 1 : (size_t)v;
}

static bool under_valgrind(void) { return getenv("AF_VALGRIND") != NULL && strcmp(getenv("AF_VALGRIND"), "1") == 0; }

/* Under valgrind's default interception, mimalloc reports itself unavailable
   (see syslib.c): that one library is skipped, saying why. Anywhere else
   every allocator must be available. */
static bool skipped(const char *name) {
  if (strncmp(name, "mimalloc", 8) != 0 || !under_valgrind()) return false;
  af_error err = {0};
  if (af_available(name, &err) == AF_OK) return false;
  printf("skip %s under valgrind: %s\n", name, err.message);
  return strstr(err.message, "nouserintercepts") != NULL;
}

/* xorshift64*: deterministic per seed. */
static uint64_t rng_state = 0x9e3779b97f4a7c15u;
static uint64_t rng(void) {
  rng_state ^= rng_state >> 12;
  rng_state ^= rng_state << 25;
  rng_state ^= rng_state >> 27;
  return rng_state * 0x2545f4914f6cdd1du;
}

static const char *const system_names[] = {"libc", "mimalloc", "jemalloc", "tcmalloc", "mimalloc-heap", "jemalloc-arena"};
#define SYSTEM_COUNT (sizeof system_names / sizeof system_names[0])

/* ----------------------------------------------------------------------------
 * Patterns
 * ------------------------------------------------------------------------- */

static inline uint8_t pattern_byte(uint64_t seed, size_t i) { return (uint8_t)(seed + i * 131 + (i >> 8)); }

static void pattern_write(void *p, size_t size, uint64_t seed) {
  uint8_t *b = p;
  for (size_t i = 0; i < size; i++) b[i] = pattern_byte(seed, i);
}

/* Index of the first wrong byte among the first `size`, or SIZE_MAX. */
static size_t pattern_check(const void *p, size_t size, uint64_t seed) {
  const uint8_t *b = p;
  for (size_t i = 0; i < size; i++)
    if (b[i] != pattern_byte(seed, i)) return i;
  return SIZE_MAX;
}

static bool all_zero(const void *p, size_t size) {
  const uint8_t *b = p;
  for (size_t i = 0; i < size; i++)
    if (b[i] != 0) return false;
  return true;
}

/* ----------------------------------------------------------------------------
 * The randomized workout
 * ------------------------------------------------------------------------- */

typedef struct live_block {
  void *ptr;
  size_t size, align;
  uint64_t seed;
} live_block;

#define MAX_LIVE 128

/* Mostly small, some up to 1 MiB; never above max_size. */
static size_t random_size(size_t max_size) {
  uint64_t r = rng();
  size_t size;
  switch (r & 15) {
    case 0: size = (size_t)((r >> 8) % (1u << 20)) + 1; break;
    case 1: size = 0; break;
    case 2: size = (size_t)((r >> 8) % 16); break; /* the tiny sizes */
    case 3: case 4: size = (size_t)((r >> 8) % 65536); break;
    default: size = (size_t)((r >> 8) % 1024); break;
  }
  return size > max_size ? size % (max_size + 1) : size;
}
static size_t random_align(void) {
  uint64_t r = rng();
  return (r & 1) ? AF_DEFAULT_ALIGN : (size_t)1 << ((r >> 1) % 13); /* half default, half 1..4096 */
}

static void check_new_block(af_allocator *a, void *p, size_t size, size_t align, const char *op) {
  CHECK(p != NULL, "%s(%zu, %zu) failed with %d", op, size, align, af_last_error(a));
  if (p == NULL) return;
  CHECK((uintptr_t)p % align == 0, "%s(%zu, %zu) = %p misaligned", op, size, align, p);
  size_t usable = af_usable_size(a, p, size, align);
  CHECK(usable >= size, "%s(%zu, %zu): usable_size %zu < size", op, size, align, usable);
}

/* Random alloc/calloc/realloc/free of blocks up to max_size bytes; checks
   every block and that the stats moved by exactly what was done. */
static void workout(af_allocator *a, size_t ops, size_t max_size, uint64_t seed) {
  live_block live[MAX_LIVE];
  size_t nlive = 0;
  af_stats st0;
  af_get_stats(a, &st0);
  uint64_t allocs = st0.allocs, frees = st0.frees, reallocs = st0.reallocs, bytes = st0.bytes_in_use;
  /* null keeps no alloc, free, byte or live-block counts (see baselines.c) */
  const bool full_stats = strcmp(af_name(a), "null") != 0;
  rng_state = seed;
  for (size_t op = 0; op < ops; op++) {
    uint64_t r = rng() % 100;
    if (nlive > 0 && (r < 30 || nlive == MAX_LIVE)) { /* free */
      size_t i = (size_t)(rng() % nlive);
      live_block *b = &live[i];
      size_t bad = pattern_check(b->ptr, b->size, b->seed);
      CHECK(bad == SIZE_MAX, "block %p (%zu B, align %zu) corrupt at byte %zu before free", b->ptr, b->size, b->align, bad);
      int status = af_free(a, b->ptr, b->size, b->align);
      CHECK(status == AF_OK, "free returned %d", status);
      frees++;
      bytes -= b->size;
      live[i] = live[--nlive];
    } else if (nlive > 0 && r < 45) { /* realloc */
      live_block *b = &live[(size_t)(rng() % nlive)];
      size_t new_size = random_size(max_size);
      void *p = af_realloc(a, b->ptr, b->size, new_size, b->align);
      check_new_block(a, p, new_size, b->align, "realloc");
      if (p == NULL) continue;
      size_t kept = b->size < new_size ? b->size : new_size;
      size_t bad = pattern_check(p, kept, b->seed);
      CHECK(bad == SIZE_MAX, "realloc %zu -> %zu (align %zu) lost byte %zu", b->size, new_size, b->align, bad);
      reallocs++;
      bytes = bytes - b->size + new_size;
      b->ptr = p;
      b->size = new_size;
      b->seed = rng();
      pattern_write(p, new_size, b->seed);
    } else { /* alloc or calloc */
      size_t size = random_size(max_size), align = random_align();
      bool zeroed = r >= 85;
      void *p = zeroed ? af_calloc(a, size, align) : af_alloc(a, size, align);
      check_new_block(a, p, size, align, zeroed ? "calloc" : "alloc");
      if (p == NULL) continue;
      if (zeroed) CHECK(all_zero(p, size), "calloc(%zu, %zu) not zeroed", size, align);
      live_block *b = &live[nlive++];
      *b = (live_block){p, size, align, rng()};
      pattern_write(p, size, b->seed);
      allocs++;
      bytes += size;
    }
  }
  af_stats st;
  af_get_stats(a, &st);
  CHECK(!full_stats || (st.bytes_in_use == bytes && st.blocks_in_use == st0.blocks_in_use + nlive), "in use %llu B / %llu blocks, expected %llu / %zu",
        (unsigned long long)st.bytes_in_use, (unsigned long long)st.blocks_in_use, (unsigned long long)bytes, nlive);
  while (nlive > 0) {
    live_block *b = &live[--nlive];
    CHECK(pattern_check(b->ptr, b->size, b->seed) == SIZE_MAX, "block corrupt at the end");
    CHECK(af_free(a, b->ptr, b->size, b->align) == AF_OK, "final free failed");
    frees++;
  }
  af_get_stats(a, &st);
  CHECK((!full_stats || (st.allocs == allocs && st.frees == frees)) && st.reallocs == reallocs,
        "counted %llu allocs / %llu frees / %llu reallocs, made %llu / %llu / %llu", (unsigned long long)st.allocs,
        (unsigned long long)st.frees, (unsigned long long)st.reallocs, (unsigned long long)allocs,
        (unsigned long long)frees, (unsigned long long)reallocs);
  CHECK(!full_stats || (st.blocks_in_use == st0.blocks_in_use && st.bytes_in_use == st0.bytes_in_use),
        "%llu blocks / %llu B in use, %llu / %llu before", (unsigned long long)st.blocks_in_use,
        (unsigned long long)st.bytes_in_use, (unsigned long long)st0.blocks_in_use, (unsigned long long)st0.bytes_in_use);
  CHECK(st.failures == st0.failures, "%llu failures", (unsigned long long)(st.failures - st0.failures));
}

/* Every alignment with the sizes around the small floor, and the sizes
   256..1024 where mimalloc 2.0.9's aligned fast path misaligns (syslib.c). */
static void alignment_grid(af_allocator *a) {
  static const size_t sizes[] = {0,   1,   7,   8,    9,    15,   16,   17,   24,   48,
                                 100, 256, 512, 768, 1024, 4095, 4096, 4097, 70000};
  for (size_t align = 1; align <= AF_MAX_ALIGN; align <<= 1) {
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
      void *ps[8];
      for (int n = 0; n < 8; n++) { /* several: the first of a class may be aligned by luck */
        ps[n] = af_alloc(a, sizes[k], align);
        check_new_block(a, ps[n], sizes[k], align, "alloc");
        if (ps[n] != NULL) memset(ps[n], 0xab, sizes[k]);
      }
      for (int n = 0; n < 8; n++)
        if (ps[n] != NULL) CHECK(af_free(a, ps[n], sizes[k], align) == AF_OK, "free");
      void *z = af_calloc(a, sizes[k], align);
      check_new_block(a, z, sizes[k], align, "calloc");
      if (z != NULL) {
        CHECK(all_zero(z, sizes[k]), "calloc(%zu, %zu) not zeroed", sizes[k], align);
        af_free(a, z, sizes[k], align);
      }
    }
  }
  /* aligned realloc into and out of the small sizes keeps alignment and contents */
  for (size_t align = 32; align <= AF_MAX_ALIGN; align <<= 1) {
    static const size_t steps[] = {4096, 1024, 512, 256, 2048};
    size_t size = steps[0];
    uint8_t *b = af_alloc(a, size, align);
    check_new_block(a, b, size, align, "alloc");
    if (b == NULL) continue;
    pattern_write(b, size, align);
    for (size_t k = 1; k < sizeof steps / sizeof steps[0] && b != NULL; k++) {
      uint8_t *r = af_realloc(a, b, size, steps[k], align);
      check_new_block(a, r, steps[k], align, "realloc");
      if (r == NULL) break;
      size_t kept = size < steps[k] ? size : steps[k];
      CHECK(pattern_check(r, kept, align) == SIZE_MAX, "realloc %zu -> %zu (align %zu) lost data", size, steps[k], align);
      pattern_write(r, steps[k], align);
      b = r;
      size = steps[k];
    }
    if (b != NULL) af_free(a, b, size, align);
  }
  /* size 0 gives distinct live pointers */
  void *p = af_alloc(a, 0, 16), *q = af_alloc(a, 0, 16);
  CHECK(p != NULL && q != NULL && p != q, "two live size-0 blocks: %p %p", p, q);
  af_free(a, p, 0, 16);
  af_free(a, q, 0, 16);
  /* realloc to 0 and back keeps a valid block (glibc/tcmalloc realloc(p, 0) would free it) */
  p = af_alloc(a, 100, 16);
  p = af_realloc(a, p, 100, 0, 16);
  CHECK(p != NULL, "realloc to 0 returned NULL");
  p = af_realloc(a, p, 0, 50, 16);
  CHECK(p != NULL, "realloc from 0 returned NULL");
  af_free(a, p, 50, 16);
  af_stats st;
  af_get_stats(a, &st);
  CHECK(st.blocks_in_use == 0 && st.bytes_in_use == 0 && st.failures == 0, "grid left %llu blocks, %llu failures",
        (unsigned long long)st.blocks_in_use, (unsigned long long)st.failures);
}

static void test_system_allocator(const char *name) {
  if (skipped(name)) return;
  char label[96];
  snprintf(label, sizeof label, "system %s: workout and alignment grid", name);
  case_begin(label);
  af_error err = {0};
  af_allocator *a = af_system_new(name, &err);
  CHECK(a != NULL, "af_system_new(%s): %s", name, err.message);
  if (a != NULL) {
    CHECK(strcmp(af_name(a), name) == 0, "name %s", af_name(a));
    uint32_t caps = af_caps(a);
    CHECK((caps & (AF_CAP_SYSTEM | AF_CAP_FREE)) == (AF_CAP_SYSTEM | AF_CAP_FREE), "caps %#x", caps);
    CHECK(!(caps & AF_CAP_THREAD_SAFE), "caps %#x claim thread safety", caps);
    CHECK(af_owns(a, &err) == -1, "owns should be -1 (cannot tell)");
    if (!(caps & AF_CAP_RESET)) CHECK(af_reset(a) == AF_ERR_UNSUPPORTED, "reset");
    workout(a, scaled(20000), SIZE_MAX, 0x1234 + (uint64_t)strlen(name));
    alignment_grid(a);
    af_stats st;
    af_get_stats(a, &st);
    CHECK(st.allocs == st.frees && st.blocks_in_use == 0 && st.bytes_in_use == 0 && st.failures == 0,
          "unbalanced: %llu allocs, %llu frees, %llu B in use, %llu failures", (unsigned long long)st.allocs,
          (unsigned long long)st.frees, (unsigned long long)st.bytes_in_use, (unsigned long long)st.failures);
    /* a request the library must refuse: fails cleanly, nothing counted but the failure */
    if (!under_valgrind()) { /* memcheck warns about a 1 TiB request ("silly arg") */
      af_stats before, after;
      af_get_stats(a, &before);
      void *huge = af_alloc(a, (size_t)AF_MAX_ALLOC_SIZE, 16);
      af_get_stats(a, &after);
      if (huge == NULL) {
        CHECK(af_last_error(a) == AF_ERR_NOMEM, "1 TiB failure status %d", af_last_error(a));
        CHECK(after.failures == before.failures + 1 && after.allocs == before.allocs, "failure not counted");
      } else { /* overcommit may grant it: hand it back */
        af_free(a, huge, (size_t)AF_MAX_ALLOC_SIZE, 16);
      }
    }
    af_destroy(a);
  }
  case_end();
}

/* ----------------------------------------------------------------------------
 * Resettable heaps
 * ------------------------------------------------------------------------- */

static void test_heap_reset(const char *name) {
  if (skipped(name)) return;
  char label[96];
  snprintf(label, sizeof label, "%s: reset cycles", name);
  case_begin(label);
  af_error err = {0};
  af_allocator *a = af_system_new(name, &err);
  CHECK(a != NULL, "%s", err.message);
  if (a == NULL) {
    case_end();
    return;
  }
  CHECK(af_caps(a) & AF_CAP_RESET, "no AF_CAP_RESET");
  size_t cycles = scaled(300);
  for (size_t c = 0; c < cycles; c++) {
    size_t n = 1 + (size_t)(rng() % 200);
    uint64_t bytes = 0;
    void *first = NULL;
    size_t first_size = 0;
    for (size_t i = 0; i < n; i++) {
      size_t size = (rng() & 31) == 0 ? (size_t)(rng() % (1u << 20)) : (size_t)(rng() % 512);
      size_t align = (size_t)1 << (rng() % 13);
      void *p = (i & 3) == 0 ? af_calloc(a, size, align) : af_alloc(a, size, align);
      CHECK(p != NULL && (uintptr_t)p % align == 0, "cycle %zu alloc %zu/%zu", c, size, align);
      if (p == NULL) break;
      memset(p, (int)c, size);
      if (first == NULL) first = p, first_size = size;
      bytes += size;
      if ((i & 7) == 7) { /* some frees and reallocs between resets too */
        p = af_realloc(a, p, size, size * 2 + 1, align);
        CHECK(p != NULL, "realloc in cycle");
        if (p != NULL) {
          bytes += size + 1;
          CHECK(af_free(a, p, size * 2 + 1, align) == AF_OK, "free in cycle");
          bytes -= size * 2 + 1;
        }
      }
    }
    af_stats st;
    af_get_stats(a, &st);
    CHECK(st.bytes_in_use == bytes, "cycle %zu: %llu bytes in use, expected %llu", c,
          (unsigned long long)st.bytes_in_use, (unsigned long long)bytes);
    if (first != NULL) CHECK(first_size == 0 || ((uint8_t *)first)[0] == (uint8_t)c, "first block overwritten");
    CHECK(af_reset(a) == AF_OK, "reset failed: %d", af_last_error(a));
    af_get_stats(a, &st);
    CHECK(st.blocks_in_use == 0 && st.bytes_in_use == 0, "after reset: %llu blocks %llu B",
          (unsigned long long)st.blocks_in_use, (unsigned long long)st.bytes_in_use);
    CHECK(st.resets == c + 1, "resets %llu", (unsigned long long)st.resets);
  }
  /* the heap still works after the last reset */
  workout(a, scaled(3000), SIZE_MAX, 77);
  af_stats st;
  af_get_stats(a, &st);
  CHECK(st.failures == 0, "%llu failures", (unsigned long long)st.failures);
  af_destroy(a);
  /* creating and destroying many of them recycles cleanly */
  for (size_t i = 0; i < scaled(100); i++) {
    af_allocator *b = af_system_new(name, &err);
    CHECK(b != NULL, "create #%zu: %s", i, err.message);
    if (b == NULL) break;
    void *p = af_alloc(b, 100 + i, 16);
    CHECK(p != NULL, "alloc in fresh heap");
    if (i & 1) af_reset(b);
    af_destroy(b); /* live blocks go with it */
  }
  case_end();
}

/* ----------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------- */

typedef struct thread_job {
  af_allocator *a;
  void *block;       /* to free from the thread */
  size_t block_size;
  int alloc_status, calloc_status, realloc_status, reset_status, free_status;
} thread_job;

static void *foreign_thread(void *arg) {
  thread_job *job = arg;
  void *p = af_alloc(job->a, 64, 16);
  job->alloc_status = p == NULL ? af_last_error(job->a) : AF_OK;
  p = af_calloc(job->a, 64, 16);
  job->calloc_status = p == NULL ? af_last_error(job->a) : AF_OK;
  p = af_realloc(job->a, job->block, job->block_size, 4096, 16);
  job->realloc_status = p == NULL ? af_last_error(job->a) : AF_OK;
  job->reset_status = af_reset(job->a);
  job->free_status = af_free(job->a, job->block, job->block_size, 16);
  return NULL;
}

static void *create_heap_and_exit(void *arg) {
  thread_job *job = arg;
  job->a = af_system_new("mimalloc-heap", NULL);
  if (job->a != NULL) {
    job->block_size = 1000;
    job->block = af_alloc(job->a, job->block_size, 16);
    if (job->block != NULL) memset(job->block, 0x5a, job->block_size);
  }
  return NULL;
}

static void *destroy_in_thread(void *arg) {
  af_destroy(((thread_job *)arg)->a);
  return NULL;
}

static void *alloc_in_thread(void *arg) {
  thread_job *job = arg;
  void *p = af_alloc(job->a, 64, 16);
  job->alloc_status = p == NULL ? af_last_error(job->a) : AF_OK;
  return NULL;
}

static void run_thread(void *(*fn)(void *), thread_job *job) {
  pthread_t t;
  if (pthread_create(&t, NULL, fn, job) != 0) {
    fprintf(stderr, "pthread_create failed\n");
    exit(2);
  }
  pthread_join(t, NULL);
}

static void test_mimalloc_heap_threads(void) {
  if (skipped("mimalloc-heap")) return;
  case_begin("mimalloc-heap: thread binding");
  af_allocator *a = af_system_new("mimalloc-heap", NULL);
  CHECK(a != NULL, "create");
  if (a == NULL) {
    case_end();
    return;
  }
  CHECK(af_caps(a) & AF_CAP_THREAD_BOUND, "caps lack THREAD_BOUND");
  thread_job job = {.a = a, .block_size = 256};
  job.block = af_alloc(a, job.block_size, 16);
  CHECK(job.block != NULL, "alloc on owner");
  run_thread(foreign_thread, &job);
  CHECK(job.alloc_status == AF_ERR_THREAD, "alloc from another thread: %d", job.alloc_status);
  CHECK(job.calloc_status == AF_ERR_THREAD, "calloc from another thread: %d", job.calloc_status);
  CHECK(job.realloc_status == AF_ERR_THREAD, "realloc from another thread: %d", job.realloc_status);
  CHECK(job.reset_status == AF_ERR_THREAD, "reset from another thread: %d", job.reset_status);
  CHECK(job.free_status == AF_OK, "free from another thread: %d", job.free_status);
  af_stats st;
  af_get_stats(a, &st);
  CHECK(st.blocks_in_use == 0 && st.failures == 4, "blocks %llu failures %llu", (unsigned long long)st.blocks_in_use,
        (unsigned long long)st.failures);
  /* the owner carries on */
  void *p = af_alloc(a, 64, 16);
  CHECK(p != NULL, "owner alloc after foreign calls");
  af_free(a, p, 64, 16);
  CHECK(af_reset(a) == AF_OK, "owner reset");

  /* destroy from another thread: the heap is abandoned, nothing crashes */
  uint64_t leaked = _af_mimalloc_heaps_leaked();
  thread_job d = {.a = a};
  run_thread(destroy_in_thread, &d);
  CHECK(_af_mimalloc_heaps_leaked() == leaked + 1, "leak counter %llu", (unsigned long long)_af_mimalloc_heaps_leaked());

  /* owner thread exits first: the heap is gone, every later call is refused */
  thread_job orphan = {0};
  run_thread(create_heap_and_exit, &orphan);
  CHECK(orphan.a != NULL && orphan.block != NULL, "heap created in a thread");
  if (orphan.a != NULL) {
    p = af_alloc(orphan.a, 64, 16);
    CHECK(p == NULL && af_last_error(orphan.a) == AF_ERR_THREAD, "alloc on an orphaned heap");
    CHECK(af_reset(orphan.a) == AF_ERR_THREAD, "reset on an orphaned heap");
    /* a new thread, quite likely with the dead owner's pthread_t, is refused too */
    thread_job again = {.a = orphan.a};
    for (int i = 0; i < 4; i++) {
      run_thread(alloc_in_thread, &again);
      CHECK(again.alloc_status == AF_ERR_THREAD, "alloc from a later thread: %d", again.alloc_status);
    }
    if (orphan.block != NULL) {
      CHECK(((uint8_t *)orphan.block)[999] == 0x5a, "block of an exited owner lost its contents");
      CHECK(af_free(orphan.a, orphan.block, orphan.block_size, 16) == AF_OK, "free of an orphaned block");
    }
    leaked = _af_mimalloc_heaps_leaked();
    af_destroy(orphan.a);
    CHECK(_af_mimalloc_heaps_leaked() == leaked + 1, "orphan destroy not counted");
  }
  case_end();
}

/* One instance per thread over the shared process heap, as the engine does. */
typedef struct per_thread_run {
  const char *name;
  uint64_t seed;
  int ok;
} per_thread_run;

static void *per_thread_workout(void *arg) {
  per_thread_run *run = arg;
  af_allocator *a = af_create(run->name, NULL);
  if (a == NULL) return NULL;
  live_block live[64];
  uint64_t state = run->seed;
  size_t ops = scaled(20000);
  bool ok = true;
  for (size_t i = 0; i < 64; i++) live[i].ptr = NULL;
  for (size_t op = 0; op < ops; op++) {
    state = state * 6364136223846793005u + 1442695040888963407u;
    live_block *b = &live[(state >> 33) % 64];
    if (b->ptr != NULL) {
      ok &= pattern_check(b->ptr, b->size, b->seed) == SIZE_MAX;
      ok &= af_free(a, b->ptr, b->size, b->align) == AF_OK;
      b->ptr = NULL;
    } else {
      b->size = (size_t)(state >> 40) % 2048;
      b->align = (size_t)1 << ((state >> 20) % 8);
      b->seed = state;
      b->ptr = af_alloc(a, b->size, b->align);
      ok &= b->ptr != NULL && (uintptr_t)b->ptr % b->align == 0;
      if (b->ptr != NULL) pattern_write(b->ptr, b->size, b->seed);
    }
  }
  for (size_t i = 0; i < 64; i++)
    if (live[i].ptr != NULL) ok &= af_free(a, live[i].ptr, live[i].size, live[i].align) == AF_OK;
  af_stats st;
  af_get_stats(a, &st);
  ok &= st.allocs == st.frees && st.bytes_in_use == 0;
  af_destroy(a);
  run->ok = ok;
  return NULL;
}

static void test_per_thread_instances(void) {
  case_begin("system allocators: one instance per thread, concurrently");
  for (size_t k = 0; k < SYSTEM_COUNT; k++) {
    if (skipped(system_names[k])) continue;
    per_thread_run runs[3];
    pthread_t t[3];
    for (int i = 0; i < 3; i++) {
      runs[i] = (per_thread_run){system_names[k], 1000 + (uint64_t)i * 77 + k, 0};
      CHECK(pthread_create(&t[i], NULL, per_thread_workout, &runs[i]) == 0, "pthread_create");
    }
    for (int i = 0; i < 3; i++) {
      pthread_join(t[i], NULL);
      CHECK(runs[i].ok, "%s: thread %d saw a wrong block or unbalanced stats", system_names[k], i);
    }
  }
  case_end();
}

/* ----------------------------------------------------------------------------
 * Baselines
 * ------------------------------------------------------------------------- */

static void test_mmap_baseline(void) {
  case_begin("mmap baseline");
  af_allocator *a = af_mmap_new(NULL);
  CHECK(a != NULL && strcmp(af_name(a), "mmap") == 0, "create");
  if (a == NULL) {
    case_end();
    return;
  }
  CHECK(af_caps(a) == AF_CAP_FREE, "caps %#x", af_caps(a));
  size_t page = (size_t)sysconf(_SC_PAGESIZE);
  void *p = af_alloc(a, 10000, 4096);
  CHECK(p != NULL && (uintptr_t)p % page == 0, "page-aligned");
  CHECK(af_usable_size(a, p, 10000, 4096) == af_align_up(10000, page), "usable is page-rounded");
  memset(p, 1, 10000);
  af_stats st;
  af_get_stats(a, &st);
  CHECK(st.os_maps == 1 && st.os_bytes == af_align_up(10000, page), "maps %llu bytes %llu", (unsigned long long)st.os_maps,
        (unsigned long long)st.os_bytes);
  CHECK(af_free(a, (char *)p + 16, 100, 16) == AF_ERR_NOT_OWNED, "a pointer inside a mapping is refused");
  CHECK(af_free(a, p, 10000, 4096) == AF_OK, "free");
  af_get_stats(a, &st);
  CHECK(st.os_unmaps == 1 && st.os_bytes == 0, "unmaps %llu bytes %llu", (unsigned long long)st.os_unmaps,
        (unsigned long long)st.os_bytes);
  workout(a, scaled(2000), SIZE_MAX, 5);
  alignment_grid(a);
  af_get_stats(a, &st);
  CHECK(st.os_maps == st.os_unmaps && st.os_bytes == 0, "maps %llu unmaps %llu", (unsigned long long)st.os_maps,
        (unsigned long long)st.os_unmaps);
  CHECK(af_reset(a) == AF_ERR_UNSUPPORTED, "reset unsupported");
  af_destroy(a);
  case_end();
}

static void test_null_baseline(void) {
  case_begin("null baseline");
  af_allocator *a = af_null_new(NULL), *b = af_null_new(NULL);
  CHECK(a != NULL && b != NULL && strcmp(af_name(a), "null") == 0, "create");
  if (a == NULL || b == NULL) {
    af_destroy(a);
    af_destroy(b);
    case_end();
    return;
  }
  CHECK(af_caps(a) == (AF_CAP_FREE | AF_CAP_RESET), "caps %#x", af_caps(a));
  const size_t max = ((size_t)8 << 20) - 4096;
  void *p = af_alloc(a, max, 4096);
  CHECK(p != NULL && (uintptr_t)p % 4096 == 0, "largest request");
  if (p != NULL) memset(p, 7, max);
  /* Larger requests come from a second buffer, up to the engine's largest size (1 GiB). */
  const size_t large_max = (size_t)1 << 30;
  void *big = af_alloc(a, max + 1, 16);
  CHECK(big != NULL && af_owns(a, big) == 1 && af_owns(a, (char *)big + max) == 1, "a request above 8 MiB");
  char *huge = af_alloc(a, large_max, 4096);
  CHECK(huge != NULL && (uintptr_t)huge % 4096 == 0 && af_owns(a, huge + large_max - 1) == 1, "the largest request");
  if (huge != NULL) huge[0] = 1, huge[large_max - 1] = 2;
  CHECK(af_alloc(a, large_max + 1, 16) == NULL && af_last_error(a) == AF_ERR_NOMEM,
        "a request above 1 GiB fails with NOMEM");
  void *q = af_alloc(b, 100, 16);
  CHECK(q != NULL && af_owns(b, q) == 1 && af_owns(a, q) == 0, "instances have separate buffers");
  /* never fails, whatever the volume, and every block is aligned as asked */
  bool aligned = true, got = true;
  for (size_t i = 0; i < scaled(200000); i++) {
    size_t align = (size_t)1 << (i % 13), size = (i * 7919) % 70000;
    void *r = af_alloc(a, size, align);
    got &= r != NULL;
    aligned &= r != NULL && (uintptr_t)r % align == 0 && af_owns(a, r) == 1 && af_owns(a, (char *)r + size - (size > 0)) == 1;
    af_free(a, r, size, align);
  }
  CHECK(got && aligned, "null alloc failed or misaligned");
  void *c = af_calloc(a, 5000, 64);
  CHECK(c != NULL && all_zero(c, 5000), "calloc zeroed");
  pattern_write(c, 5000, 3);
  void *r = af_realloc(a, c, 5000, 9000, 64);
  CHECK(r != NULL && pattern_check(r, 5000, 3) == SIZE_MAX, "realloc keeps contents");
  void *grown = af_realloc(a, r, 9000, max + 100, 64);
  CHECK(grown != NULL && pattern_check(grown, 5000, 3) == SIZE_MAX, "realloc into the large buffer keeps contents");
  af_free(a, grown, max + 100, 64);
  af_free(a, p, max, 4096);
  af_stats st;
  af_get_stats(a, &st);
  /* null counts no allocs, frees, bytes or live blocks (its alloc is the engine's floor) */
  CHECK(st.allocs == 0 && st.frees == 0 && st.bytes_in_use == 0 && st.blocks_in_use == 0 &&
            st.peak_bytes_in_use == 0 && st.failures == 1 && st.reallocs == 2,
        "stats allocs %llu frees %llu failures %llu", (unsigned long long)st.allocs, (unsigned long long)st.frees,
        (unsigned long long)st.failures);
  CHECK(af_reset(a) == AF_OK, "reset");
  af_get_stats(a, &st);
  CHECK(st.resets == 1 && st.os_bytes == ((size_t)8 << 20) + large_max + 4096 && st.os_maps == 2,
        "reset counted; both buffers mapped");
  /* Contents survive until 8 MiB more have been handed out: 1000 blocks of
     at most 1 KiB, even with 4 KiB alignment padding, stay below that. */
  workout(b, 1000, 1024, 9);
  af_destroy(a);
  af_destroy(b);
  case_end();
}

/* ----------------------------------------------------------------------------
 * Registry and availability
 * ------------------------------------------------------------------------- */

static const char *const all_names[] = {"bump", "slab", "large", "libc", "mimalloc", "jemalloc", "tcmalloc",
                                        "mimalloc-heap", "jemalloc-arena", "mmap", "null"};

static void test_registry(void) {
  case_begin("registry: every name, unknown names");
  for (size_t i = 0; i < sizeof all_names / sizeof all_names[0]; i++) {
    if (skipped(all_names[i])) continue;
    af_error err = {0};
    CHECK(af_available(all_names[i], &err) == AF_OK, "%s unavailable: %s", all_names[i], err.message);
    af_allocator *a = af_create(all_names[i], &err);
    CHECK(a != NULL, "af_create(%s): %s", all_names[i], err.message);
    if (a == NULL) continue;
    CHECK(strcmp(af_name(a), all_names[i]) == 0, "af_create(%s) made %s", all_names[i], af_name(a));
    void *p = af_alloc(a, 48, 16);
    CHECK(p != NULL, "%s: alloc", all_names[i]);
    if (p != NULL && (af_caps(a) & AF_CAP_FREE)) af_free(a, p, 48, 16);
    af_destroy(a);
  }
  af_error err = {0};
  CHECK(af_create("tcmallocx", &err) == NULL && err.code == AF_ERR_INVALID, "unknown name accepted");
  CHECK(strstr(err.message, "'tcmallocx'") != NULL, "message does not echo the name: %s", err.message);
  for (size_t i = 0; i < sizeof all_names / sizeof all_names[0]; i++)
    CHECK(strstr(err.message, all_names[i]) != NULL, "message does not list %s: %s", all_names[i], err.message);
  err = (af_error){0};
  CHECK(af_available("nope", &err) == AF_ERR_INVALID && strstr(err.message, "valid names are") != NULL, "%s",
        err.message);
  CHECK(af_create(NULL, NULL) == NULL, "NULL name");
  err = (af_error){0};
  CHECK(af_system_new("bump", &err) == NULL && err.code == AF_ERR_INVALID && strstr(err.message, "jemalloc-arena"),
        "af_system_new(bump): %s", err.message);
  case_end();
}

static int jemalloc_tls_child(void) {
  af_error err = {0};
  int status = af_available("jemalloc", &err);
  af_error err2 = {0};
  af_allocator *a = af_system_new("jemalloc-arena", &err2);
  bool ok = status == AF_ERR_UNAVAILABLE && err.code == AF_ERR_UNAVAILABLE &&
            strstr(err.message, "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384") != NULL && a == NULL &&
            err2.code == AF_ERR_UNAVAILABLE && strcmp(err.message, err2.message) == 0;
  printf("child: status %d: %s\n", status, err.message);
  /* the other libraries are unaffected */
  ok = ok && af_available("tcmalloc", NULL) == AF_OK && af_available("libc", NULL) == AF_OK;
  return ok ? 0 : 1;
}

extern char **environ;

static void test_jemalloc_tls_message(void) {
  case_begin("jemalloc without GLIBC_TUNABLES: actionable message");
  char exe[4096];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1); /* valgrind answers with the test's path */
  CHECK(n > 0, "readlink /proc/self/exe");
  if (n > 0) {
    exe[n] = '\0';
    size_t count = 0;
    while (environ[count] != NULL) count++;
    char **env = calloc(count + 1, sizeof *env);
    size_t m = 0;
    for (size_t i = 0; i < count; i++)
      if (strncmp(environ[i], "GLIBC_TUNABLES=", 15) != 0) env[m++] = environ[i];
    env[m] = NULL;
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
      char *argv[] = {exe, (char *)"--jemalloc-tls-child", NULL};
      execve(exe, argv, env);
      _exit(127);
    }
    int wstatus = 0;
    CHECK(pid > 0 && waitpid(pid, &wstatus, 0) == pid, "fork/wait");
    CHECK(WIFEXITED(wstatus) && WEXITSTATUS(wstatus) == 0, "child exit status %d", wstatus);
    free(env);
  }
  case_end();
}

/* ----------------------------------------------------------------------------
 * main
 * ------------------------------------------------------------------------- */

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--jemalloc-tls-child") == 0) return jemalloc_tls_child();
  const char *scale = getenv("AF_TEST_SCALE");
  if (scale != NULL && atof(scale) > 0) test_scale = atof(scale);
  setvbuf(stdout, NULL, _IOLBF, 0);

  af_error err = {0};
  if (af_available("jemalloc", &err) != AF_OK) {
    fprintf(stderr, "jemalloc unavailable: %s\nrun this test with GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 (make ctest sets it)\n",
            err.message);
    return 1;
  }
  test_registry();
  for (size_t k = 0; k < SYSTEM_COUNT; k++) test_system_allocator(system_names[k]);
  test_heap_reset("mimalloc-heap");
  test_heap_reset("jemalloc-arena");
  test_mimalloc_heap_threads();
  test_per_thread_instances();
  test_mmap_baseline();
  test_null_baseline();
  test_jemalloc_tls_message();
  printf("%d passed, %d failed\n", cases_passed, cases_failed);
  return cases_failed == 0 ? 0 : 1;
}
