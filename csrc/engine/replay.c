/* ----------------------------------------------------------------------------
 * replay.c: af_trace_replay, a recorded trace replayed in C against any
 * allocator through the vtable.
 *
 * Before timing, the whole trace is read and validated (reader.c) and turned
 * into flat tables that are then touched: 8-byte events that name objects
 * by dense id (a realloc's released object in a side list, in order), and
 * one slot per object holding its size (known from the trace) and, once
 * allocated, its pointer. The timed loop indexes arrays
 * only: no hashing, no decoding, no allocation of its own. Every free gets
 * the block's size and alignment (sized deallocation).
 *
 * - Calls that do nothing (failed calls of the recording, free(NULL), frees
 *   of blocks allocated before capture) are not replayed and not counted.
 * - Allocators without AF_CAP_FREE (the bump arena) replay with frees
 *   ignored; result.frees_ignored says so and the footprint shows it.
 * - Touch (ends / pages / all) writes an id-derived pattern into each new
 *   block and reads the same words back when the block is released (and at
 *   the end for blocks never freed), so the checksum depends on the trace
 *   only and agrees across correct allocators (the null baseline, which
 *   hands out one buffer for everything, cannot agree).
 * - AF_TRACE_SERIAL replays every call on the calling thread in recorded
 *   order. AF_TRACE_THREADS gives each recorded thread a thread of its own;
 *   a call that releases a block another thread allocated first waits
 *   (acquire) for that allocation's publication (release), and nothing else
 *   is ordered. Recorded order is a valid schedule of these waits, so they
 *   cannot deadlock. Process-wide allocators (libc, mimalloc, jemalloc,
 *   tcmalloc) get one instance per thread, as in threads-N; the others share
 *   one instance behind af_locked_new; thread-bound heaps run serial only.
 * ------------------------------------------------------------------------- */
#include "engine/bench.h"
#include "engine/rng.h"
#include "os.h"
#include "trace/trace_io.h"

#include <fcntl.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <unistd.h>

#define REPLAY_MAX_THREADS 1024
#define PAGE 4096

enum { RP_ALLOC, RP_CALLOC, RP_FREE, RP_REALLOC, RP_REALLOC_FREE };

/* One replayed call in 8 bytes (a realloc's released object is the next
   entry of the lane's `olds`, in order: only 3% of calls need it). */
typedef struct rp_event {
  uint32_t id;                /* the object made (alloc, realloc) or released (free) */
  uint8_t op;                 /* RP_* */
  uint8_t align_log2;         /* of the block made (alloc) or released (free, realloc) */
  uint8_t wait;               /* threads mode: the released block came from another thread */
  uint8_t pad;
} rp_event;

typedef struct rp_slot {
  uint8_t *ptr;               /* NULL until allocated, and again once released */
  uint64_t size;              /* from the trace */
} rp_slot;

typedef struct rp_thread rp_thread;
typedef struct rp_run {
  af_allocator *shared;       /* one instance for every thread, or NULL: each thread makes its own */
  const char *allocator;
  int touch;
  bool threaded;
  rp_slot *slots;
  atomic_uchar *ready;        /* threads mode: 1 once the object's allocation is published */
  uint8_t *align_log2;        /* per object */
  pthread_mutex_t start_lock;
  pthread_cond_t start_cond;
  unsigned waiting;           /* threads at the start line */
  unsigned parties;
  bool go;
  bool failed;                /* a thread could not set up: nobody runs */
} rp_run;

struct rp_thread {
  rp_run *run;
  uint32_t lane;              /* the recorded thread it replays (0 in serial mode) */
  pthread_t handle;
  rp_event *events;
  uint32_t *olds;             /* per realloc of `events`, in order: the object it released */
  uint64_t count;
  af_allocator *a;            /* the shared instance or this thread's own */
  uint64_t sum;
  uint64_t start_ns, end_ns;
  int status;
  af_error err;
};

/* ----------------------------------------------------------------------------
 * Touching
 * ------------------------------------------------------------------------- */
/* The word written at a block's start (its complement at its end): one
   multiply, distinct per object. */
static inline uint64_t pattern(uint32_t id) { return ((uint64_t)id + 1) * 0x9e3779b97f4a7c15ULL; }

static inline void store64(uint8_t *p, uint64_t v) { memcpy(p, &v, 8); }
static inline uint64_t load64(const uint8_t *p) {
  uint64_t v;
  memcpy(&v, p, 8);
  return v;
}

/* Blocks under 8 bytes get a byte loop (rare: no library call in the loop). */
static inline void put_small(uint8_t *p, uint64_t size, uint64_t v) {
  for (uint64_t i = 0; i < size; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint64_t get_small(const uint8_t *p, uint64_t size) {
  uint64_t v = 0;
  for (uint64_t i = 0; i < size; i++) v |= (uint64_t)p[i] << (8 * i);
  return v;
}

/* Every policy writes the first word and, past 8 bytes, the last word;
   pages adds one word per 4 KiB, all every word in between. */
static inline void touch_write(uint8_t *p, uint64_t size, uint32_t id, int touch) {
  uint64_t v = pattern(id);
  if (af_unlikely(size < 8)) {
    put_small(p, size, v);
    return;
  }
  store64(p, v);
  if (touch != AF_TOUCH_ENDS) {
    uint64_t step = touch == AF_TOUCH_ALL ? 8 : PAGE;
    for (uint64_t off = step; off + 8 <= size; off += step) store64(p + off, v + off);
  }
  if (size > 8) store64(p + size - 8, ~v);
}

static inline uint64_t touch_read(const uint8_t *p, uint64_t size, int touch) {
  if (af_unlikely(size < 8)) return get_small(p, size);
  uint64_t sum = load64(p);
  if (touch != AF_TOUCH_ENDS) {
    uint64_t step = touch == AF_TOUCH_ALL ? 8 : PAGE;
    for (uint64_t off = step; off + 8 <= size; off += step) sum += load64(p + off);
  }
  if (size > 8) sum += load64(p + size - 8);
  return sum;
}

/* The first word that survived a realloc (of min(old, new) bytes). */
static inline uint64_t first_word(const uint8_t *p, uint64_t size) {
  return size >= 8 ? load64(p) : get_small(p, size);
}

/* ----------------------------------------------------------------------------
 * The timed loop, specialised per touch policy and mode
 * ------------------------------------------------------------------------- */
static inline void wait_for(atomic_uchar *ready, uint32_t id) {
  for (unsigned spin = 0; !atomic_load_explicit(&ready[id], memory_order_acquire); spin++)
    if (spin > 256) sched_yield();
}

/* Specialised at compile time per touch policy, mode and whether the
   allocator frees (all but the bump arena): no per-event test of them. */
static inline __attribute__((always_inline)) int replay_loop(rp_thread *t, const int touch, const bool threaded,
                                                             const bool can_free) {
  rp_run *run = t->run;
  af_allocator *a = t->a;
  void *(*alloc)(af_allocator *, size_t, size_t) = a->vt->alloc;
  void *(*calloc_fn)(af_allocator *, size_t, size_t) = a->vt->calloc;
  int (*free_fn)(af_allocator *, void *, size_t, size_t) = a->vt->free;
  void *(*realloc_fn)(af_allocator *, void *, size_t, size_t, size_t) = a->vt->realloc;
  rp_slot *slots = run->slots;
  atomic_uchar *ready = run->ready;
  const rp_event *e = t->events, *end = e + t->count;
  const uint32_t *olds = t->olds;
  uint64_t sum = 0;
  for (; e < end; e++) {
    switch (e->op) {
    case RP_ALLOC:
    case RP_CALLOC: {
      rp_slot *s = &slots[e->id];
      uint8_t *p = e->op == RP_ALLOC ? alloc(a, s->size, (size_t)1 << e->align_log2)
                                     : calloc_fn(a, s->size, (size_t)1 << e->align_log2);
      if (af_unlikely(p == NULL)) goto failed;
      touch_write(p, s->size, e->id, touch);
      s->ptr = p;
      if (threaded) atomic_store_explicit(&ready[e->id], 1, memory_order_release);
      break;
    }
    case RP_FREE:
    case RP_REALLOC_FREE: {
      if (threaded && e->wait) wait_for(ready, e->id);
      rp_slot *s = &slots[e->id];
      sum += touch_read(s->ptr, s->size, touch);
      if (can_free && af_unlikely(free_fn(a, s->ptr, s->size, (size_t)1 << e->align_log2) != AF_OK)) goto failed;
      s->ptr = NULL;
      break;
    }
    case RP_REALLOC: {
      uint32_t old = *olds++;
      if (threaded && e->wait) wait_for(ready, old);
      rp_slot *o = &slots[old], *s = &slots[e->id];
      sum += touch_read(o->ptr, o->size, touch);
      uint8_t *p = realloc_fn(a, o->ptr, o->size, s->size, (size_t)1 << e->align_log2);
      if (af_unlikely(p == NULL)) goto failed;
      /* what survived the move: the old pattern's first word */
      sum += first_word(p, o->size < s->size ? o->size : s->size);
      o->ptr = NULL;
      touch_write(p, s->size, e->id, touch);
      s->ptr = p;
      if (threaded) atomic_store_explicit(&ready[e->id], 1, memory_order_release);
      break;
    }
    default:
      __builtin_unreachable(); /* ops are made by to_replay only: no range check per event */
    }
  }
  t->sum += sum;
  return AF_OK;
failed:
  t->sum += sum;
  return _af_error_set(&t->err, a->last_error != AF_OK ? a->last_error : AF_ERR_NOMEM,
                       "allocator '%s' failed at replayed call %llu of thread %u: %s", run->allocator,
                       (unsigned long long)(e - t->events), t->lane,
                       af_status_text(a->last_error != AF_OK ? a->last_error : AF_ERR_NOMEM));
}

#define REPLAY_VARIANT(name, touch, threaded, can_free) \
  static int name(rp_thread *t) { return replay_loop(t, touch, threaded, can_free); }
REPLAY_VARIANT(replay_ends, AF_TOUCH_ENDS, false, true)
REPLAY_VARIANT(replay_pages, AF_TOUCH_PAGES, false, true)
REPLAY_VARIANT(replay_all, AF_TOUCH_ALL, false, true)
REPLAY_VARIANT(replay_ends_mt, AF_TOUCH_ENDS, true, true)
REPLAY_VARIANT(replay_pages_mt, AF_TOUCH_PAGES, true, true)
REPLAY_VARIANT(replay_all_mt, AF_TOUCH_ALL, true, true)
REPLAY_VARIANT(replay_ends_nofree, AF_TOUCH_ENDS, false, false)
REPLAY_VARIANT(replay_pages_nofree, AF_TOUCH_PAGES, false, false)
REPLAY_VARIANT(replay_all_nofree, AF_TOUCH_ALL, false, false)
REPLAY_VARIANT(replay_ends_mt_nofree, AF_TOUCH_ENDS, true, false)
REPLAY_VARIANT(replay_pages_mt_nofree, AF_TOUCH_PAGES, true, false)
REPLAY_VARIANT(replay_all_mt_nofree, AF_TOUCH_ALL, true, false)

static int replay_thread_events(rp_thread *t) {
  static int (*const loops[2][2][3])(rp_thread *) = {
    {{replay_ends_nofree, replay_pages_nofree, replay_all_nofree},
     {replay_ends_mt_nofree, replay_pages_mt_nofree, replay_all_mt_nofree}},
    {{replay_ends, replay_pages, replay_all}, {replay_ends_mt, replay_pages_mt, replay_all_mt}}};
  const bool can_free = (t->a->vt->caps & AF_CAP_FREE) != 0;
  return loops[can_free][t->run->threaded][t->run->touch](t);
}

/* ----------------------------------------------------------------------------
 * Preparation (untimed): trace -> events per thread, slots
 * ------------------------------------------------------------------------- */
typedef struct rp_trace {
  rp_event **events;          /* per recorded thread (serial: everything in [0]) */
  uint32_t **olds;            /* per recorded thread: each realloc's released object, in order */
  uint64_t *counts;
  uint64_t *realloc_counts;
  uint32_t lanes;             /* 1 in serial mode, else the trace's threads */
  uint64_t objects;
  uint64_t peak_live_bytes, peak_live_blocks, clamped;
  rp_slot *slots;
  uint8_t *align_log2;
  uint32_t *birth_thread;
  atomic_uchar *ready;
  uint64_t table_bytes;
} rp_trace;

static uint8_t align_log2_of(uint64_t align, uint64_t *clamped) {
  if (align < AF_DEFAULT_ALIGN) align = AF_DEFAULT_ALIGN;
  if (align > AF_MAX_ALIGN) {
    (*clamped)++;
    align = AF_MAX_ALIGN;
  }
  unsigned log = af_log2((size_t)align);
  if (((uint64_t)1 << log) != align) log++; /* not a power of two: the next one up */
  return (uint8_t)log;
}

/* Which replay event a decoded trace event becomes; false: none. */
static bool to_replay(const tr_event *ev, rp_trace *t, rp_event *out, uint32_t *old) {
  memset(out, 0, sizeof *out);
  *old = UINT32_MAX;
  if (ev->failed || ev->kind >= TR_CALL_KINDS) return false;
  bool makes = ev->id != TR_NONE, releases = ev->old_id != TR_NONE;
  if (makes && releases) {
    out->op = RP_REALLOC;
    out->id = (uint32_t)ev->id;
    *old = (uint32_t)ev->old_id;
    out->align_log2 = t->align_log2[ev->old_id];
  } else if (makes) {
    out->op = ev->kind == TR_CALLOC ? RP_CALLOC : RP_ALLOC;
    out->id = (uint32_t)ev->id;
    out->align_log2 = align_log2_of(ev->align, &t->clamped);
  } else if (releases) {
    out->op = ev->kind == TR_FREE ? RP_FREE : RP_REALLOC_FREE;
    out->id = (uint32_t)ev->old_id;
    out->align_log2 = t->align_log2[ev->old_id];
  } else {
    return false;
  }
  return true;
}

static void trace_free(rp_trace *t) {
  for (uint32_t i = 0; t->events != NULL && i < t->lanes; i++) free(t->events[i]);
  for (uint32_t i = 0; t->olds != NULL && i < t->lanes; i++) free(t->olds[i]);
  free(t->events);
  free(t->olds);
  free(t->counts);
  free(t->realloc_counts);
  free(t->slots);
  free(t->align_log2);
  free(t->birth_thread);
  free((void *)t->ready);
  memset(t, 0, sizeof *t);
}

/* Two passes of the reader: count per lane, then fill. */
static int trace_prepare(const uint8_t *buf, size_t len, bool threaded, rp_trace *t, af_error *err) {
  memset(t, 0, sizeof *t);
  tr_reader r;
  int status = _af_trace_reader_open(&r, buf, len, err);
  if (status != AF_OK) return status;
  if (r.h.objects >= UINT32_MAX) {
    _af_trace_reader_close(&r);
    return _af_error_set(err, AF_ERR_INVALID, "%llu objects: the replay handles fewer than 2^32",
                         (unsigned long long)r.h.objects);
  }
  if (threaded && r.h.threads > REPLAY_MAX_THREADS) {
    _af_trace_reader_close(&r);
    return _af_error_set(err, AF_ERR_INVALID, "%u recorded threads: threads mode replays at most %d (use serial)",
                         r.h.threads, REPLAY_MAX_THREADS);
  }
  t->lanes = threaded ? (r.h.threads > 0 ? r.h.threads : 1) : 1;
  t->objects = r.h.objects;
  size_t objs = t->objects > 0 ? t->objects : 1;
  t->events = calloc(t->lanes, sizeof *t->events);
  t->olds = calloc(t->lanes, sizeof *t->olds);
  t->counts = calloc(t->lanes, sizeof *t->counts);
  t->realloc_counts = calloc(t->lanes, sizeof *t->realloc_counts);
  t->slots = calloc(objs, sizeof *t->slots);
  t->align_log2 = calloc(objs, 1);
  t->birth_thread = calloc(objs, sizeof *t->birth_thread);
  if (threaded) t->ready = calloc(objs, sizeof *t->ready);
  if (!t->events || !t->olds || !t->counts || !t->realloc_counts || !t->slots || !t->align_log2 || !t->birth_thread || (threaded && !t->ready)) {
    _af_trace_reader_close(&r);
    trace_free(t);
    return _af_error_set(err, AF_ERR_NOMEM, "no memory for the replay tables of %llu objects",
                         (unsigned long long)objs);
  }
  /* Pass 1: validate everything, sizes and alignments per object, counts per lane. */
  tr_event ev;
  rp_event re;
  uint32_t old;
  uint64_t live = 0, blocks = 0;
  while ((status = _af_trace_reader_next(&r, &ev, err)) == AF_OK && ev.kind != TR_EXT) {
    if (!to_replay(&ev, t, &re, &old)) continue;
    if (ev.old_id != TR_NONE) {
      live -= t->slots[ev.old_id].size;
      blocks--;
    }
    if (ev.id != TR_NONE) {
      t->slots[ev.id].size = ev.size;
      t->align_log2[ev.id] = re.op == RP_REALLOC ? t->align_log2[ev.old_id] : re.align_log2;
      t->birth_thread[ev.id] = ev.thread;
      live += ev.size;
      blocks++;
      if (live > t->peak_live_bytes) t->peak_live_bytes = live;
      if (blocks > t->peak_live_blocks) t->peak_live_blocks = blocks;
    }
    t->counts[threaded ? ev.thread : 0]++;
    if (re.op == RP_REALLOC) t->realloc_counts[threaded ? ev.thread : 0]++;
  }
  _af_trace_reader_close(&r);
  if (status != AF_OK) {
    trace_free(t);
    return status;
  }
  for (uint32_t i = 0; i < t->lanes; i++) {
    t->events[i] = malloc((t->counts[i] > 0 ? t->counts[i] : 1) * sizeof(rp_event));
    t->olds[i] = malloc((t->realloc_counts[i] > 0 ? t->realloc_counts[i] : 1) * sizeof(uint32_t));
    if (t->events[i] == NULL || t->olds[i] == NULL) {
      trace_free(t);
      return _af_error_set(err, AF_ERR_NOMEM, "no memory for the replay's events");
    }
    t->table_bytes += t->counts[i] * sizeof(rp_event) + t->realloc_counts[i] * sizeof(uint32_t);
    t->counts[i] = 0;
    t->realloc_counts[i] = 0;
  }
  /* Pass 2 (the file is known good): fill. */
  _af_trace_reader_open(&r, buf, len, err);
  uint64_t clamped = t->clamped;
  while (_af_trace_reader_next(&r, &ev, err) == AF_OK && ev.kind != TR_EXT) {
    if (!to_replay(&ev, t, &re, &old)) continue;
    if (threaded && ev.old_id != TR_NONE && t->birth_thread[ev.old_id] != ev.thread) re.wait = 1;
    uint32_t lane = threaded ? ev.thread : 0;
    t->events[lane][t->counts[lane]++] = re;
    if (re.op == RP_REALLOC) t->olds[lane][t->realloc_counts[lane]++] = old;
  }
  t->clamped = clamped;
  _af_trace_reader_close(&r);
  t->table_bytes += objs * (sizeof(rp_slot) + (threaded ? 1 : 0));
  return AF_OK;
}

/* Brings every table page in before the clock starts: events and slots were
   written while preparing; the publication flags are written here. */
static void touch_tables(rp_trace *t) {
  if (t->ready != NULL) memset((void *)t->ready, 0, t->objects > 0 ? t->objects : 1);
  volatile uint8_t sink = 0;
  for (uint32_t i = 0; i < t->lanes; i++) {
    const uint8_t *p = (const uint8_t *)t->events[i];
    for (uint64_t off = 0; off < t->counts[i] * sizeof(rp_event); off += PAGE) sink ^= p[off];
    const uint8_t *o = (const uint8_t *)t->olds[i];
    for (uint64_t off = 0; off < t->realloc_counts[i] * sizeof(uint32_t); off += PAGE) sink ^= o[off];
  }
  const uint8_t *s = (const uint8_t *)t->slots;
  for (uint64_t off = 0; off < t->objects * sizeof(rp_slot); off += PAGE) sink ^= s[off];
  (void)sink;
}

/* ----------------------------------------------------------------------------
 * Running
 * ------------------------------------------------------------------------- */
/* Reads back and releases what the trace never freed (untimed). */
static void release_rest(rp_thread *th, rp_trace *t, bool can_free) {
  for (uint64_t id = 0; id < t->objects; id++) {
    rp_slot *s = &t->slots[id];
    if (s->ptr == NULL) continue;
    th->sum += touch_read(s->ptr, s->size, th->run->touch);
    if (can_free) th->a->vt->free(th->a, s->ptr, s->size, (size_t)1 << t->align_log2[id]);
    s->ptr = NULL;
  }
}

static bool per_thread_instances(const af_allocator *a) {
  uint32_t caps = a->vt->caps;
  return (caps & AF_CAP_SYSTEM) && !(caps & AF_CAP_RESET);
}

static void *thread_main(void *arg) {
  rp_thread *t = arg;
  rp_run *run = t->run;
  if (t->a == NULL) {
    t->a = af_create(run->allocator, &t->err);
    if (t->a == NULL) t->status = t->err.code != AF_OK ? t->err.code : AF_ERR_INVALID;
  }
  pthread_mutex_lock(&run->start_lock);
  if (t->status != AF_OK) run->failed = true;
  if (++run->waiting == run->parties) {
    run->go = true;
    pthread_cond_broadcast(&run->start_cond);
  }
  while (!run->go) pthread_cond_wait(&run->start_cond, &run->start_lock);
  bool failed = run->failed;
  pthread_mutex_unlock(&run->start_lock);
  if (failed) return NULL;
  t->start_ns = _af_now_ns();
  t->status = replay_thread_events(t);
  t->end_ns = _af_now_ns();
  return NULL;
}

static void reset_peak_rss(void) {
  /* "5" resets VmHWM to the current RSS (Linux >= 4.0); ignored elsewhere. */
  int fd = open("/proc/self/clear_refs", O_WRONLY | O_CLOEXEC);
  if (fd >= 0) {
    ssize_t ignored = write(fd, "5", 1);
    (void)ignored;
    close(fd);
  }
}

static uint64_t timeval_ns(struct timeval tv) { return (uint64_t)tv.tv_sec * 1000000000u + (uint64_t)tv.tv_usec * 1000u; }

static int run_replay(const af_trace_replay_config *config, rp_trace *tr, af_trace_replay_result *out,
                      af_error *err) {
  bool threaded = config->mode == AF_TRACE_THREADS;
  rp_run run;
  memset(&run, 0, sizeof run);
  run.allocator = config->allocator;
  run.touch = config->touch;
  run.threaded = threaded;
  run.slots = tr->slots;
  run.ready = tr->ready;
  run.align_log2 = tr->align_log2;
  pthread_mutex_init(&run.start_lock, NULL);
  pthread_cond_init(&run.start_cond, NULL);
  rp_thread *threads = calloc(tr->lanes, sizeof *threads);
  af_allocator *first = af_create(config->allocator, err);
  int status = AF_OK;
  if (threads == NULL || first == NULL) {
    status = threads == NULL ? _af_error_set(err, AF_ERR_NOMEM, "no memory for the replay threads")
                             : (err != NULL && err->code != AF_OK ? err->code : AF_ERR_INVALID);
    goto done;
  }
  bool own_instances = false;
  if (threaded) {
    if (first->vt->caps & AF_CAP_THREAD_BOUND) {
      status = _af_error_set(err, AF_ERR_THREAD,
                             "allocator '%s' is bound to the thread that created it: replay it with --threads serial",
                             config->allocator);
      goto done;
    }
    own_instances = per_thread_instances(first);
    if (!own_instances && !(first->vt->caps & AF_CAP_THREAD_SAFE)) {
      af_allocator *locked = af_locked_new(first, err);
      if (locked == NULL) {
        status = err != NULL ? err->code : AF_ERR_NOMEM;
        goto done;
      }
      first = locked;
    }
  }
  for (uint32_t i = 0; i < tr->lanes; i++) {
    threads[i].run = &run;
    threads[i].lane = i;
    threads[i].events = tr->events[i];
    threads[i].olds = tr->olds[i];
    threads[i].count = tr->counts[i];
    threads[i].a = (!own_instances || i == 0) ? first : NULL;
  }
  out->frees_ignored = (first->vt->caps & AF_CAP_FREE) ? 0 : 1;
  touch_tables(tr);
  reset_peak_rss();
  struct rusage before, after;
  out->rss_before_bytes = _af_os_rss_bytes();
  getrusage(RUSAGE_SELF, &before);
  uint32_t started = 0;
  if (!threaded) {
    threads[0].start_ns = _af_now_ns();
    threads[0].status = replay_thread_events(&threads[0]);
    threads[0].end_ns = _af_now_ns();
    started = 1;
  } else {
    run.parties = tr->lanes;
    for (; started < tr->lanes; started++) {
      if (pthread_create(&threads[started].handle, NULL, thread_main, &threads[started]) != 0) {
        pthread_mutex_lock(&run.start_lock);
        run.failed = true;
        run.parties = started;
        if (run.waiting == run.parties) {
          run.go = true;
          pthread_cond_broadcast(&run.start_cond);
        }
        pthread_mutex_unlock(&run.start_lock);
        status = _af_error_set(err, AF_ERR_NOMEM, "cannot start replay thread %u of %u", started + 1, tr->lanes);
        break;
      }
    }
    for (uint32_t i = 0; i < started; i++) pthread_join(threads[i].handle, NULL);
  }
  getrusage(RUSAGE_SELF, &after);
  out->rss_after_bytes = _af_os_rss_bytes();
  uint64_t hwm = _af_os_peak_rss_bytes();
  out->peak_rss_bytes = hwm > out->rss_after_bytes ? hwm : out->rss_after_bytes;
  uint64_t first_start = UINT64_MAX, last_end = 0;
  for (uint32_t i = 0; i < started && status == AF_OK; i++) {
    if (threads[i].status != AF_OK) {
      status = threads[i].status;
      if (err != NULL) *err = threads[i].err;
      break;
    }
    if (threads[i].start_ns < first_start) first_start = threads[i].start_ns;
    if (threads[i].end_ns > last_end) last_end = threads[i].end_ns;
    out->events += threads[i].count;
  }
  if (status == AF_OK && run.failed) {
    for (uint32_t i = 0; i < started; i++)
      if (threads[i].status != AF_OK) {
        status = threads[i].status;
        if (err != NULL) *err = threads[i].err;
        break;
      }
  }
  if (status == AF_OK) {
    out->elapsed_ns = last_end >= first_start ? last_end - first_start : 0;
    out->ns_per_event = out->events > 0 ? (double)out->elapsed_ns / (double)out->events : 0.0;
    out->threads = started;
    out->minor_faults = (uint64_t)(after.ru_minflt - before.ru_minflt);
    out->major_faults = (uint64_t)(after.ru_majflt - before.ru_majflt);
    out->user_ns = timeval_ns(after.ru_utime) - timeval_ns(before.ru_utime);
    out->sys_ns = timeval_ns(after.ru_stime) - timeval_ns(before.ru_stime);
    for (uint32_t i = 0; i < started; i++) {
      if (threads[i].a == NULL) continue;
      if (threads[i].a == first && i > 0) continue; /* shared: counted once */
      af_stats s;
      af_get_stats(threads[i].a, &s);
      uint64_t *dst = (uint64_t *)&out->stats;
      const uint64_t *add = (const uint64_t *)&s;
      for (size_t k = 0; k < sizeof s / sizeof(uint64_t); k++) dst[k] += add[k];
    }
    /* A failed run left blocks behind whose pointers may be stale: only
       a complete replay reads back and releases the rest. */
    release_rest(&threads[0], tr, (first->vt->caps & AF_CAP_FREE) != 0);
    uint64_t sum = 0;
    for (uint32_t i = 0; i < started; i++) sum += threads[i].sum;
    out->checksum = bench_mix64(sum);
  }
done:
  for (uint32_t i = 1; threads != NULL && i < tr->lanes; i++)
    if (threads[i].a != NULL && threads[i].a != first) af_destroy(threads[i].a);
  if (first != NULL) af_destroy(first);
  free(threads);
  pthread_cond_destroy(&run.start_cond);
  pthread_mutex_destroy(&run.start_lock);
  return status;
}

int af_trace_replay(const af_trace_replay_config *config, af_trace_replay_result *out, af_error *err) {
  if (config == NULL || out == NULL || config->path == NULL || config->allocator == NULL)
    return _af_error_set(err, AF_ERR_INVALID, "af_trace_replay needs a config with path and allocator, and a result");
  memset(out, 0, sizeof *out);
  if (config->touch < AF_TOUCH_ENDS || config->touch > AF_TOUCH_ALL)
    return _af_error_set(err, AF_ERR_INVALID, "touch policy %d unknown (0 ends, 1 pages, 2 all)", config->touch);
  if (config->mode != AF_TRACE_SERIAL && config->mode != AF_TRACE_THREADS)
    return _af_error_set(err, AF_ERR_INVALID, "replay mode %d unknown (0 serial, 1 threads)", config->mode);
  int status = af_available(config->allocator, err);
  if (status != AF_OK) return status;
  uint8_t *buf;
  size_t len;
  status = _af_trace_load(config->path, &buf, &len, err);
  if (status != AF_OK) return status;
  rp_trace tr;
  status = trace_prepare(buf, len, config->mode == AF_TRACE_THREADS, &tr, err);
  free(buf);
  if (status != AF_OK) {
    if (err != NULL && strncmp(err->message, "offset", 6) == 0) {
      char detail[AF_ERROR_MESSAGE_SIZE];
      memcpy(detail, err->message, sizeof detail);
      _af_error_set(err, status, "%s: %.200s", config->path, detail);
    }
    return status;
  }
  status = run_replay(config, &tr, out, err);
  if (status == AF_OK) {
    out->peak_live_bytes = tr.peak_live_bytes;
    out->peak_live_blocks = tr.peak_live_blocks;
    out->clamped_alignments = tr.clamped;
    out->table_bytes = tr.table_bytes;
  } else {
    memset(out, 0, sizeof *out);
  }
  trace_free(&tr);
  return status;
}
