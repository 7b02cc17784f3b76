/* ----------------------------------------------------------------------------
 * engine.c: af_bench_run, the driver around the workload kernels.
 *
 * One run: look the workload up, create the allocator instance(s) with
 * af_create, take the "before" readings (RSS, getrusage), run the measured
 * loop between two CLOCK_MONOTONIC reads, get the allocator's stats and the
 * "after" readings, then tear down (free what is still held, destroy the
 * instance) outside the measurement.
 *
 * - ops > 0 runs exactly that many allocations; ops == 0 runs rounds of the
 *   workload's round size until time_budget_ns has passed (the clock is read
 *   once per round, never per op). Either way the ops performed are a prefix
 *   of the one stream the seed defines.
 * - Free policy: config->mode. FREE frees each block where the workload
 *   does, ARENA skips the frees and resets per phase (workloads.c); AUTO is
 *   FREE for every allocator that can free and ARENA for the others (the
 *   bump arena), so an allocator with both (mimalloc-heap, jemalloc-arena)
 *   runs in either mode only when asked.
 * - threads-N: N pthreads, each creating ITS OWN instance with af_create on
 *   that thread (thread-bound heaps must be created where they are used; the
 *   system allocators' instances are per-thread counters over the one shared
 *   process heap), each running the mixed workload with its own seed-derived
 *   stream and ops/N of the ops. All threads set up, then start together on a
 *   barrier; elapsed = last thread's end - first thread's start, ops = the sum
 *   over threads, ns_per_op = elapsed / (ops / N): the time each thread spent
 *   per op it made, so a threads-N row reads like the mixed row and perfect
 *   scaling shows as equal figures. Stats are summed over the instances (so
 *   peak_bytes_in_use is the sum of per-thread peaks). Thread 0 uses the same
 *   stream as the single-threaded run, so threads-1 reproduces mixed exactly.
 * - shared-threads-N: the same, but the N threads share ONE instance. Ours
 *   and jemalloc-arena (not thread-safe) are wrapped in af_locked_new; the
 *   process-wide libraries (libc, mimalloc, jemalloc, tcmalloc: one heap per
 *   process whatever the instance) keep their own thread safety, with no lock
 *   added: each thread gets its own counting wrapper (the wrapper's counters
 *   are plain integers) over the one heap. A shared instance cannot be reset
 *   under the other threads' blocks, so every allocator runs in free mode;
 *   allocators bound to their creating thread (mimalloc-heap) and allocators
 *   whose free reclaims nothing (bump) are refused with the reason.
 * - Workload specs (af_bench_config.spec): checked (spec.c), their size table
 *   built once before any thread starts, then run like a built-in workload.
 * - Every other workload runs on the calling thread, with no thread created.
 * ------------------------------------------------------------------------- */
#include "engine/bench.h"
#include "engine/rng.h"
#include "os.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>

#define BENCH_DEFAULT_BUDGET_NS 100000000ULL /* 100 ms */
/* threads-N accepts 1 <= N <= this. */
#define BENCH_MAX_THREADS 256

/* ----------------------------------------------------------------------------
 * A barrier whose party count can shrink (when pthread_create fails, the
 * threads already started must not wait forever).
 * ------------------------------------------------------------------------- */
typedef struct bench_barrier {
  pthread_mutex_t lock;
  pthread_cond_t released;
  unsigned parties;           /* threads that must arrive before release */
  unsigned waiting;           /* arrived in the current generation, < parties */
  uint64_t generation;        /* bumped at every release */
} bench_barrier;

static void barrier_init(bench_barrier *b, unsigned parties) {
  pthread_mutex_init(&b->lock, NULL);
  pthread_cond_init(&b->released, NULL);
  b->parties = parties;
  b->waiting = 0;
  b->generation = 0;
}

static void barrier_destroy(bench_barrier *b) {
  pthread_cond_destroy(&b->released);
  pthread_mutex_destroy(&b->lock);
}

static void barrier_wait(bench_barrier *b) {
  pthread_mutex_lock(&b->lock);
  uint64_t generation = b->generation;
  if (++b->waiting == b->parties) {
    b->waiting = 0;
    b->generation++;
    pthread_cond_broadcast(&b->released);
  } else {
    while (generation == b->generation) pthread_cond_wait(&b->released, &b->lock);
  }
  pthread_mutex_unlock(&b->lock);
}

/* Only before anyone can have completed the current generation. */
static void barrier_set_parties(bench_barrier *b, unsigned parties) {
  pthread_mutex_lock(&b->lock);
  b->parties = parties;
  pthread_mutex_unlock(&b->lock);
}

/* ----------------------------------------------------------------------------
 * Run state
 * ------------------------------------------------------------------------- */
typedef struct bench_readings {
  uint64_t rss;
  struct rusage usage;
} bench_readings;

typedef struct bench_run bench_run;

typedef struct bench_worker {
  bench_run *run;
  pthread_t thread;
  unsigned index;             /* 0 .. threads-1; selects the stream */
  uint64_t quota;             /* ops to run unless run->timed (may be 0 when ops < threads) */
  bench_ctx ctx;
  bool arena;                 /* arena mode (resolved from config->mode and the caps) */
  int status;                 /* AF_OK, or why this worker failed (message in err) */
  af_error err;
  uint64_t ops;               /* ops done in the measured loop */
  uint64_t start_ns, end_ns;  /* the measured loop, CLOCK_MONOTONIC */
  af_stats stats;             /* after the measured loop */
} bench_worker;

struct bench_run {
  const bench_workload *workload;
  const size_range *spec_table; /* spec workloads: the size table; else NULL */
  uint64_t spec_phase;
  af_allocator *shared;       /* shared-threads-N with one instance for all; else NULL */
  af_stats shared_stats;      /* its stats after the measured loop */
  const char *workload_name;  /* as the caller spelled it */
  const char *allocator;
  int mode;                   /* config->mode, as asked */
  bool timed;                 /* ops == 0: run rounds until budget_ns has passed */
  uint64_t budget_ns;
  uint64_t seed;
  bool threaded;              /* workers run on their own threads and meet on the barrier */
  bench_barrier barrier;
  bool setup_failed;          /* some worker could not set up: nobody runs (read after the barrier) */
  bench_readings before, after;
  uint8_t src[BENCH_SRC_SIZE];
};

enum { SYNC_BEFORE, SYNC_AFTER };

static void take_readings(bench_readings *r) {
  r->rss = _af_os_rss_bytes();
  getrusage(RUSAGE_SELF, &r->usage);
}

/* Every worker calls this at the two sync points; the readings are taken
   while all workers wait between the two barrier generations. */
static void sync_point(bench_run *run, int point) {
  if (!run->threaded) {
    take_readings(point == SYNC_BEFORE ? &run->before : &run->after);
    return;
  }
  barrier_wait(&run->barrier); /* all workers arrived; the main thread reads */
  barrier_wait(&run->barrier); /* the main thread has read */
}

/* The main thread's side of one sync point. */
static void main_sync(bench_run *run, int point) {
  barrier_wait(&run->barrier);
  take_readings(point == SYNC_BEFORE ? &run->before : &run->after);
  if (point == SYNC_AFTER && run->shared != NULL) af_get_stats(run->shared, &run->shared_stats);
  barrier_wait(&run->barrier);
}

/* Written under the barrier's lock, read by every worker after the next
   barrier release. */
static void mark_setup_failed(bench_run *run) {
  if (run->threaded) pthread_mutex_lock(&run->barrier.lock);
  run->setup_failed = true;
  if (run->threaded) pthread_mutex_unlock(&run->barrier.lock);
}

/* ----------------------------------------------------------------------------
 * One worker: set up, measured loop, teardown
 * ------------------------------------------------------------------------- */
/* Arena or free mode for an allocator with `caps`, or why it cannot run as asked
   (a shared instance always frees: see the banner). */
static int resolve_mode(const bench_run *run, uint32_t caps, bool *arena, af_error *err) {
  bool can_free = (caps & AF_CAP_FREE) != 0, can_reset = (caps & AF_CAP_RESET) != 0;
  int mode = run->mode == AF_BENCH_MODE_AUTO ? (can_free ? AF_BENCH_MODE_FREE : AF_BENCH_MODE_ARENA) : run->mode;
  if (mode == AF_BENCH_MODE_FREE && !can_free)
    return _af_error_set(err, AF_ERR_UNSUPPORTED, "allocator '%s' cannot free single blocks: run it in arena mode",
                         run->allocator);
  if (mode == AF_BENCH_MODE_ARENA && !can_reset)
    return _af_error_set(err, AF_ERR_UNSUPPORTED, "allocator '%s' has no reset: run it in free mode", run->allocator);
  if (mode == AF_BENCH_MODE_ARENA && run->workload->shared)
    return _af_error_set(err, AF_ERR_UNSUPPORTED,
                         "a shared instance cannot be reset under the other threads' blocks: run '%s' in free mode",
                         run->allocator);
  *arena = mode == AF_BENCH_MODE_ARENA;
  return AF_OK;
}

static int worker_setup(bench_worker *w) {
  bench_run *run = w->run;
  bench_ctx *c = &w->ctx;
  memset(c, 0, sizeof *c);
  c->a = run->shared != NULL ? run->shared : af_create(run->allocator, &w->err);
  if (c->a == NULL) return w->err.code != AF_OK ? w->err.code : AF_ERR_INVALID;
  int status = resolve_mode(run, af_caps(c->a), &w->arena, &w->err);
  if (status != AF_OK) return status;
  c->alloc = c->a->vt->alloc;
  c->free = c->a->vt->free;
  c->reset = c->a->vt->reset;
  c->rng = bench_mix64(run->seed + w->index * 0x9e3779b97f4a7c15ULL);
  c->src = run->src;
  c->touch = run->workload->touch;
  c->spec_table = run->spec_table;
  c->spec_phase = run->spec_phase;
  c->live_cap = run->workload->live_slots;
  if (c->live_cap > 0) {
    c->live = calloc(c->live_cap, sizeof *c->live);
    if (c->live == NULL)
      return _af_error_set(&w->err, AF_ERR_NOMEM, "benchmark engine: no memory for %zu live slots", c->live_cap);
  }
  if (run->workload->prepare != NULL && run->workload->prepare(c) != AF_OK)
    return _af_error_set(&w->err, AF_ERR_NOMEM, "benchmark engine: no memory for the tables of workload '%s'",
                         run->workload_name);
  return AF_OK;
}

static void worker_measure(bench_worker *w) {
  bench_run *run = w->run;
  bench_ctx *c = &w->ctx;
  bench_kernel kernel = w->arena ? run->workload->run_arena : run->workload->run_free;
  uint64_t ops = 0;
  w->start_ns = _af_now_ns();
  if (!run->timed) {
    ops = kernel(c, w->quota);
  } else {
    uint64_t round = run->workload->round, now;
    do {
      ops += kernel(c, round);
      now = _af_now_ns();
    } while (c->status == AF_OK && now - w->start_ns < run->budget_ns);
  }
  w->end_ns = _af_now_ns();
  w->ops = ops;
  if (run->shared == NULL) af_get_stats(c->a, &w->stats); /* a shared one: main_sync reads it once */
  if (c->status != AF_OK) {
    w->status = _af_error_set(&w->err, c->status, "allocator '%s' failed after %llu ops of workload '%s': %s",
                              run->allocator, (unsigned long long)ops, run->workload_name,
                              af_status_text(c->status));
  }
}

/* Not measured: reads back and hands back every held block, then destroys
   the instance (a shared one: af_bench_run, once every thread is done). */
static void worker_teardown(bench_worker *w) {
  bench_ctx *c = &w->ctx;
  if (c->a != NULL) {
    int status = _af_bench_release_all(c, w->arena);
    if (status != AF_OK && w->status == AF_OK)
      w->status = _af_error_set(&w->err, status, "allocator '%s' failed while releasing blocks after the run: %s",
                                w->run->allocator, af_status_text(status));
    if (c->a != w->run->shared) af_destroy(c->a);
    c->a = NULL;
  }
  free(c->live);
  c->live = NULL;
  free(c->order);
  c->order = NULL;
}

static void worker_main(bench_worker *w) {
  bench_run *run = w->run;
  w->status = worker_setup(w);
  if (w->status != AF_OK) mark_setup_failed(run);
  sync_point(run, SYNC_BEFORE);
  if (!run->setup_failed) worker_measure(w);
  sync_point(run, SYNC_AFTER);
  worker_teardown(w);
}

static void *worker_thread(void *arg) {
  worker_main(arg);
  return NULL;
}

/* ----------------------------------------------------------------------------
 * Workload lookup
 * ------------------------------------------------------------------------- */

/* "<prefix>N" with 1 <= N <= BENCH_MAX_THREADS, decimal, nothing else; 0 otherwise. */
static unsigned parse_threads(const char *name, const char *prefix) {
  size_t length = strlen(prefix);
  if (strncmp(name, prefix, length) != 0) return 0;
  const char *digits = name + length;
  unsigned n = 0;
  if (*digits == '\0') return 0;
  for (const char *p = digits; *p; p++) {
    if (*p < '0' || *p > '9') return 0;
    n = n * 10 + (unsigned)(*p - '0');
    if (n > BENCH_MAX_THREADS) return 0;
  }
  return n;
}

static int find_workload(const char *name, bench_workload *out, af_error *err) {
  for (size_t i = 0; i < _af_bench_workload_total; i++) {
    if (strcmp(_af_bench_workloads[i].name, name) == 0) {
      *out = _af_bench_workloads[i];
      return AF_OK;
    }
  }
  unsigned threads = parse_threads(name, "threads-"), shared = parse_threads(name, "shared-threads-");
  if (threads > 0 || shared > 0) {
    *out = *_af_bench_threads_workload();
    out->threads = threads > 0 ? threads : shared;
    out->shared = shared > 0;
    return AF_OK;
  }
  /* The message lists the workloads as far as they fit: the threads-N rows
     become one pattern, touch variants one suffix, the live-set family live-*
     (`allocffi list` has all). */
  char list[AF_ERROR_MESSAGE_SIZE];
  size_t used = 0;
  list[0] = '\0';
  for (size_t i = 0; i < _af_bench_workload_total && used < sizeof list; i++) {
    const bench_workload *w = &_af_bench_workloads[i];
    if (w->threads != 0 || w->touch != AF_TOUCH_ENDS || w->prepare != NULL) continue; /* families */
    used += (size_t)snprintf(list + used, sizeof list - used, " %s", _af_bench_workloads[i].name);
  }
  return _af_error_set(err, AF_ERR_INVALID, "unknown workload '%.24s'; valid: [shared-]threads-N (N<=%d), *-pages, live-*,%s",
                       name, BENCH_MAX_THREADS, list);
}

/* The workload a config asks for: its spec (checked) or its name. */
static int resolve_workload(const af_bench_config *config, bench_workload *out, af_error *err) {
  if (config->spec == NULL) {
    if (config->workload == NULL)
      return _af_error_set(err, AF_ERR_INVALID, "af_bench_run needs a workload name or a spec");
    return find_workload(config->workload, out, err);
  }
  int status = _af_bench_spec_check(config->spec, err);
  if (status == AF_OK) _af_bench_spec_workload(config->spec, out);
  return status;
}

/* ----------------------------------------------------------------------------
 * shared-threads-N: the one instance
 * ------------------------------------------------------------------------- */

/* Sets *out to the instance every thread shares: the allocator wrapped in
   af_locked_new unless it is already thread-safe; NULL for a process-wide
   library (its heap is already the one shared instance). Refuses allocators
   that cannot be shared, with the reason. */
static int make_shared(const char *allocator, af_allocator **out, af_error *err) {
  *out = NULL;
  af_allocator *a = af_create(allocator, err);
  if (a == NULL) return err != NULL && err->code != AF_OK ? err->code : AF_ERR_INVALID;
  uint32_t caps = a->vt->caps;
  if (caps & AF_CAP_THREAD_BOUND) {
    af_destroy(a);
    return _af_error_set(err, AF_ERR_UNSUPPORTED,
                         "'%s' cannot run shared-threads-N: it only allocates on the thread that created it "
                         "(run threads-N for one instance per thread)", allocator);
  }
  if (!(caps & AF_CAP_FREE)) {
    af_destroy(a);
    return _af_error_set(err, AF_ERR_UNSUPPORTED,
                         "'%s' cannot run shared-threads-N: its free reclaims nothing and a reset would drop the "
                         "other threads' blocks (run threads-N for one arena per thread)", allocator);
  }
  if ((caps & AF_CAP_SYSTEM) && !(caps & AF_CAP_RESET)) {
    af_destroy(a); /* process-wide: each thread counts in its own wrapper over the one heap */
    return AF_OK;
  }
  if (!(caps & AF_CAP_THREAD_SAFE)) {
    af_allocator *locked = af_locked_new(a, err);
    if (locked == NULL) {
      af_destroy(a);
      return err != NULL && err->code != AF_OK ? err->code : AF_ERR_NOMEM;
    }
    a = locked;
  }
  *out = a;
  return AF_OK;
}

/* ----------------------------------------------------------------------------
 * The entry point
 * ------------------------------------------------------------------------- */

static uint64_t timeval_ns(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u; }

static void fill_source(uint8_t *src, uint64_t seed) {
  uint64_t state = seed ^ 0x736f75726365ULL; /* differs from the op stream's */
  for (size_t i = 0; i < BENCH_SRC_SIZE; i += 8) {
    state += 0x9e3779b97f4a7c15ULL;
    uint64_t word = bench_mix64(state);
    memcpy(src + i, &word, 8);
  }
}

static void add_stats(af_stats *sum, const af_stats *s) {
  uint64_t *dst = (uint64_t *)sum;
  const uint64_t *add = (const uint64_t *)s;
  for (size_t i = 0; i < sizeof *sum / sizeof(uint64_t); i++) dst[i] += add[i];
}

/* Starts the workers on threads, plays the main thread's part of the sync
   points and joins them. */
static int run_threaded(bench_run *run, bench_worker *workers, unsigned count, af_error *err) {
  barrier_init(&run->barrier, count + 1);
  unsigned started = 0;
  int status = AF_OK;
  for (; started < count; started++) {
    int rc = pthread_create(&workers[started].thread, NULL, worker_thread, &workers[started]);
    if (rc != 0) {
      status = _af_error_set(err, AF_ERR_NOMEM, "benchmark engine: cannot start thread %u of %u: %s", started + 1,
                             count, strerror(rc));
      /* The started ones must still get through both sync points. */
      mark_setup_failed(run);
      barrier_set_parties(&run->barrier, started + 1);
      break;
    }
  }
  main_sync(run, SYNC_BEFORE);
  main_sync(run, SYNC_AFTER);
  for (unsigned i = 0; i < started; i++) pthread_join(workers[i].thread, NULL);
  barrier_destroy(&run->barrier);
  return status;
}

int af_bench_check(const af_bench_config *config, af_error *err) {
  if (config == NULL || config->allocator == NULL)
    return _af_error_set(err, AF_ERR_INVALID, "af_bench_check needs a config with an allocator");
  bench_workload workload;
  int status = resolve_workload(config, &workload, err);
  if (status == AF_OK) status = af_available(config->allocator, err);
  if (status != AF_OK || !workload.shared) return status;
  af_allocator *shared;
  status = make_shared(config->allocator, &shared, err);
  if (shared != NULL) af_destroy(shared);
  return status;
}

int af_bench_run(const af_bench_config *config, af_bench_result *out, af_error *err) {
  if (out == NULL || config == NULL || config->allocator == NULL || (config->workload == NULL && config->spec == NULL))
    return _af_error_set(err, AF_ERR_INVALID, "af_bench_run needs a config with workload and allocator, and a result");
  memset(out, 0, sizeof *out);
  if (config->mode < AF_BENCH_MODE_AUTO || config->mode > AF_BENCH_MODE_ARENA)
    return _af_error_set(err, AF_ERR_INVALID, "unknown benchmark mode %d: expected AF_BENCH_MODE_AUTO, _FREE or _ARENA",
                         config->mode);
  bench_workload workload;
  int status = resolve_workload(config, &workload, err);
  if (status != AF_OK) return status;
  status = af_available(config->allocator, err);
  if (status != AF_OK) return status;

  bench_run *run = calloc(1, sizeof *run);
  unsigned count = workload.threads > 0 ? workload.threads : 1;
  bench_worker *workers = calloc(count, sizeof *workers);
  size_range *table = config->spec != NULL ? calloc(BENCH_SPEC_TABLE_SIZE, sizeof *table) : NULL;
  if (run == NULL || workers == NULL || (config->spec != NULL && table == NULL)) {
    free(run);
    free(workers);
    free(table);
    return _af_error_set(err, AF_ERR_NOMEM, "benchmark engine: no memory for %u workers", count);
  }
  if (workload.shared) status = make_shared(config->allocator, &run->shared, err);
  if (status != AF_OK) {
    free(run);
    free(workers);
    free(table);
    return status;
  }
  if (config->spec != NULL) {
    _af_bench_spec_table(config->spec, table);
    run->spec_table = table;
    run->spec_phase = config->spec->phase;
  }
  run->workload = &workload;
  run->workload_name = config->spec != NULL ? config->spec->name : config->workload;
  run->allocator = config->allocator;
  run->mode = config->mode;
  run->timed = config->ops == 0;
  run->budget_ns = config->time_budget_ns != 0 ? config->time_budget_ns : BENCH_DEFAULT_BUDGET_NS;
  run->seed = config->seed != 0 ? config->seed : BENCH_DEFAULT_SEED;
  run->threaded = workload.threads > 0;
  fill_source(run->src, run->seed);
  for (unsigned i = 0; i < count; i++) {
    workers[i].run = run;
    workers[i].index = i;
    workers[i].quota = config->ops / count + (i < config->ops % count ? 1 : 0);
  }
  if (run->threaded) {
    status = run_threaded(run, workers, count, err);
  } else {
    worker_main(&workers[0]);
  }

  uint64_t first_start = UINT64_MAX, last_end = 0, checksum = 0;
  for (unsigned i = 0; i < count && status == AF_OK; i++) {
    bench_worker *w = &workers[i];
    if (w->status != AF_OK) {
      status = w->status;
      if (err != NULL) *err = w->err;
      break;
    }
    if (w->start_ns < first_start) first_start = w->start_ns;
    if (w->end_ns > last_end) last_end = w->end_ns;
    out->ops += w->ops;
    out->bytes_requested += w->ctx.bytes;
    checksum ^= bench_rotl(bench_mix64(w->ctx.sum), i % 64);
    add_stats(&out->stats, &w->stats);
  }
  if (status == AF_OK) {
    if (run->shared != NULL) out->stats = run->shared_stats;
    out->elapsed_ns = last_end - first_start;
    out->ns_per_op = out->ops > 0 ? (double)out->elapsed_ns * count / (double)out->ops : 0.0;
    out->checksum = checksum;
    out->threads = count;
    out->mode = workers[0].arena ? AF_BENCH_MODE_ARENA : AF_BENCH_MODE_FREE;
    out->touch = (uint32_t)workload.touch;
    out->shared = workload.shared;
    out->rss_before_bytes = run->before.rss;
    out->rss_after_bytes = run->after.rss;
    /* The kernel updates VmHWM lazily: it can trail the resident set just read. */
    uint64_t hwm = _af_os_peak_rss_bytes();
    out->peak_rss_bytes = hwm > run->after.rss ? hwm : run->after.rss;
    out->minor_faults = (uint64_t)(run->after.usage.ru_minflt - run->before.usage.ru_minflt);
    out->major_faults = (uint64_t)(run->after.usage.ru_majflt - run->before.usage.ru_majflt);
    out->user_ns = timeval_ns(run->after.usage.ru_utime) - timeval_ns(run->before.usage.ru_utime);
    out->sys_ns = timeval_ns(run->after.usage.ru_stime) - timeval_ns(run->before.usage.ru_stime);
  } else {
    memset(out, 0, sizeof *out);
  }
  if (run->shared != NULL) af_destroy(run->shared);
  free(table);
  free(workers);
  free(run);
  return status;
}

size_t af_bench_workload_count(void) { return _af_bench_workload_total; }

const char *af_bench_workload_name(size_t index) {
  return index < _af_bench_workload_total ? _af_bench_workloads[index].name : NULL;
}

const char *af_bench_workload_description(size_t index) {
  return index < _af_bench_workload_total ? _af_bench_workloads[index].description : NULL;
}
