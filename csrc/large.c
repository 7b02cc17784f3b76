/* ----------------------------------------------------------------------------
 * large.c: the large-region cache (af_large_new). Every block is its own
 * page-rounded mapping; freed regions are kept per size bucket and handed out
 * again, so a steady alloc/free cycle makes no system call.
 *
 * Buckets: a request's page count is rounded up on a log-linear grid (exact
 * up to 4 pages, then 4 steps per power of two), so a region wastes < 25% of
 * its pages and any cached region of a bucket serves every request of it.
 *
 * Invariants:
 * - every mapped region (live or cached) is in `map` under its base address:
 *   free/owns/usable_size never read the user's memory, and a pointer that is
 *   not the base of a live region is refused;
 * - cached regions are on their bucket's list (most recently freed first) and
 *   on one age list (oldest first); on the age list the purged regions form a
 *   prefix (they end before purge_next) and the regions not yet stamped with
 *   a clock reading form a suffix (from unstamped on);
 * - cached <= limit after every call; mapped = live + cached bytes
 *   <= byte_limit if set;
 * - a region's `zeroed` is true only while its pages are known to read zero
 *   (fresh mapping, or purged while cached).
 *
 * How much stays cached. With an explicit max_cached_bytes, at most that.
 * By default (adaptive) the bound is AF_LARGE_MAX_CACHED plus the peak of
 * live bytes over the last one to two windows of AF_LARGE_WINDOW_DELAYS
 * purge delays: a program that holds 640 MiB and frees it all gets every
 * region back from the cache the next time round (a fixed 256 MiB bound sent
 * 60% of such requests back to mmap, and each region's first touch back to
 * the page-fault handler), the 256 MiB on top absorb the drift between size
 * buckets from one round to the next, and once the program's use falls, the
 * bound falls with it within two windows. What costs memory is not the bound
 * but resident pages, and those go back to the OS by time, whatever the
 * bound: a region idle for the purge delay is purged (madvise), its mapping
 * kept for reuse.
 *
 * Purging without clock reads on the fast path: the clock is read once every
 * AF_LARGE_CLOCK_EVERY calls and only while unpurged regions are cached. A
 * region freed between two readings is stamped with the later one, an upper
 * bound of its free time, so it is never purged before it has been idle
 * purge_delay_ns; it may be purged up to one reading interval late. There is
 * no background thread: an allocator nobody calls purges nothing (trim()
 * releases everything).
 * ------------------------------------------------------------------------- */
#include "large.h"

#include "addrmap.h"
#include "os.h"

#include <stdlib.h>

#ifndef AF_LARGE_MAX_CACHED
#define AF_LARGE_MAX_CACHED ((size_t)256 << 20) /* default cache bound: 256 MiB */
#endif
#ifndef AF_LARGE_PURGE_DELAY_NS
#define AF_LARGE_PURGE_DELAY_NS 250000000ull /* default purge delay: 250 ms */
#endif
#ifndef AF_LARGE_CLOCK_EVERY
#define AF_LARGE_CLOCK_EVERY 32 /* calls between two clock readings */
#endif
#ifndef AF_LARGE_WINDOW_DELAYS
#define AF_LARGE_WINDOW_DELAYS 16 /* adaptive bound: a peak is remembered for 1-2 windows of this many purge delays */
#endif

/* 4 exact buckets + 4 per power of two up to 2^40 pages: more than enough. */
#define BUCKETS 160

typedef struct region {
  uintptr_t base;             /* page aligned; the map key */
  size_t size;                /* mapped bytes: the bucket's page count * page size */
  struct region *newer, *older; /* age list, cached regions only */
  struct region *bnext, *bprev; /* bucket list, cached regions only */
  uint64_t freed_at;          /* clock stamp (upper bound of the free time), 0: not stamped yet */
  uint16_t bucket;            /* index into af_large.buckets */
  bool live;                  /* handed out; false: cached */
  bool zeroed;                /* pages known to read zero */
} region;

typedef struct af_large {
  af_allocator base;          /* first */
  af_counters c;
  af_addrmap map;             /* base address -> region, for every mapped region */
  region *buckets[BUCKETS];   /* cached regions per bucket, most recently freed first */
  region *oldest, *newest;    /* age list of cached regions */
  region *purge_next;         /* oldest unpurged cached region, NULL if none */
  region *unstamped;          /* oldest cached region without a stamp, NULL if none */
  unsigned page_shift;        /* log2(page size) */
  unsigned clock_countdown;   /* calls left before the next clock reading */
  size_t mapped;              /* bytes of all regions, live and cached */
  size_t cached;              /* bytes of cached regions */
  size_t max_cached;          /* bound on cached; adaptive: its floor */
  size_t limit;               /* the bound on cached now: max_cached, or adaptive (see update_limit) */
  bool adaptive;              /* max_cached_bytes was 0: the bound follows the recent peak of live bytes */
  size_t window_peak;         /* most live bytes seen since window_start (at new mappings and clock ticks) */
  size_t previous_peak;       /* most live bytes in the window before */
  uint64_t window_start;      /* clock reading that opened the current window */
  uint64_t window_ns;         /* AF_LARGE_WINDOW_DELAYS purge delays; UINT64_MAX: peaks never expire */
  size_t byte_limit;          /* 0: none; bound on mapped */
  uint64_t purge_delay;       /* ns; UINT64_MAX: never purge */
  uint64_t os_maps, os_unmaps, hits, misses, purged_bytes;
} af_large;

/* ----------------------------------------------------------------------------
 * Size buckets
 * ------------------------------------------------------------------------- */

/* Bucket of a page count n >= 1; *pages gets the bucket's page count. */
static inline unsigned bucket_of(size_t n, size_t *pages) {
  if (n <= 4) {
    *pages = n;
    return (unsigned)n - 1;
  }
  unsigned e = af_log2(n - 1); /* n in (2^e, 2^(e+1)], e >= 2 */
  size_t step = (size_t)1 << (e - 2);
  size_t rounded = (n + step - 1) & ~(step - 1); /* 2^e + k*step, k in 1..4 */
  *pages = rounded;
  return 4 * (e - 1) + (unsigned)(rounded >> (e - 2)) - 5;
}

/* ----------------------------------------------------------------------------
 * Cache lists
 * ------------------------------------------------------------------------- */

static void cache_push(af_large *l, region *r) {
  r->bprev = NULL;
  r->bnext = l->buckets[r->bucket];
  if (r->bnext != NULL) r->bnext->bprev = r;
  l->buckets[r->bucket] = r;
  r->newer = NULL;
  r->older = l->newest;
  if (l->newest != NULL) l->newest->newer = r;
  else l->oldest = r;
  l->newest = r;
  r->freed_at = 0;
  if (l->purge_next == NULL) l->purge_next = r;
  if (l->unstamped == NULL) l->unstamped = r;
  l->cached += r->size;
}

static void cache_remove(af_large *l, region *r) {
  if (r->bprev != NULL) r->bprev->bnext = r->bnext;
  else l->buckets[r->bucket] = r->bnext;
  if (r->bnext != NULL) r->bnext->bprev = r->bprev;
  if (l->purge_next == r) l->purge_next = r->newer;
  if (l->unstamped == r) l->unstamped = r->newer;
  if (r->newer != NULL) r->newer->older = r->older;
  else l->newest = r->older;
  if (r->older != NULL) r->older->newer = r->newer;
  else l->oldest = r->newer;
  l->cached -= r->size;
}

/* Unmaps a cached region and forgets it. */
static void release(af_large *l, region *r) {
  _af_addrmap_remove(&l->map, r->base);
  _af_os_unmap((void *)r->base, r->size);
  l->os_unmaps++;
  l->mapped -= r->size;
  free(r);
}

static void evict_oldest(af_large *l) {
  region *r = l->oldest;
  cache_remove(l, r);
  release(l, r);
}

/* Records the live bytes as a peak candidate and recomputes the bound. Only
   the slow paths call it (a new mapping, a clock tick): the live set can only
   outgrow the cache's bound through new mappings, so the fast paths need not
   watch it. */
static void update_limit(af_large *l) {
  if (!l->adaptive) return;
  size_t live = l->mapped - l->cached;
  if (live > l->window_peak) l->window_peak = live;
  size_t peak = l->window_peak > l->previous_peak ? l->window_peak : l->previous_peak;
  l->limit = l->max_cached + peak;
}

/* Opens a new peak window when the current one has run its length; a gap of
   more than a window forgets both peaks. */
static void roll_window(af_large *l, uint64_t now) {
  if (now - l->window_start < l->window_ns) return;
  size_t live = l->mapped - l->cached;
  l->previous_peak = now - l->window_start - l->window_ns < l->window_ns ? l->window_peak : live;
  l->window_peak = live;
  l->window_start = now;
  update_limit(l);
}

/* Stamps the regions freed since the last reading, then purges those idle
   for longer than the delay, and evicts what an expired peak no longer
   covers. Called every AF_LARGE_CLOCK_EVERY calls; reads the clock only
   when there is something to purge or to evict. */
static void clock_tick(af_large *l) {
  l->clock_countdown = AF_LARGE_CLOCK_EVERY;
  update_limit(l);
  if (l->purge_delay == UINT64_MAX) return;
  if (l->purge_next == NULL && l->cached <= l->max_cached) return;
  uint64_t now = _af_now_ns();
  if (l->adaptive) {
    roll_window(l, now);
    while (l->cached > l->limit) evict_oldest(l);
  }
  for (region *r = l->unstamped; r != NULL; r = r->newer) r->freed_at = now;
  l->unstamped = NULL;
  region *r = l->purge_next;
  while (r != NULL && now - r->freed_at >= l->purge_delay) {
    if (_af_os_purge((void *)r->base, r->size) == AF_OK) {
      r->zeroed = true;
      l->purged_bytes += r->size;
    }
    r = r->newer;
  }
  l->purge_next = r;
}

static inline void count_call(af_large *l) {
  if (af_unlikely(--l->clock_countdown == 0)) clock_tick(l);
}

/* ----------------------------------------------------------------------------
 * Taking and giving back regions (no counters of blocks here)
 * ------------------------------------------------------------------------- */

static region *map_region(af_large *l, size_t bytes, unsigned bucket) {
  if (l->byte_limit != 0) {
    while (l->oldest != NULL && l->mapped + bytes > l->byte_limit) evict_oldest(l);
    if (l->mapped + bytes > l->byte_limit) {
      l->base.last_error = AF_ERR_LIMIT;
      return NULL;
    }
  }
  region *r = malloc(sizeof *r);
  if (r == NULL) {
    l->base.last_error = AF_ERR_NOMEM;
    return NULL;
  }
  void *mem = NULL;
  int status = _af_os_map(bytes, (size_t)1 << l->page_shift, &mem);
  if (status != AF_OK && l->oldest != NULL) {
    while (l->oldest != NULL) evict_oldest(l); /* the kernel said no: give it our cache and retry */
    status = _af_os_map(bytes, (size_t)1 << l->page_shift, &mem);
  }
  if (status == AF_OK) {
    status = _af_addrmap_insert(&l->map, (uintptr_t)mem, r);
    if (status != AF_OK) _af_os_unmap(mem, bytes);
  }
  if (status != AF_OK) {
    free(r);
    l->base.last_error = status;
    return NULL;
  }
  *r = (region){.base = (uintptr_t)mem, .size = bytes, .bucket = (uint16_t)bucket, .zeroed = true};
  l->os_maps++;
  l->mapped += bytes;
  update_limit(l); /* live just grew past what the cache could serve */
  return r;
}

/* A region for `size` bytes: cached if possible, else freshly mapped. */
static inline region *take(af_large *l, size_t size) {
  size_t pages = size == 0 ? 1 : (size + ((size_t)1 << l->page_shift) - 1) >> l->page_shift;
  unsigned b = bucket_of(pages, &pages);
  af_assert(b < BUCKETS);
  region *r = l->buckets[b];
  if (af_likely(r != NULL)) {
    cache_remove(l, r);
    l->hits++;
  } else {
    r = map_region(l, pages << l->page_shift, b);
    if (r == NULL) return NULL;
    l->misses++;
  }
  r->live = true;
  count_call(l);
  return r;
}

static inline void give_back(af_large *l, region *r) {
  r->live = false;
  r->zeroed = false; /* the user may have written anything */
  if (af_unlikely(r->size > l->limit)) {
    r->older = r->newer = NULL;
    release(l, r);
  } else {
    cache_push(l, r);
    while (l->cached > l->limit) evict_oldest(l);
  }
  count_call(l);
}

static inline region *live_region(af_large *l, const void *ptr) {
  region *r = _af_addrmap_get(&l->map, (uintptr_t)ptr);
  return r != NULL && r->live ? r : NULL;
}

/* ----------------------------------------------------------------------------
 * Vtable
 * ------------------------------------------------------------------------- */

static void *large_alloc(af_allocator *self, size_t size, size_t align) {
  (void)align; /* regions are page aligned, and align <= AF_MAX_ALIGN = one page */
  af_large *l = (af_large *)self;
  region *r = take(l, size);
  if (af_unlikely(r == NULL)) return af_fail(self, &l->c, self->last_error);
  af_count_alloc(&l->c, size);
  return (void *)r->base;
}

static void *large_calloc(af_allocator *self, size_t size, size_t align) {
  (void)align;
  af_large *l = (af_large *)self;
  region *r = take(l, size);
  if (af_unlikely(r == NULL)) return af_fail(self, &l->c, self->last_error);
  if (!r->zeroed) memset((void *)r->base, 0, size);
  af_count_alloc(&l->c, size);
  return (void *)r->base;
}

static int large_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  (void)align;
  af_large *l = (af_large *)self;
  region *r = live_region(l, ptr);
  if (af_unlikely(r == NULL)) return AF_ERR_NOT_OWNED;
  give_back(l, r);
  af_count_free(&l->c, size);
  return AF_OK;
}

static void *large_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  (void)align;
  af_large *l = (af_large *)self;
  region *r = live_region(l, ptr);
  if (r == NULL) return af_fail(self, &l->c, AF_ERR_NOT_OWNED);
  size_t pages = new_size == 0 ? 1 : (new_size + ((size_t)1 << l->page_shift) - 1) >> l->page_shift;
  if (bucket_of(pages, &pages) != r->bucket) {
    region *fresh = take(l, new_size);
    if (fresh == NULL) return af_fail(self, &l->c, self->last_error);
    memcpy((void *)fresh->base, ptr, old_size < new_size ? old_size : new_size);
    give_back(l, r);
    r = fresh;
  }
  af_count_realloc(&l->c, old_size, new_size);
  return (void *)r->base;
}

static size_t large_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)size, (void)align;
  region *r = live_region((af_large *)self, ptr);
  return r != NULL ? r->size : 0;
}

static int large_owns(af_allocator *self, const void *ptr) { return live_region((af_large *)self, ptr) != NULL; }

static int large_reset(af_allocator *self) {
  (void)self;
  return AF_ERR_UNSUPPORTED;
}

static void large_trim(af_allocator *self) {
  af_large *l = (af_large *)self;
  while (l->oldest != NULL) evict_oldest(l);
}

static void large_get_stats(af_allocator *self, af_stats *out) {
  af_large *l = (af_large *)self;
  af_counters_fill(&l->c, out);
  out->os_bytes = l->mapped;
  out->os_maps = l->os_maps;
  out->os_unmaps = l->os_unmaps;
  out->cache_hits = l->hits;
  out->cache_misses = l->misses;
  out->cached_bytes = l->cached;
  out->purged_bytes = l->purged_bytes;
}

/* Regions are reachable only through the map: walk its slots. */
static void large_destroy(af_allocator *self) {
  af_large *l = (af_large *)self;
  for (size_t i = 0; l->map.count > 0 && i <= l->map.mask; i++) {
    region *r = l->map.slots[i].value;
    if (l->map.slots[i].key != 0) {
      _af_os_unmap((void *)r->base, r->size);
      free(r);
    }
  }
  _af_addrmap_destroy(&l->map);
  free(l);
}

static const af_vtable large_vtable = {
    .name = "large",
    .caps = AF_CAP_FREE | AF_CAP_TRIM | AF_CAP_OWNS,
    .alloc = large_alloc,
    .calloc = large_calloc,
    .free = large_free,
    .realloc = large_realloc,
    .usable_size = large_usable_size,
    .owns = large_owns,
    .reset = large_reset,
    .trim = large_trim,
    .get_stats = large_get_stats,
    .destroy = large_destroy,
};

af_allocator *af_large_new(const af_large_options *options, af_error *err) {
  af_large_options o = options != NULL ? *options : (af_large_options){0};
  af_large *l = calloc(1, sizeof *l);
  if (l == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "large: out of memory for the allocator object");
    return NULL;
  }
  l->base.vt = &large_vtable;
  _af_addrmap_init(&l->map);
  l->page_shift = af_log2(_af_os_page_size());
  l->clock_countdown = AF_LARGE_CLOCK_EVERY;
  l->max_cached = o.max_cached_bytes != 0 ? o.max_cached_bytes : AF_LARGE_MAX_CACHED;
  l->adaptive = o.max_cached_bytes == 0;
  l->limit = l->max_cached;
  l->purge_delay = o.purge_delay_ns != 0 ? o.purge_delay_ns : AF_LARGE_PURGE_DELAY_NS;
  l->window_ns = l->purge_delay > UINT64_MAX / AF_LARGE_WINDOW_DELAYS ? UINT64_MAX
                                                                       : l->purge_delay * AF_LARGE_WINDOW_DELAYS;
  l->byte_limit = o.byte_limit;
  return &l->base;
}

size_t _af_large_mapped_bytes(af_allocator *a) {
  af_assert(a->vt == &large_vtable);
  return ((af_large *)a)->mapped;
}

void _af_large_set_byte_limit(af_allocator *a, size_t byte_limit) {
  af_assert(a->vt == &large_vtable);
  ((af_large *)a)->byte_limit = byte_limit;
}
