/* ----------------------------------------------------------------------------
 * bump.c: the bump arena (af_bump_new). Blocks are carved by moving a pointer
 * through chunks mapped from the OS; individual frees are only counted (and
 * roll the pointer back for the newest block); reset() releases everything.
 *
 * Invariants:
 * - chunks form a list from the current (newest) chunk back to the oldest;
 *   each chunk starts with its header, blocks follow it;
 * - cur_start <= ptr <= end for the current chunk; [cur_start, ptr) has been
 *   handed out; [max(ptr, dirty), end) has never been written since the chunk
 *   was mapped or purged, so it reads as zero;
 * - last is the start of the newest live block in the current chunk, or 0
 *   when unknown (after a rollback, a reset or a chunk switch);
 * - capacity (total chunk bytes) <= byte_limit when a limit is set;
 * - chunk sizes grow geometrically, so the chunk count is logarithmic in the
 *   capacity and the chunk walks of free/owns stay short;
 * - next_size <= max_chunk; a reset that ends a phase which needed more than
 *   one chunk raises next_size to the capacity held (capped by max_chunk and
 *   by what the byte limit leaves beside the kept chunk), and every reset
 *   keeps the largest chunk. So a steady alloc..reset cycle whose phase fits
 *   in max_chunk maps its last chunk in the second phase and from the third
 *   on maps and unmaps nothing (requests bigger than the geometric size, which
 *   get chunks of their own, included).
 * ------------------------------------------------------------------------- */
#include "af_internal.h"
#include "os.h"

#include <stdlib.h>

#ifndef AF_BUMP_FIRST_CHUNK
#define AF_BUMP_FIRST_CHUNK ((size_t)64 << 10) /* default first chunk: 64 KiB */
#endif
#ifndef AF_BUMP_MAX_CHUNK
#define AF_BUMP_MAX_CHUNK ((size_t)64 << 20) /* default chunk size cap: 64 MiB */
#endif

typedef struct bump_chunk {
  struct bump_chunk *prev;    /* older chunk, NULL for the oldest */
  size_t size;                /* mapped bytes, header included (page multiple) */
  uintptr_t used_end;         /* for a retired chunk: end of what was handed out / dirtied */
} bump_chunk;

/* Blocks start after the header, rounded to the default alignment. */
#define CHUNK_HEADER af_align_up(sizeof(bump_chunk), AF_DEFAULT_ALIGN)

typedef struct af_bump {
  af_allocator base;          /* first */
  uintptr_t ptr;              /* next free byte of the current chunk */
  uintptr_t end;              /* end of the current chunk (0 when there is none) */
  uintptr_t last;             /* start of the newest block, 0 if unknown */
  af_counters c;
  uintptr_t cur_start;        /* first block byte of the current chunk */
  uintptr_t dirty;            /* highest address of the current chunk that may be non-zero, besides ptr */
  bump_chunk *chunk;          /* current chunk, NULL when none */
  size_t next_size;           /* size of the next geometric chunk */
  size_t max_chunk;           /* cap of the geometric sequence */
  size_t byte_limit;          /* 0: none */
  size_t capacity;            /* sum of chunk sizes */
  size_t chunk_count;
  uint64_t os_maps, os_unmaps; /* chunks mapped and unmapped so far */
} af_bump;

static size_t min_size(size_t a, size_t b) { return a < b ? a : b; }
static uintptr_t max_ptr(uintptr_t a, uintptr_t b) { return a > b ? a : b; }

/* ----------------------------------------------------------------------------
 * Chunks
 * ------------------------------------------------------------------------- */

static void make_current(af_bump *b, bump_chunk *ch, uintptr_t dirty) {
  b->chunk = ch;
  b->cur_start = (uintptr_t)ch + CHUNK_HEADER;
  b->ptr = b->cur_start;
  b->end = (uintptr_t)ch + ch->size;
  b->dirty = dirty;
  b->last = 0;
}

static void retire_current(af_bump *b) {
  if (b->chunk != NULL) b->chunk->used_end = max_ptr(b->dirty, b->ptr);
}

static void unmap_chunk(af_bump *b, bump_chunk *ch) {
  b->capacity -= ch->size;
  b->chunk_count--;
  b->os_unmaps++;
  _af_os_unmap(ch, ch->size);
}

/* Maps a chunk able to hold `size` bytes at `align` and makes it current.
   Geometric size unless the request needs more (then a chunk of its own). */
static int add_chunk(af_bump *b, size_t size, size_t align) {
  size_t page = _af_os_page_size();
  size_t pad = align > AF_DEFAULT_ALIGN ? align : 0; /* worst case to align past the header */
  size_t need = af_align_up(CHUNK_HEADER + pad + (size ? size : 1), page);
  size_t geometric = b->next_size;
  size_t chunk_size = need > geometric ? need : geometric;
  if (b->byte_limit != 0 && chunk_size > b->byte_limit - b->capacity) {
    /* Over the limit with the geometric size: settle for what this request needs. */
    if (need > b->byte_limit - b->capacity) return AF_ERR_LIMIT;
    chunk_size = need;
  }
  void *mem = NULL;
  int status = _af_os_map(chunk_size, page, &mem);
  if (status != AF_OK) return status;
  b->os_maps++;
  if (chunk_size == geometric) b->next_size = min_size(geometric * 2, b->max_chunk);
  bump_chunk *ch = mem;
  ch->prev = b->chunk;
  ch->size = chunk_size;
  ch->used_end = 0;
  retire_current(b);
  b->capacity += chunk_size;
  b->chunk_count++;
  make_current(b, ch, (uintptr_t)ch + CHUNK_HEADER);
  return AF_OK;
}

/* The chunk holding [p, p+1) among handed-out memory, or NULL. */
static bump_chunk *find_chunk(const af_bump *b, uintptr_t p) {
  if (b->chunk == NULL) return NULL;
  if (p >= b->cur_start && p < b->ptr) return b->chunk;
  for (bump_chunk *ch = b->chunk->prev; ch != NULL; ch = ch->prev) {
    uintptr_t start = (uintptr_t)ch + CHUNK_HEADER;
    if (p >= start && p < ch->used_end) return ch;
  }
  return NULL;
}

/* ----------------------------------------------------------------------------
 * Allocation
 * ------------------------------------------------------------------------- */

/* Maps a new chunk and carves from it (0 on failure, error recorded). */
static __attribute__((noinline)) uintptr_t carve_slow(af_bump *b, size_t size, size_t align) {
  int status = add_chunk(b, size, align);
  if (status != AF_OK) {
    af_fail(&b->base, &b->c, status);
    return 0;
  }
  uintptr_t p = af_align_up_ptr(b->ptr, align);
  af_assert(p + size + (size == 0) <= b->end);
  b->ptr = p + size + (size == 0);
  b->last = p;
  return p;
}

/* Carves a block without counting it (0 on failure, error recorded). size 0
   takes one byte so that every block has a unique address. */
static inline uintptr_t carve(af_bump *b, size_t size, size_t align) {
  uintptr_t p = af_align_up_ptr(b->ptr, align);
  uintptr_t next = p + size + (size == 0);
  if (af_likely(next <= b->end)) {
    b->ptr = next;
    b->last = p;
    return p;
  }
  return carve_slow(b, size, align);
}

static __attribute__((noinline)) void *bump_alloc_slow(af_bump *b, size_t size, size_t align) {
  uintptr_t p = carve_slow(b, size, align);
  if (p != 0) af_count_alloc(&b->c, size);
  return (void *)p;
}

/* The fast path: align, compare, bump, count; a tail call when the chunk is full. */
static void *bump_alloc(af_allocator *self, size_t size, size_t align) {
  af_bump *b = (af_bump *)self;
  uintptr_t p = af_align_up_ptr(b->ptr, align);
  uintptr_t next = p + size + (size == 0);
  if (af_likely(next <= b->end)) {
    b->ptr = next;
    b->last = p;
    af_count_alloc(&b->c, size);
    return (void *)p;
  }
  return bump_alloc_slow(b, size, align);
}

static void *bump_calloc(af_allocator *self, size_t size, size_t align) {
  af_bump *b = (af_bump *)self;
  bump_chunk *before = b->chunk;
  uintptr_t dirty_end = max_ptr(b->dirty, b->ptr);
  void *p = bump_alloc(self, size, align);
  /* A fresh chunk is zero; in the same chunk only the part below the dirty
     mark can hold old data (blocks freed by reset or rollback). */
  if (p != NULL && b->chunk == before && (uintptr_t)p < dirty_end)
    memset(p, 0, min_size(size, dirty_end - (uintptr_t)p));
  return p;
}

/* Lowers the bump pointer to `to`, remembering that what lies above was used. */
static void roll_back(af_bump *b, uintptr_t to) {
  b->dirty = max_ptr(b->dirty, b->ptr);
  b->ptr = to;
}

static int bump_free(af_allocator *self, void *ptr, size_t size, size_t align) {
  (void)align;
  af_bump *b = (af_bump *)self;
  uintptr_t p = (uintptr_t)ptr;
  if (p == b->last && b->last != 0) {
    roll_back(b, p);
    b->last = 0;
  } else if (af_counters_live(&b->c) == 0 || find_chunk(b, p) == NULL) {
    return AF_ERR_NOT_OWNED;
  }
  af_count_free(&b->c, size);
  return AF_OK;
}

static void *bump_realloc(af_allocator *self, void *ptr, size_t old_size, size_t new_size, size_t align) {
  af_bump *b = (af_bump *)self;
  uintptr_t p = (uintptr_t)ptr;
  if (p == b->last && b->last != 0) {
    /* The newest block: grow or shrink in place when the chunk has room. */
    uintptr_t next = p + new_size + (new_size == 0);
    if (next <= b->end) {
      if (next < b->ptr) roll_back(b, next);
      else b->ptr = next;
      af_count_realloc(&b->c, old_size, new_size);
      return ptr;
    }
  } else {
    if (af_counters_live(&b->c) == 0 || find_chunk(b, p) == NULL) return af_fail(self, &b->c, AF_ERR_NOT_OWNED);
    if (new_size <= old_size) {
      af_count_realloc(&b->c, old_size, new_size);
      return ptr;
    }
  }
  /* The old block stays dead until reset; the new one replaces it in the counts. */
  void *q = (void *)carve(b, new_size, align);
  if (q == NULL) return NULL;
  memcpy(q, ptr, min_size(old_size, new_size));
  af_count_realloc(&b->c, old_size, new_size);
  return q;
}

static size_t bump_usable_size(af_allocator *self, const void *ptr, size_t size, size_t align) {
  (void)self, (void)ptr, (void)align;
  return size;
}

static int bump_owns(af_allocator *self, const void *ptr) {
  return find_chunk((af_bump *)self, (uintptr_t)ptr) != NULL;
}

/* ----------------------------------------------------------------------------
 * Reset, trim, stats, teardown
 * ------------------------------------------------------------------------- */

/* The phase that ends needed several chunks: let the next geometric chunk
   hold a whole phase (the capacity held now is enough), so that after the
   next reset the kept chunk alone serves the cycle. */
static void grow_for_phase(af_bump *b, size_t kept_size) {
  size_t want = min_size(b->capacity, b->max_chunk);
  if (b->byte_limit != 0) /* room beside the kept chunk, whole pages */
    want = min_size(want, (b->byte_limit - kept_size) & ~(_af_os_page_size() - 1));
  if (want > b->next_size) b->next_size = want;
}

static int bump_reset(af_allocator *self) {
  af_bump *b = (af_bump *)self;
  if (b->chunk != NULL) {
    retire_current(b);
    /* Keep the largest chunk so a steady fill/reset cycle maps nothing. */
    bump_chunk *keep = b->chunk;
    for (bump_chunk *ch = b->chunk; ch != NULL; ch = ch->prev)
      if (ch->size > keep->size) keep = ch;
    if (b->chunk->prev != NULL) grow_for_phase(b, keep->size);
    bump_chunk *ch = b->chunk;
    while (ch != NULL) {
      bump_chunk *prev = ch->prev;
      if (ch != keep) unmap_chunk(b, ch);
      ch = prev;
    }
    keep->prev = NULL;
    make_current(b, keep, keep->used_end);
  }
  af_count_reset(&b->c);
  return AF_OK;
}

static void bump_trim(af_allocator *self) {
  af_bump *b = (af_bump *)self;
  if (b->chunk == NULL) return;
  if (af_counters_live(&b->c) == 0 && b->chunk->prev == NULL) {
    /* Nothing live: the kept chunk is all spare. */
    unmap_chunk(b, b->chunk);
    b->chunk = NULL;
    b->ptr = b->end = b->last = b->cur_start = b->dirty = 0;
    return;
  }
  /* Give back the dirty pages above the bump pointer; they read as zero after. */
  size_t page = _af_os_page_size();
  uintptr_t from = af_align_up_ptr(b->ptr, page);
  uintptr_t to = af_align_up_ptr(max_ptr(b->dirty, b->ptr), page);
  if (to > b->end) to = b->end;
  if (to > from && _af_os_purge((void *)from, to - from) == AF_OK) b->dirty = from; /* [ptr, from) stays dirty */
}

static void bump_get_stats(af_allocator *self, af_stats *out) {
  af_bump *b = (af_bump *)self;
  af_counters_fill(&b->c, out);
  out->chunks = b->chunk_count;
  out->capacity_bytes = b->capacity;
  out->os_bytes = b->capacity;
  out->os_maps = b->os_maps;
  out->os_unmaps = b->os_unmaps;
}

static void bump_destroy(af_allocator *self) {
  af_bump *b = (af_bump *)self;
  bump_chunk *ch = b->chunk;
  while (ch != NULL) {
    bump_chunk *prev = ch->prev;
    _af_os_unmap(ch, ch->size);
    ch = prev;
  }
  free(b);
}

static const af_vtable bump_vtable = {
    .name = "bump",
    .caps = AF_CAP_RESET | AF_CAP_TRIM | AF_CAP_OWNS,
    .alloc = bump_alloc,
    .calloc = bump_calloc,
    .free = bump_free,
    .realloc = bump_realloc,
    .usable_size = bump_usable_size,
    .owns = bump_owns,
    .reset = bump_reset,
    .trim = bump_trim,
    .get_stats = bump_get_stats,
    .destroy = bump_destroy,
};

af_allocator *af_bump_new(const af_bump_options *options, af_error *err) {
  af_bump_options o = options != NULL ? *options : (af_bump_options){0};
  size_t page = _af_os_page_size();
  if (o.first_chunk_size == 0) o.first_chunk_size = AF_BUMP_FIRST_CHUNK;
  if (o.max_chunk_size == 0) o.max_chunk_size = AF_BUMP_MAX_CHUNK;
  if (o.first_chunk_size > (size_t)AF_MAX_ALLOC_SIZE || o.max_chunk_size > (size_t)AF_MAX_ALLOC_SIZE) {
    _af_error_set(err, AF_ERR_INVALID, "bump: chunk sizes must not exceed %llu bytes",
                  (unsigned long long)AF_MAX_ALLOC_SIZE);
    return NULL;
  }
  if (o.first_chunk_size > o.max_chunk_size) {
    _af_error_set(err, AF_ERR_INVALID, "bump: first_chunk_size (%zu) is larger than max_chunk_size (%zu)",
                  o.first_chunk_size, o.max_chunk_size);
    return NULL;
  }
  af_bump *b = calloc(1, sizeof *b);
  if (b == NULL) {
    _af_error_set(err, AF_ERR_NOMEM, "bump: out of memory for the allocator object");
    return NULL;
  }
  b->base.vt = &bump_vtable;
  b->next_size = af_align_up(o.first_chunk_size, page);
  b->max_chunk = af_align_up(o.max_chunk_size, page);
  b->byte_limit = o.byte_limit;
  return &b->base;
}
