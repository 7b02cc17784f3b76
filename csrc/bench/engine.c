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
 * - Free policy (arena mode for AF_CAP_RESET allocators): see workloads.c.
 * - threads-N: N pthreads, each creating ITS OWN instance with af_create on
 *   that thread (thread-bound heaps must be created where they are used; the
 *   system allocators' instances are per-thread counters over the one shared
 *   process heap), each running the mixed workload with its own seed-derived
 *   stream and ops/N of the ops. All threads set up, then start together on a
 *   barrier; elapsed = last thread's end - first thread's start, ops = the sum
 *   over threads, ns_per_op = elapsed / ops: the wall-clock cost per op with N
 *   threads working. Stats are summed over the instances (so peak_bytes_in_use
 *   is the sum of per-thread peaks). Thread 0 uses the same stream as the
 *   single-threaded run, so threads-1 reproduces mixed exactly.
 * - Every other workload runs on the calling thread, with no thread created.
 * ------------------------------------------------------------------------- */
#include "bench/bench.h"
#include "bench/rng.h"
#include "os.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/resource.h>

#define BENCH_DEFAULT_SEED 0x5eed0fa110cff1ULL
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
  int status;                 /* AF_OK, or why this worker failed (message in err) */
  af_error err;
  uint64_t ops;               /* ops done in the measured loop */
  uint64_t start_ns, end_ns;  /* the measured loop, CLOCK_MONOTONIC */
  af_stats stats;             /* after the measured loop */
} bench_worker;

struct bench_run {
  const bench_workload *workload;
  const char *workload_name;  /* as the caller spelled it */
  const char *allocator;
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
static int worker_setup(bench_worker *w) {
  bench_run *run = w->run;
  bench_ctx *c = &w->ctx;
  memset(c, 0, sizeof *c);
  c->a = af_create(run->allocator, &w->err);
  if (c->a == NULL) return w->err.code != AF_OK ? w->err.code : AF_ERR_INVALID;
  c->alloc = c->a->vt->alloc;
  c->free = c->a->vt->free;
  c->reset = c->a->vt->reset;
  c->rng = bench_mix64(run->seed + w->index * 0x9e3779b97f4a7c15ULL);
  c->src = run->src;
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

static bool arena_mode(const bench_ctx *c) { return (c->a->vt->caps & AF_CAP_RESET) != 0; }

static void worker_measure(bench_worker *w) {
  bench_run *run = w->run;
  bench_ctx *c = &w->ctx;
  bench_kernel kernel = arena_mode(c) ? run->workload->run_arena : run->workload->run_free;
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
  af_get_stats(c->a, &w->stats);
  if (c->status != AF_OK) {
    w->status = _af_error_set(&w->err, c->status, "allocator '%s' failed after %llu ops of workload '%s': %s",
                              run->allocator, (unsigned long long)ops, run->workload_name,
                              af_status_text(c->status));
  }
}

/* Not measured: reads back and hands back every held block, then destroys
   the instance. */
static void worker_teardown(bench_worker *w) {
  bench_ctx *c = &w->ctx;
  if (c->a != NULL) {
    int status = _af_bench_release_all(c, arena_mode(c));
    if (status != AF_OK && w->status == AF_OK)
      w->status = _af_error_set(&w->err, status, "allocator '%s' failed while releasing blocks after the run: %s",
                                w->run->allocator, af_status_text(status));
    af_destroy(c->a);
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

/* "threads-N" with 1 <= N <= BENCH_MAX_THREADS, decimal, nothing else. */
static unsigned parse_threads(const char *name) {
  static const char prefix[] = "threads-";
  if (strncmp(name, prefix, sizeof prefix - 1) != 0) return 0;
  const char *digits = name + sizeof prefix - 1;
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
  unsigned threads = parse_threads(name);
  if (threads > 0) {
    *out = *_af_bench_threads_workload();
    out->threads = threads;
    return AF_OK;
  }
  /* The message lists every workload; threads-2/threads-4 become threads-N, the live-set family live-*. */
  char list[AF_ERROR_MESSAGE_SIZE];
  size_t used = 0;
  list[0] = '\0';
  for (size_t i = 0; i < _af_bench_workload_total && used < sizeof list; i++) {
    if (_af_bench_workloads[i].threads != 0 || _af_bench_workloads[i].prepare != NULL) continue; /* families */
    used += (size_t)snprintf(list + used, sizeof list - used, "%s ", _af_bench_workloads[i].name);
  }
  return _af_error_set(err, AF_ERR_INVALID, "unknown workload '%.24s'; valid: %slive-* threads-N (1<=N<=%d)", name,
                       list, BENCH_MAX_THREADS);
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

int af_bench_run(const af_bench_config *config, af_bench_result *out, af_error *err) {
  if (out == NULL || config == NULL || config->workload == NULL || config->allocator == NULL)
    return _af_error_set(err, AF_ERR_INVALID, "af_bench_run needs a config with workload and allocator, and a result");
  memset(out, 0, sizeof *out);
  bench_workload workload;
  int status = find_workload(config->workload, &workload, err);
  if (status != AF_OK) return status;
  status = af_available(config->allocator, err);
  if (status != AF_OK) return status;

  bench_run *run = calloc(1, sizeof *run);
  unsigned count = workload.threads > 0 ? workload.threads : 1;
  bench_worker *workers = calloc(count, sizeof *workers);
  if (run == NULL || workers == NULL) {
    free(run);
    free(workers);
    return _af_error_set(err, AF_ERR_NOMEM, "benchmark engine: no memory for %u workers", count);
  }
  run->workload = &workload;
  run->workload_name = config->workload;
  run->allocator = config->allocator;
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
    out->elapsed_ns = last_end - first_start;
    out->ns_per_op = out->ops > 0 ? (double)out->elapsed_ns / (double)out->ops : 0.0;
    out->checksum = checksum;
    out->threads = count;
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
