/* ----------------------------------------------------------------------------
 * slab.c: the slab allocator (af_slab_new). Requests are rounded up to a size
 * class; each class carves blocks out of slabs (mappings of a power-of-two
 * size, 64 KiB aligned) and keeps freed blocks on intrusive per-slab free
 * lists. Requests above the largest class go to an internal large-region
 * cache (large.c).
 *
 * Size-class lookup is O(1) for any size: a direct table per 16-byte granule
 * up to SMALL_MAX, then 16 log-linear buckets per power of two, each holding
 * the first class that can serve its smallest size; the constructor rejects
 * configurations where a bucket would need more than MAX_STEPS forward steps.
 *
 * Default classes: every 16 bytes up to 128, then 4 per power of two up to
 * 1 MiB (160, 192, 224, 256, 320, ...). Worst-case waste (class - size)/class
 * is below 25% for every size from 49 bytes on (49 -> 64 wastes 23.4%); below
 * that, sizes round to the 16-byte granule and waste fewer than 16 bytes.
 *
 * Invariants:
 * - every 64 KiB granule of a slab is in `map` (a radix map: granule ->
 *   slab), so free finds a block's slab in O(1) without reading the block,
 *   and a pointer outside every slab is handed to the large cache, which
 *   refuses it unless it is one of its live regions;
 * - a block is at base + k * block_size below base + carved; blocks are
 *   carved in address order; [base + max(carved, dirty), base + carve_limit)
 *   has never been handed out (still zero from the OS);
 * - in a class whose slabs span more than RESET_MIN_BYTES, a slab whose every
 *   block is free is reset at once (empty_slab) unless a single block is on
 *   its list: the list is dropped and carving starts again at its base, and
 *   a late double free into it is refused (no pointer is a block);
 * - a slab counts its live blocks (used); a class counts its allocations
 *   (hits: from a free list, misses: carved); frees are derived: allocs -
 *   the live blocks of the class's slabs (see class_sum, slab_totals);
 * - a slab is on its class's avail list iff on_avail; a slab with a free block
 *   or carve room is either on it or gets pushed back by the next free;
 * - slab_bytes + large cache's mapped bytes <= byte_limit when a limit is set.
 *
 * Why empty slabs are reset. A free list records blocks in the order they were
 * freed; after frees in random order it leads through the slab's memory at
 * random, and every pop reads the next link from a block that is no longer in
 * cache: a cache miss per allocation, each waiting for the one before (1e6
 * live 64-byte blocks freed at random cost ~4x mimalloc's time per op).
 * A reset slab hands its blocks out in address order instead, which the
 * hardware prefetcher follows. mimalloc gets the same effect by retiring a
 * page whose blocks are all free and building its next free list afresh.
 * Small classes keep their lists: while the blocks are in cache, most
 * recently freed first beats address order.
 * ------------------------------------------------------------------------- */
#include "addrmap.h"
#include "large.h"
#include "os.h"

#include <stddef.h>
#include <stdlib.h>

#define GRANULE_SHIFT AF_RADIX_GRANULE_SHIFT /* slabs are aligned to and registered per 64 KiB */
#define MIN_SLAB ((size_t)1 << GRANULE_SHIFT) /* smallest slab */
#define SMALL_MAX 8192                        /* direct lookup table up to this size */
#define BIG_FIRST_LOG 13                      /* log2(SMALL_MAX): first log-linear power */
#define BIG_SUBS 16                           /* log-linear buckets per power of two */
#define BIG_BUCKETS (BIG_SUBS * (41 - BIG_FIRST_LOG))
#define MAX_STEPS 2                           /* forward steps after a bucket's first candidate */
#define MAX_CLASSES 128                       /* class indexes fit a uint8_t, with a sentinel */
#define MAX_CLASS_SIZE ((size_t)256 << 20)    /* slabs stay below 2^32 bytes (see divisor_magic) */
#define ALIGN_STEPS 8                         /* alignments 32 .. 4096 */
#define RESET_MIN_BYTES ((size_t)1 << 20)     /* empty slabs are reset in classes larger than this (~ an L2) */

/* The fields the fast paths read (free .. carve_limit) share the first line. */
typedef struct slab {
  void *free;                 /* intrusive list of free blocks of this slab */
  uintptr_t base;             /* 64 KiB aligned; first block */
  size_t carved;              /* bytes from base handed out since the slab was mapped or reset: <= carve_limit */
  uint64_t divisor_magic;     /* ceil(2^64 / block_size): off < 2^32 is a multiple of block_size iff off * magic < magic */
  uint64_t used;              /* live blocks; 0: empty (then it is reset, see empty_slab) */
  bool on_avail;              /* on the class's avail list */
  uint16_t cls;               /* class index */
  uint32_t block_size;        /* the class size */
  size_t carve_limit;         /* bytes of whole blocks */
  size_t dirty;               /* carved's high-water mark at the last reset: blocks below may hold old data */
  size_t bytes;               /* mapped bytes, < 2^32 */
  struct slab *next, *prev;   /* avail list of the class */
  struct slab *all_next, *all_prev; /* every slab of the class */
} slab;
_Static_assert(offsetof(slab, carve_limit) + sizeof(size_t) <= 64, "the fast paths' fields fill the first line");

/* The class's af_class_stats: in_use = the slabs' used, frees = hits +
   misses - in_use, free blocks = the slabs' carved blocks - in_use (see
   class_sum). A slab released by trim had no live block. */
typedef struct slab_class {
  slab *avail;                /* slabs that may have a free block or carve room, freshest first */
  slab *all;                  /* every slab of the class */
  size_t size;                /* block size */
  size_t slab_bytes;          /* size of a new slab */
  uint64_t hits;              /* allocations from a free list */
  uint64_t misses;            /* allocations that carved a block */
  uint64_t slabs;             /* slabs held */
} slab_class;

typedef struct af_slab {
  af_allocator base;          /* first */
  af_counters c;              /* allocs, frees: always 0 (derived, see slab_totals) */
  af_radixmap map;            /* granule -> slab */
  uint8_t small[SMALL_MAX / 16 + 1]; /* ceil(size / 16) -> first class >= size; count: oversize */
  size_t class_count;
  size_t max_class;           /* largest class size */
  bool zero;                  /* zero_on_alloc */
  size_t byte_limit;          /* 0: none */
  size_t large_limit;         /* the large cache's own limit (0: none) */
  size_t slab_bytes;          /* mapped for slabs */
  uint64_t slab_count, slab_maps, slab_unmaps, oversize_allocs, oversize_in_use;
  uint64_t moves;             /* reallocs that moved: their alloc and free are not allocs/frees */
  af_allocator *large;        /* cache for requests above max_class */
  _af_slab_observer observer; /* NULL, or told of every slab mapped and unmapped (see _af_slab_observe) */
  void *observer_arg;
  uint8_t big[BIG_BUCKETS];   /* log-linear bucket -> first candidate class */
  uint8_t aligned[ALIGN_STEPS][MAX_CLASSES + 1]; /* class -> first class >= it with an aligned size */
  slab_class classes[MAX_CLASSES + 1]; /* [class_count] is a sentinel that never has slabs */
} af_slab;

static const af_vtable slab_vtable, slab_zero_vtable;

static bool is_slab(const af_allocator *a) { return a->vt == &slab_vtable || a->vt == &slab_zero_vtable; }

/* ----------------------------------------------------------------------------
 * Size classes
 * ------------------------------------------------------------------------- */

static inline unsigned big_bucket(size_t size) {
  unsigned e = af_log2(size - 1); /* size in (2^e, 2^(e+1)] */
  return (e - BIG_FIRST_LOG) * BIG_SUBS + (unsigned)(((size - 1) >> (e - 4)) & (BIG_SUBS - 1));
}

/* Class index for size <= max_class and align <= 16. */
static inline unsigned class_of_size(const af_slab *s, size_t size) {
  if (af_likely(size <= SMALL_MAX)) return s->small[(size + 15) >> 4];
  unsigned i = s->big[big_bucket(size)];
  while (s->classes[i].size < size) i++; /* at most MAX_STEPS times */
  return i;
}

/* Class index for (size, align), or class_count when oversize. */
static inline unsigned class_of(const af_slab *s, size_t size, size_t align) {
  if (af_unlikely(size > s->max_class)) return (unsigned)s->class_count;
  unsigned i = class_of_size(s, size);
  /* A block sits at a 64 KiB aligned base + k * size: aligned iff size is. */
  if (af_unlikely(align > 16)) i = s->aligned[af_log2(align) - 5][i];
  return i;
}

/* ----------------------------------------------------------------------------
 * Slabs
 * ------------------------------------------------------------------------- */

static void avail_push(slab_class *k, slab *sl) {
  sl->prev = NULL;
  sl->next = k->avail;
  if (k->avail != NULL) k->avail->prev = sl;
  k->avail = sl;
  sl->on_avail = true;
}

static void avail_remove(slab_class *k, slab *sl) {
  if (sl->prev != NULL) sl->prev->next = sl->next;
  else k->avail = sl->next;
  if (sl->next != NULL) sl->next->prev = sl->prev;
  sl->on_avail = false;
}

/* A zeroed slab record on a cache line of its own, so that the fields of the
   fast paths (the first 64 bytes) cost one line: with a million live blocks
   freed at random every free reads a different record (glibc's 16-byte
   aligned records straddled two lines: 16% more L1 misses per free). */
#define RECORD_ALIGN 64
static slab *new_record(void) {
  size_t bytes = af_align_up(sizeof(slab), RECORD_ALIGN);
  slab *sl = aligned_alloc(RECORD_ALIGN, bytes);
  if (sl != NULL) memset(sl, 0, bytes);
  return sl;
}

/* Maps a slab for class k and puts it first on the avail list. */
static slab *new_slab(af_slab *s, unsigned cls) {
  slab_class *k = &s->classes[cls];
  size_t bytes = k->slab_bytes;
  if (s->byte_limit != 0) {
    if (s->slab_bytes + _af_large_mapped_bytes(s->large) + bytes > s->byte_limit)
      s->large->vt->trim(s->large); /* cached oversize regions go first */
    if (s->slab_bytes + _af_large_mapped_bytes(s->large) + bytes > s->byte_limit) {
      s->base.last_error = AF_ERR_LIMIT;
      return NULL;
    }
  }
  slab *sl = new_record();
  void *mem = NULL;
  int status = sl == NULL ? AF_ERR_NOMEM : _af_os_map(bytes, MIN_SLAB, &mem);
  if (status == AF_OK) {
    sl->base = (uintptr_t)mem;
    status = _af_radixmap_set_range(&s->map, sl->base, bytes, sl);
    if (status == AF_OK && s->observer != NULL) {
      status = s->observer(s->observer_arg, sl->base, bytes, true);
      if (status != AF_OK) (void)_af_radixmap_set_range(&s->map, sl->base, bytes, NULL);
    }
    if (status != AF_OK) _af_os_unmap(mem, bytes);
  }
  if (status != AF_OK) {
    free(sl);
    s->base.last_error = status;
    return NULL;
  }
  sl->carved = 0;
  sl->carve_limit = (bytes / k->size) * k->size;
  sl->block_size = (uint32_t)k->size;
  sl->divisor_magic = UINT64_MAX / k->size + 1;
  sl->cls = (uint16_t)cls;
  sl->bytes = bytes;
  sl->all_prev = NULL;
  sl->all_next = k->all;
  if (k->all != NULL) k->all->all_prev = sl;
  k->all = sl;
  avail_push(k, sl);
  k->slabs++;
  s->slab_count++;
  s->slab_maps++;
  s->slab_bytes += bytes;
  return sl;
}

static void release_slab(af_slab *s, slab *sl) {
  slab_class *k = &s->classes[sl->cls];
  if (sl->on_avail) avail_remove(k, sl);
  if (sl->all_prev != NULL) sl->all_prev->all_next = sl->all_next;
  else k->all = sl->all_next;
  if (sl->all_next != NULL) sl->all_next->all_prev = sl->all_prev;
  af_assert(sl->used == 0);
  k->slabs--;
  (void)_af_radixmap_set_range(&s->map, sl->base, sl->bytes, NULL); /* clearing never fails */
  if (s->observer != NULL) (void)s->observer(s->observer_arg, sl->base, sl->bytes, false);
  _af_os_unmap((void *)sl->base, sl->bytes);
  s->slab_count--;
  s->slab_unmaps++;
  s->slab_bytes -= sl->bytes;
  free(sl);
}

/* Is ptr, in a granule of sl, a block boundary below the carved end? One
   unsigned compare covers both sides (and an address aliased from above
   2^48); the divisibility test is Lemire's: for off < 2^32, off is a
   multiple of the block size iff off * ceil(2^64 / size) wraps below the magic. */
static inline bool is_block(const slab *sl, const void *ptr) {
  uintptr_t off = (uintptr_t)ptr - sl->base;
  return off < sl->carved && off * sl->divisor_magic < sl->divisor_magic;
}

/* The slab of a block boundary handed out by this allocator, or NULL. */
static inline slab *block_slab(const af_slab *s, const void *ptr) {
  slab *sl = _af_radixmap_get(&s->map, (uintptr_t)ptr);
  return sl != NULL && is_block(sl, ptr) ? sl : NULL;
}

/* ----------------------------------------------------------------------------
 * Blocks (no allocator-wide counters here: the vtable functions count)
 * ------------------------------------------------------------------------- */

static inline void *pop_free(slab_class *k, slab *sl) {
  void *b = sl->free;
  sl->free = *(void **)b;
  sl->used++;
  k->hits++;
  return b;
}

/* The next block in address order; the caller checked carved < carve_limit. */
static inline void *carve(slab_class *k, slab *sl) {
  void *b = (void *)(sl->base + sl->carved);
  sl->carved += sl->block_size;
  sl->used++;
  k->misses++;
  return b;
}

#if AF_DEBUG >= 2
/* Blocks on a slab's free list (expensive checks only). */
static size_t list_length(const slab *sl) {
  size_t n = 0;
  for (void *b = sl->free; b != NULL; b = *(void **)b) n++;
  return n;
}
#endif

/* Every block of sl is free and more than one is on its free list. If the
   class's slabs span more than RESET_MIN_BYTES, forget the list and carve
   from the base again (see the header comment). Otherwise keep it: while a
   class fits in cache, the list's order (most recently freed first) is the
   best order there is, and a reset would hand out the blocks freed longest
   ago first (batch-100 took 23% more time with it). Pushes the slab back on
   its avail list if a single free took it from full to empty. */
static __attribute__((noinline, cold)) void empty_slab(af_slab *s, slab *sl) {
  af_assert_expensive(list_length(sl) == sl->carved / sl->block_size); /* used said: every carved block is free */
  slab_class *k = &s->classes[sl->cls];
  if (k->slabs * k->slab_bytes > RESET_MIN_BYTES) {
    sl->free = NULL;
    if (sl->carved > sl->dirty) sl->dirty = sl->carved;
    sl->carved = 0;
  }
  if (!sl->on_avail) avail_push(k, sl);
}

/* The slow path of a class: next free block, carving, or a new slab. */
static void *class_alloc(af_slab *s, unsigned cls, size_t size, bool zero) {
  slab_class *k = &s->classes[cls];
  slab *sl = k->avail;
  for (;;) {
    if (sl == NULL) {
      sl = new_slab(s, cls);
      if (sl == NULL) return NULL;
    }
    if (sl->free != NULL) {
      void *b = pop_free(k, sl);
      if (zero) memset(b, 0, size);
      return b;
    }
    if (sl->carved < sl->carve_limit) {
      bool used_before = sl->carved < sl->dirty; /* else never handed out: already zero */
      void *b = carve(k, sl);
      if (zero && used_before) memset(b, 0, size);
      return b;
    }
    slab *full = sl;
    sl = sl->next;
    avail_remove(k, full);
  }
}

static void *oversize_alloc(af_slab *s, size_t size, size_t align, bool zero) {
  af_allocator *large = s->large;
  if (s->byte_limit != 0) {
    if (s->slab_bytes >= s->byte_limit) {
      s->base.last_error = AF_ERR_LIMIT;
      return NULL;
    }
    size_t room = s->byte_limit - s->slab_bytes;
    _af_large_set_byte_limit(large, s->large_limit != 0 && s->large_limit < room ? s->large_limit : room);
  }
  void *p = zero ? large->vt->calloc(large, size, align) : large->vt->alloc(large, size, align);
  if (p == NULL) {
    s->base.last_error = large->last_error;
    return NULL;
  }
  s->oversize_allocs++;
  s->oversize_in_use++;
  return p;
}

static void *block_alloc(af_slab *s, size_t size, size_t align, bool zero) {
  unsigned cls = class_of(s, size, align);
  if (cls == s->class_count) return oversize_alloc(s, size, align, zero);
  return class_alloc(s, cls, size, zero);
}

static inline void push_free(af_slab *s, slab *sl, void *ptr) {
  void *next = sl->free;
  *(void **)ptr = next;
  sl->free = ptr;
  if (af_unlikely(--sl->used == 0) && next != NULL) empty_slab(s, sl); /* empty, more than one block on the list */
  else if (af_unlikely(!sl->on_avail)) avail_push(&s->classes[sl->cls], sl);
}

/* Frees a block of either kind; AF_ERR_NOT_OWNED changes nothing. */
static int block_free(af_slab *s, void *ptr, size_t size, size_t align) {
  slab *sl = _af_radixmap_get(&s->map, (uintptr_t)ptr);
  if (sl == NULL) {
    int status = s->large->vt->free(s->large, ptr, size, align);
    if (status == AF_OK) s->oversize_in_use--;
    return status;
  }
  /* The free-list head check catches the commonest double free for free. */
  if (!is_block(sl, ptr) || sl->free == ptr) return AF_ERR_NOT_OWNED;
  af_assert(size <= sl->block_size);
  push_free(s, sl, ptr);
  return AF_OK;
}

/* ----------------------------------------------------------------------------
 * Vtable
 * ------------------------------------------------------------------------- */

/* The byte counters of an alloc (the count itself is derived). */
static inline void count_alloc_bytes(af_slab *s, size_t size) {
  s->c.bytes_in_use += size;
  if (s->c.bytes_in_use > s->c.peak_bytes_in_use) s->c.peak_bytes_in_use = s->c.bytes_in_use;
}

static __attribute__((noinline)) void *slab_alloc_slow(af_slab *s, size_t size, size_t align, bool zero) {
  void *b = block_alloc(s, size, align, zero);
  if (af_unlikely(b == NULL)) return af_fail(&s->base, &s->c, s->base.last_error);
  count_alloc_bytes(s, size);
  return b;
}

/* Fast path: small size, default alignment, a free block or carve room on
   the class's first slab. (zero_on_alloc instances use slab_calloc as alloc
   instead.) */
static void *slab_alloc(af_allocator *self, size_t size, size_t align) {
  af_slab *s = (af_slab *)self;
  if (af_likely(size <= SMALL_MAX && align <= 16)) {
    slab_class *k = &s->classes[s->small[(size + 15) >> 4]];
    slab *sl = k->avail; /* NULL for the sentinel class */
    if (af_likely(sl != NULL)) {
      void *b = sl->free;
      if (af_likely(b != NULL)) {
        sl->free = *(void **)b;
        sl->used++;
        k->hits++;
        count_alloc_bytes(s, size);
        return b;
      }
      if (sl->carved < sl->carve_limit) {
        b = carve(k, sl);
        count_alloc_bytes(s, size);
        return b;
      }
    }
  }
  return slab_alloc_slow(s, size, align, false);
}

static void *slab_calloc(af_allocator *self, size_t size, size_t align) {
  return slab_alloc_slow((af_slab *)self, size, align, true);
}

static __attribute__((noinline)) int slab_free_slow(af_slab *s, void *ptr, size_t size, size_t align) {
  int status = block_free(s, ptr, size, align);
  if (status == AF_OK) s->c.bytes_in_use -= size;
  return status;
}

/* Fast path: the map names the slab, the pointer is a carved block boundary
   and not the free-list head (the cheap part of double-free detection).
   Nothing reads the block before those checks pass. */
static int slab_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  af_slab *s = (af_slab *)self;
  slab *sl = _af_radixmap_get(&s->map, (uintptr_t)ptr);
  if (af_likely(sl != NULL && is_block(sl, ptr) && sl->free != ptr)) {
    af_assert(size <= sl->block_size);
    push_free(s, sl, ptr);
    s->c.bytes_in_use -= size;
    return AF_OK;
  }
  return slab_free_slow(s, ptr, size, align);
}

static void *slab_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  af_slab *s = (af_slab *)self;
  unsigned cls = class_of(s, new_size, align);
  slab *sl = _af_radixmap_get(&s->map, (uintptr_t)ptr);
  void *q;
  if (sl != NULL) {
    if (!is_block(sl, ptr) || sl->free == ptr) return af_fail(self, &s->c, AF_ERR_NOT_OWNED);
    if (cls == sl->cls) { /* same class: nothing moves */
      if (s->zero && new_size > old_size) memset((char *)ptr + old_size, 0, new_size - old_size);
      af_count_realloc(&s->c, old_size, new_size);
      return ptr;
    }
  } else if (cls == s->class_count) { /* oversize to oversize: the cache decides */
    if (!s->large->vt->owns(s->large, ptr)) return af_fail(self, &s->c, AF_ERR_NOT_OWNED);
    if (s->byte_limit != 0) { /* same limit arithmetic as a fresh oversize block */
      if (s->slab_bytes >= s->byte_limit) return af_fail(self, &s->c, AF_ERR_LIMIT);
      size_t room = s->byte_limit - s->slab_bytes;
      _af_large_set_byte_limit(s->large, s->large_limit != 0 && s->large_limit < room ? s->large_limit : room);
    }
    q = s->large->vt->realloc(s->large, ptr, old_size, new_size, align);
    if (q == NULL) return af_fail(self, &s->c, s->large->last_error);
    if (s->zero && new_size > old_size) memset((char *)q + old_size, 0, new_size - old_size);
    af_count_realloc(&s->c, old_size, new_size);
    return q;
  } else if (!s->large->vt->owns(s->large, ptr)) {
    return af_fail(self, &s->c, AF_ERR_NOT_OWNED);
  }
  q = block_alloc(s, new_size, align, s->zero);
  if (q == NULL) return af_fail(self, &s->c, self->last_error);
  memcpy(q, ptr, old_size < new_size ? old_size : new_size);
  int status = block_free(s, ptr, old_size, align);
  af_assert(status == AF_OK);
  (void)status;
  s->moves++;
  af_count_realloc(&s->c, old_size, new_size);
  return q;
}

static size_t slab_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  af_slab *s = (af_slab *)self;
  slab *sl = block_slab(s, ptr);
  if (sl != NULL) return sl->block_size;
  return s->large->vt->usable_size(s->large, ptr, size, align);
}

static int slab_owns(af_allocator *self, const void *ptr) {
  af_slab *s = (af_slab *)self;
  return block_slab(s, ptr) != NULL || s->large->vt->owns(s->large, ptr);
}

static int slab_reset(af_allocator *self) {
  (void)self;
  return AF_ERR_UNSUPPORTED;
}

static void slab_trim(af_allocator *self) {
  af_slab *s = (af_slab *)self;
  for (size_t i = 0; i < s->class_count; i++) {
    slab *sl = s->classes[i].all;
    while (sl != NULL) {
      slab *next = sl->all_next;
      if (sl->used == 0) release_slab(s, sl);
      sl = next;
    }
  }
  s->large->vt->trim(s->large);
}

/* A class's counters (O(slabs)). */
typedef struct class_sums {
  uint64_t allocs, in_use, carved_blocks;
} class_sums;

static class_sums class_sum(const slab_class *k) {
  class_sums t = {k->hits + k->misses, 0, 0};
  for (const slab *sl = k->all; sl != NULL; sl = sl->all_next) {
    t.in_use += sl->used;
    t.carved_blocks += sl->carved / sl->block_size;
  }
  return t;
}

/* allocs and frees as the stats define them. Every successful block alloc
   is a slab's alloc or an oversize alloc, every block free a slab's or
   the large cache's free; a realloc that moves does one of each, which
   counts as a realloc instead. */
static void slab_totals(const af_slab *s, uint64_t *allocs, uint64_t *frees) {
  uint64_t a = s->oversize_allocs, f = s->oversize_allocs - s->oversize_in_use;
  for (size_t i = 0; i < s->class_count; i++) {
    class_sums t = class_sum(&s->classes[i]);
    a += t.allocs;
    f += t.allocs - t.in_use;
  }
  *allocs = a - s->moves;
  *frees = f - s->moves;
}

static void slab_get_stats(af_allocator *self, af_stats *out) {
  af_slab *s = (af_slab *)self;
  af_stats large;
  memset(&large, 0, sizeof large);
  s->large->vt->get_stats(s->large, &large);
  af_counters_fill(&s->c, out);
  slab_totals(s, &out->allocs, &out->frees);
  out->blocks_in_use = out->allocs - out->frees;
  out->os_bytes = s->slab_bytes + large.os_bytes;
  out->slabs = s->slab_count;
  out->oversize_allocs = s->oversize_allocs;
  out->oversize_in_use = s->oversize_in_use;
  out->os_maps = s->slab_maps + large.os_maps;
  out->os_unmaps = s->slab_unmaps + large.os_unmaps;
  out->cache_hits = large.cache_hits;
  out->cache_misses = large.cache_misses;
  out->cached_bytes = large.cached_bytes;
  out->purged_bytes = large.purged_bytes;
}

static void slab_destroy(af_allocator *self) {
  af_slab *s = (af_slab *)self;
  for (size_t i = 0; i < s->class_count; i++) {
    slab *sl = s->classes[i].all;
    while (sl != NULL) {
      slab *next = sl->all_next;
      if (s->observer != NULL) (void)s->observer(s->observer_arg, sl->base, sl->bytes, false);
      _af_os_unmap((void *)sl->base, sl->bytes);
      free(sl);
      sl = next;
    }
  }
  _af_radixmap_destroy(&s->map);
  s->large->vt->destroy(s->large);
  free(s);
}

static const af_vtable slab_vtable = {
    .name = "slab",
    .caps = AF_CAP_FREE | AF_CAP_TRIM | AF_CAP_OWNS,
    .alloc = slab_alloc,
    .calloc = slab_calloc,
    .free = slab_free,
    .realloc = slab_realloc,
    .usable_size = slab_usable_size,
    .owns = slab_owns,
    .reset = slab_reset,
    .trim = slab_trim,
    .get_stats = slab_get_stats,
    .destroy = slab_destroy,
};

/* zero_on_alloc: every allocation is a calloc, so the fast path of the
   plain vtable needs no flag test. */
static const af_vtable slab_zero_vtable = {
    .name = "slab",
    .caps = AF_CAP_FREE | AF_CAP_TRIM | AF_CAP_OWNS,
    .alloc = slab_calloc,
    .calloc = slab_calloc,
    .free = slab_free,
    .realloc = slab_realloc,
    .usable_size = slab_usable_size,
    .owns = slab_owns,
    .reset = slab_reset,
    .trim = slab_trim,
    .get_stats = slab_get_stats,
    .destroy = slab_destroy,
};

/* ----------------------------------------------------------------------------
 * Construction: validate the classes, then build the lookup tables.
 * ------------------------------------------------------------------------- */

static size_t default_classes(size_t *out) {
  size_t n = 0;
  for (size_t size = 16; size <= 128; size += 16) out[n++] = size;
  for (size_t pow = 128; pow < ((size_t)1 << 20); pow *= 2)
    for (size_t k = 5; k <= 8; k++) out[n++] = pow / 4 * k;
  return n;
}

static int validate_classes(const size_t *sizes, size_t n, af_error *err) {
  if (n == 0 || n > MAX_CLASSES)
    return _af_error_set(err, AF_ERR_INVALID, "slab: class_count must be between 1 and %d, got %zu", MAX_CLASSES, n);
  for (size_t i = 0; i < n; i++) {
    if (sizes[i] == 0 || sizes[i] % 16 != 0)
      return _af_error_set(err, AF_ERR_INVALID, "slab: class size %zu (index %zu) is not a positive multiple of 16",
                           sizes[i], i);
    if (sizes[i] > MAX_CLASS_SIZE)
      return _af_error_set(err, AF_ERR_INVALID, "slab: class size %zu (index %zu) exceeds the maximum of %zu bytes",
                           sizes[i], i, MAX_CLASS_SIZE);
    if (i > 0 && sizes[i] <= sizes[i - 1])
      return _af_error_set(err, AF_ERR_INVALID,
                           "slab: class sizes must be strictly ascending, but %zu (index %zu) follows %zu", sizes[i], i,
                           sizes[i - 1]);
  }
  return AF_OK;
}

/* Fills the lookup tables; fails when a log-linear bucket holds too many classes. */
static int build_tables(af_slab *s, af_error *err) {
  size_t n = s->class_count;
  unsigned i = 0;
  for (size_t g = 0; g <= SMALL_MAX / 16; g++) {
    while (i < n && s->classes[i].size < g * 16) i++;
    s->small[g] = (uint8_t)i;
  }
  for (unsigned b = 0; b < BIG_BUCKETS; b++) {
    unsigned e = BIG_FIRST_LOG + b / BIG_SUBS;
    if (e >= 41) break;
    size_t lo = ((size_t)1 << e) + (size_t)(b % BIG_SUBS) * ((size_t)1 << (e - 4)) + 1; /* smallest size */
    size_t hi = lo - 1 + ((size_t)1 << (e - 4));                                          /* largest size */
    unsigned first = 0;
    while (first < n && s->classes[first].size < lo) first++;
    s->big[b] = (uint8_t)first;
    unsigned steps = 0;
    for (unsigned j = first; j < n && s->classes[j].size < hi; j++) steps++;
    if (steps > MAX_STEPS)
      return _af_error_set(err, AF_ERR_INVALID,
                           "slab: classes %zu and above are too dense for O(1) lookup: at most %d classes may lie "
                           "within (%zu, %zu); above 8192 bytes keep classes at least size/16 apart",
                           s->classes[first].size, MAX_STEPS, lo - 1, hi);
  }
  for (unsigned a = 0; a < ALIGN_STEPS; a++) {
    size_t align = (size_t)32 << a;
    for (size_t c = 0; c <= n; c++) {
      size_t j = c;
      while (j < n && s->classes[j].size % align != 0) j++;
      s->aligned[a][c] = (uint8_t)j;
    }
  }
  return AF_OK;
}

af_allocator *af_slab_new(const af_slab_options *options, af_error *err) {
  af_slab_options o = options != NULL ? *options : (af_slab_options){0};
  size_t defaults[MAX_CLASSES];
  const size_t *sizes = o.class_sizes;
  size_t n = o.class_count;
  if (sizes == NULL) {
    if (n != 0) {
      _af_error_set(err, AF_ERR_INVALID, "slab: class_count is %zu but class_sizes is NULL", n);
      return NULL;
    }
    n = default_classes(defaults);
    sizes = defaults;
  }
  if (validate_classes(sizes, n, err) != AF_OK) return NULL;
  af_slab *s = calloc(1, sizeof *s);
  if (s == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "slab: out of memory for the allocator object");
    return NULL;
  }
  s->base.vt = o.zero_on_alloc ? &slab_zero_vtable : &slab_vtable;
  s->class_count = n;
  s->max_class = sizes[n - 1];
  s->zero = o.zero_on_alloc != 0;
  s->byte_limit = o.byte_limit;
  s->large_limit = o.large.byte_limit;
  for (size_t i = 0; i < n; i++) {
    size_t slab_bytes = MIN_SLAB;
    while (slab_bytes < 4 * sizes[i]) slab_bytes *= 2; /* at least 4 blocks per slab */
    s->classes[i].size = sizes[i];
    s->classes[i].slab_bytes = slab_bytes;
  }
  s->classes[n].size = SIZE_MAX; /* sentinel: stops the forward steps, never has slabs */
  if (build_tables(s, err) != AF_OK) {
    free(s);
    return NULL;
  }
  if (_af_radixmap_init(&s->map) != AF_OK) {
    _af_error_set(err, AF_ERR_NOMEM, "slab: out of memory for the address map");
    free(s);
    return NULL;
  }
  s->large = af_large_new(&o.large, err);
  if (s->large == NULL) {
    _af_radixmap_destroy(&s->map);
    free(s);
    return NULL;
  }
  if (s->byte_limit != 0) _af_large_set_byte_limit(s->large, s->large_limit);
  return &s->base;
}

/* ----------------------------------------------------------------------------
 * Introspection (through the locked wrapper too)
 * ------------------------------------------------------------------------- */

size_t af_slab_class_count(af_allocator *a) {
  af_allocator *inner = _af_inner_acquire(a);
  size_t n = is_slab(inner) ? ((af_slab *)inner)->class_count : 0;
  _af_inner_release(a);
  return n;
}

int af_slab_class_stats(af_allocator *a, size_t index, af_class_stats *out) {
  af_allocator *inner = _af_inner_acquire(a);
  int status = AF_OK;
  if (!is_slab(inner)) {
    status = AF_ERR_UNSUPPORTED;
  } else if (index >= ((af_slab *)inner)->class_count) {
    status = AF_ERR_INVALID;
  } else {
    const slab_class *k = &((af_slab *)inner)->classes[index];
    class_sums t = class_sum(k);
    *out = (af_class_stats){.class_size = k->size, .in_use = t.in_use, .free = t.carved_blocks - t.in_use,
                            .hits = k->hits, .misses = k->misses, .slabs = k->slabs};
  }
  _af_inner_release(a);
  return status;
}

void _af_slab_observe(af_allocator *a, _af_slab_observer observer, void *arg) {
  af_assert(is_slab(a));
  af_slab *s = (af_slab *)a;
  s->observer = observer;
  s->observer_arg = arg;
}

size_t af_slab_class_for(af_allocator *a, size_t size) {
  af_allocator *inner = _af_inner_acquire(a);
  size_t class_size = 0;
  if (is_slab(inner)) {
    const af_slab *s = (const af_slab *)inner;
    unsigned cls = class_of(s, size, AF_DEFAULT_ALIGN);
    if (cls < s->class_count) class_size = s->classes[cls].size;
  }
  _af_inner_release(a);
  return class_size;
}
