/* ----------------------------------------------------------------------------
 * convert.c: raw capture file (pointers, per-thread chunks) -> trace file
 * (dense object ids, one stream in global order). See format.h for both.
 *
 * Pass 1 walks the chunks and notes where the event of each sequence number
 * is (a realloc has two: its release before the call and its allocation
 * after). Pass 2 visits the numbers in order with a pointer -> id table:
 * an allocation gets the next id, a free names the id its pointer maps to
 * (or is an unknown free: a block allocated before capture started, by the
 * dynamic loader, or in a parent before fork). Numbers that no chunk holds
 * (a thread killed before it flushed) are counted as lost.
 *
 * A raw file whose last chunk was cut short (the program was killed while
 * writing) is converted up to that chunk; anything else malformed is an
 * error naming the offset.
 * ------------------------------------------------------------------------- */
#include "trace/trace_io.h"

#include <errno.h>
#include <stdlib.h>

/* ----------------------------------------------------------------------------
 * Pointer -> object id: open addressing with linear probing and
 * backward-shift deletion (no tombstones, so lookups stay short).
 * ------------------------------------------------------------------------- */
typedef struct addr_slot {
  uint64_t ptr;               /* 0: empty */
  uint64_t id;
} addr_slot;

typedef struct addr_map {
  addr_slot *slots;
  size_t mask;                /* capacity - 1, capacity a power of two */
  size_t count;               /* <= capacity / 2 */
} addr_map;

static size_t addr_hash(uint64_t p) { return (size_t)((p >> 4) * 0x9e3779b97f4a7c15ULL >> 20); }

static bool addr_grow(addr_map *m) {
  size_t cap = m->slots == NULL ? 1024 : (m->mask + 1) * 2;
  addr_slot *slots = calloc(cap, sizeof *slots);
  if (slots == NULL) return false;
  for (size_t i = 0; m->slots != NULL && i <= m->mask; i++) {
    if (m->slots[i].ptr == 0) continue;
    size_t j = addr_hash(m->slots[i].ptr) & (cap - 1);
    while (slots[j].ptr != 0) j = (j + 1) & (cap - 1);
    slots[j] = m->slots[i];
  }
  free(m->slots);
  m->slots = slots;
  m->mask = cap - 1;
  return true;
}

/* Inserts or replaces; returns false only without memory. *replaced tells
   whether the address was still mapped (an event was lost). */
static bool addr_put(addr_map *m, uint64_t ptr, uint64_t id, bool *replaced) {
  *replaced = false;
  if ((m->count + 1) * 2 > (m->slots == NULL ? 0 : m->mask + 1) && !addr_grow(m)) return false;
  size_t i = addr_hash(ptr) & m->mask;
  while (m->slots[i].ptr != 0 && m->slots[i].ptr != ptr) i = (i + 1) & m->mask;
  if (m->slots[i].ptr == ptr) {
    *replaced = true;
  } else {
    m->count++;
  }
  m->slots[i].ptr = ptr;
  m->slots[i].id = id;
  return true;
}

/* Removes ptr; returns its id or TR_NONE. */
static uint64_t addr_take(addr_map *m, uint64_t ptr) {
  if (m->slots == NULL) return TR_NONE;
  size_t i = addr_hash(ptr) & m->mask;
  while (m->slots[i].ptr != ptr) {
    if (m->slots[i].ptr == 0) return TR_NONE;
    i = (i + 1) & m->mask;
  }
  uint64_t id = m->slots[i].id;
  /* Backward shift: pull later members of the probe run into the hole. */
  size_t hole = i;
  for (size_t j = (i + 1) & m->mask; m->slots[j].ptr != 0; j = (j + 1) & m->mask) {
    size_t home = addr_hash(m->slots[j].ptr) & m->mask;
    if (((j - home) & m->mask) >= ((j - hole) & m->mask)) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].ptr = 0;
  m->count--;
  return id;
}

/* ----------------------------------------------------------------------------
 * Output buffer
 * ------------------------------------------------------------------------- */
typedef struct out_buf {
  uint8_t *data;
  size_t len, cap;
  bool failed;
} out_buf;

/* Room for one more event. */
static uint8_t *out_reserve(out_buf *o) {
  if (o->len + 4 * TR_VARINT_MAX + 1 > o->cap) {
    size_t cap = o->cap == 0 ? 1 << 20 : o->cap * 2;
    uint8_t *data = realloc(o->data, cap);
    if (data == NULL) {
      o->failed = true;
      return NULL;
    }
    o->data = data;
    o->cap = cap;
  }
  return o->data + o->len;
}

static void out_event(out_buf *o, unsigned tag, uint64_t a, int n, uint64_t b, uint64_t c, uint64_t d) {
  uint8_t *p = out_reserve(o);
  if (p == NULL) return;
  uint8_t *start = p;
  p = tr_put_tag(p, tag, a);
  if (n >= 1) p = tr_put_varint(p, b);
  if (n >= 2) p = tr_put_varint(p, c);
  if (n >= 3) p = tr_put_varint(p, d);
  o->len += (size_t)(p - start);
}

/* ----------------------------------------------------------------------------
 * Pass 1: where each sequence number is
 * ------------------------------------------------------------------------- */
typedef struct raw_pos {
  uint64_t offset;            /* of the event's tag, times 2, + 1 for a realloc's release part; 0: missing */
  uint32_t thread;
} raw_pos;

typedef struct raw_file {
  const uint8_t *base, *end;
  const uint8_t *events;      /* first chunk */
  const uint8_t *stop;        /* end of the last complete chunk */
  uint32_t pid, ppid;
  uint64_t start_ns;
  const uint8_t *command;
  uint32_t command_len;
} raw_file;

#define RAW_FAIL(off, msg) _af_error_set(err, AF_ERR_INVALID, "offset %llu: %s", (unsigned long long)(off), msg)

/* Varints after the tag (the sequence numbers included) per raw tag. */
static int raw_operand_count(unsigned tag) {
  switch (tag) {
  case TR_MALLOC:
  case TR_VALLOC:
  case TR_PVALLOC: return 3;
  case TR_CALLOC:
  case TR_ALIGNED_ALLOC:
  case TR_MEMALIGN: return 4;
  case TR_FREE: return 2;
  case TR_POSIX_MEMALIGN:
  case TR_REALLOC: return 5;
  case TR_REALLOCARRAY: return 6;
  case RAW_THREAD_START:
  case RAW_THREAD_EXIT: return 1;
  default: return -1;
  }
}

/* Decodes the event at p; v receives its operands. */
static int raw_decode(const uint8_t **p, const uint8_t *end, unsigned *tag, uint64_t v[6]) {
  if (*p >= end) return 0;
  *tag = *(*p)++; /* with RAW_RUNTIME_FLAG */
  int n = raw_operand_count(*tag & ~RAW_RUNTIME_FLAG);
  if (n < 0) return 0;
  for (int i = 0; i < n; i++)
    if (!tr_get_varint(p, end, &v[i])) return 0;
  return 1;
}

static int raw_open(raw_file *f, const uint8_t *buf, size_t len, af_error *err) {
  memset(f, 0, sizeof *f);
  if (len < TR_RAW_HEADER_FIXED || memcmp(buf, TR_RAW_MAGIC, 8) != 0)
    return _af_error_set(err, AF_ERR_INVALID, "offset 0: not a raw capture file (no AFRAWTR magic)");
  if (tr_get_u32(buf + 8) != TR_RAW_VERSION && tr_get_u32(buf + 8) != 1) /* 1: the same, no locks chunk */
    return _af_error_set(err, AF_ERR_INVALID, "offset 8: raw format version %u; this allocffi reads 1 and %u",
                         tr_get_u32(buf + 8), TR_RAW_VERSION);
  f->pid = tr_get_u32(buf + 12);
  f->ppid = tr_get_u32(buf + 16);
  f->start_ns = tr_get_u64(buf + 24);
  f->command_len = tr_get_u32(buf + 32);
  if (f->command_len > len - TR_RAW_HEADER_FIXED)
    return _af_error_set(err, AF_ERR_INVALID, "offset 32: command length %u runs past the end", f->command_len);
  f->base = buf;
  f->end = buf + len;
  f->command = buf + TR_RAW_HEADER_FIXED;
  f->events = f->command + f->command_len;
  return AF_OK;
}

/* Finds the largest sequence number and where the complete chunks end. */
static int raw_scan(raw_file *f, uint64_t *max_seq, bool *any, af_error *err) {
  const uint8_t *p = f->events;
  *any = false;
  *max_seq = 0;
  while (f->end - p >= (ptrdiff_t)TR_RAW_CHUNK_HEADER) {
    uint32_t len = tr_get_u32(p + 4);
    if ((size_t)(f->end - p - TR_RAW_CHUNK_HEADER) < len) break; /* cut short: the program was killed */
    const uint8_t *q = p + TR_RAW_CHUNK_HEADER, *end = q + len;
    if (tr_get_u32(p) == TR_RAW_LOCKS_CHUNK) q = end; /* no events: a count for tests and readers */
    while (q < end) {
      const uint8_t *at = q;
      unsigned tag;
      uint64_t v[6];
      if (!raw_decode(&q, end, &tag, v))
        return RAW_FAIL(at - f->base, "malformed raw event");
      tag &= ~RAW_RUNTIME_FLAG;
      uint64_t seq = (tag == TR_REALLOC || tag == TR_REALLOCARRAY) ? (v[0] > v[1] ? v[0] : v[1]) : v[0];
      if (seq >= (1ull << 40)) return RAW_FAIL(at - f->base, "sequence number out of range");
      if (!*any || seq > *max_seq) *max_seq = seq;
      *any = true;
    }
    p = end;
  }
  f->stop = p;
  return AF_OK;
}

static int raw_place(raw_file *f, raw_pos *pos, af_error *err) {
  for (const uint8_t *p = f->events; p < f->stop;) {
    uint32_t thread = tr_get_u32(p), len = tr_get_u32(p + 4);
    const uint8_t *q = p + TR_RAW_CHUNK_HEADER, *end = q + len;
    if (thread == TR_RAW_LOCKS_CHUNK) q = end;
    while (q < end) {
      uint64_t at = (uint64_t)(q - f->base);
      unsigned tag;
      uint64_t v[6];
      raw_decode(&q, end, &tag, v); /* checked by raw_scan */
      tag &= ~RAW_RUNTIME_FLAG;
      bool two = tag == TR_REALLOC || tag == TR_REALLOCARRAY;
      uint64_t seqs[2] = {two ? v[1] : v[0], v[0]};
      for (int k = 0; k < (two ? 2 : 1); k++) {
        if (pos[seqs[k]].offset != 0)
          return _af_error_set(err, AF_ERR_INVALID, "offset %llu: sequence number %llu appears twice",
                               (unsigned long long)at, (unsigned long long)seqs[k]);
        pos[seqs[k]].offset = at * 2 + (uint64_t)k;
        pos[seqs[k]].thread = thread;
      }
    }
    p = end;
  }
  return AF_OK;
}

/* ----------------------------------------------------------------------------
 * Pass 2
 * ------------------------------------------------------------------------- */
typedef struct pending_release {
  uint64_t seq_after;         /* the realloc's allocation part */
  uint64_t id;                /* the object its release took, or TR_NONE */
} pending_release;

typedef struct converter {
  addr_map map;
  out_buf out;
  uint64_t next_id, calls, lost;
  uint32_t thread, threads;
  pending_release *pending;
  size_t pending_count, pending_cap;
} converter;

static uint64_t ref_of(converter *c, uint64_t id) { return id == TR_NONE ? 0 : c->next_id - id; }

static bool born(converter *c, uint64_t ptr) {
  bool replaced;
  if (!addr_put(&c->map, ptr, c->next_id++, &replaced)) {
    c->out.failed = true;
    return false;
  }
  return true;
}

static bool push_pending(converter *c, uint64_t seq_after, uint64_t id) {
  if (c->pending_count == c->pending_cap) {
    size_t cap = c->pending_cap == 0 ? 16 : c->pending_cap * 2;
    pending_release *p = realloc(c->pending, cap * sizeof *p);
    if (p == NULL) return false;
    c->pending = p;
    c->pending_cap = cap;
  }
  c->pending[c->pending_count++] = (pending_release){seq_after, id};
  return true;
}

static uint64_t pop_pending(converter *c, uint64_t seq_after) {
  for (size_t i = 0; i < c->pending_count; i++) {
    if (c->pending[i].seq_after == seq_after) {
      uint64_t id = c->pending[i].id;
      c->pending[i] = c->pending[--c->pending_count];
      return id;
    }
  }
  return TR_NONE;
}

static void switch_thread(converter *c, uint32_t thread) {
  if (thread != c->thread) {
    out_event(&c->out, TR_THREAD, thread, 0, 0, 0, 0);
    c->thread = thread;
  }
  if (thread >= c->threads) c->threads = thread + 1;
}

static void convert_event(converter *c, unsigned flagged_tag, const uint64_t *v, bool release_part, uint32_t thread) {
  unsigned tag = flagged_tag & ~RAW_RUNTIME_FLAG;
  if (tag == RAW_THREAD_START || tag == RAW_THREAD_EXIT) {
    if (thread >= c->threads) c->threads = thread + 1;
    out_event(&c->out, tag == RAW_THREAD_START ? TR_THREAD_START : TR_THREAD_EXIT, thread, 0, 0, 0, 0);
    return;
  }
  if (release_part) { /* a realloc's release: v = seq_before seq_after ptr ... */
    uint64_t id = v[2] != 0 ? addr_take(&c->map, v[2]) : TR_NONE;
    if (!push_pending(c, v[1], id)) c->out.failed = true;
    return;
  }
  switch_thread(c, thread);
  if (flagged_tag & RAW_RUNTIME_FLAG) out_event(&c->out, TR_EXT, TR_EXT_RUNTIME, 0, 0, 0, 0);
  c->calls++;
  switch (tag) {
  case TR_MALLOC:
  case TR_VALLOC:
  case TR_PVALLOC: /* seq size result */
    if (v[2] == 0) {
      out_event(&c->out, TR_FAILED, tag, 1, v[1], 0, 0);
    } else {
      out_event(&c->out, tag, v[1], 0, 0, 0, 0);
      born(c, v[2]);
    }
    break;
  case TR_CALLOC:
  case TR_ALIGNED_ALLOC:
  case TR_MEMALIGN: /* seq a size result */
    if (v[3] == 0) {
      out_event(&c->out, TR_FAILED, tag, 2, v[1], v[2], 0);
    } else {
      out_event(&c->out, tag, v[1], 1, v[2], 0, 0);
      born(c, v[3]);
    }
    break;
  case TR_POSIX_MEMALIGN: /* seq align size result rc */
    if (v[4] != 0 || v[3] == 0) {
      out_event(&c->out, TR_FAILED, tag, 3, v[1], v[2], v[4]);
    } else {
      out_event(&c->out, tag, v[1], 1, v[2], 0, 0);
      born(c, v[3]);
    }
    break;
  case TR_FREE: /* seq ptr */
    if (v[1] == 0) {
      out_event(&c->out, TR_FREE, 0, 0, 0, 0, 0);
    } else {
      uint64_t id = addr_take(&c->map, v[1]);
      if (id == TR_NONE) {
        out_event(&c->out, TR_FREE_UNKNOWN, 0, 0, 0, 0, 0);
      } else {
        out_event(&c->out, TR_FREE, ref_of(c, id), 0, 0, 0, 0);
      }
    }
    break;
  case TR_REALLOC:
  case TR_REALLOCARRAY: { /* seq_before seq_after ptr [nmemb] size result */
    bool array = tag == TR_REALLOCARRAY;
    uint64_t nmemb = array ? v[3] : 0, size = array ? v[4] : v[3], result = array ? v[5] : v[4];
    uint64_t old = pop_pending(c, v[1]); /* every release part pushed one, NULL or not */
    if (result != 0) {
      if (array) {
        out_event(&c->out, tag, ref_of(c, old), 2, nmemb, size, 0);
      } else {
        out_event(&c->out, tag, ref_of(c, old), 1, size, 0, 0);
      }
      born(c, result);
    } else if (v[2] != 0 && (array ? nmemb == 0 || size == 0 : size == 0)) {
      /* glibc's realloc(p, 0): p is freed, NULL returned */
      out_event(&c->out, TR_EXT, array ? TR_EXT_REALLOCARRAY_FREE : TR_EXT_REALLOC_FREE, 1, ref_of(c, old), 0, 0);
    } else {
      /* failed: the block stays where it was */
      if (old != TR_NONE) {
        bool replaced;
        if (!addr_put(&c->map, v[2], old, &replaced)) c->out.failed = true;
      }
      if (array) {
        out_event(&c->out, TR_FAILED, tag, 3, ref_of(c, old), nmemb, size);
      } else {
        out_event(&c->out, TR_FAILED, tag, 2, ref_of(c, old), size, 0);
      }
    }
    break;
  }
  default:
    break;
  }
}

static int write_trace(const char *out_path, const raw_file *f, const converter *c, af_error *err) {
  uint8_t h[TR_HEADER_FIXED];
  memcpy(h, TR_MAGIC, 8);
  tr_put_u32(h + 8, TR_VERSION);
  tr_put_u32(h + 12, 0);
  tr_put_u32(h + 16, f->pid);
  tr_put_u32(h + 20, f->ppid);
  tr_put_u64(h + 24, f->start_ns);
  tr_put_u64(h + 32, c->calls);
  tr_put_u64(h + 40, c->next_id);
  tr_put_u64(h + 48, c->lost);
  tr_put_u32(h + 56, c->threads);
  tr_put_u32(h + 60, f->command_len);
  FILE *out = fopen(out_path, "wb");
  if (out == NULL) return _af_error_set(err, AF_ERR_INVALID, "%s: cannot write: %s", out_path, strerror(errno));
  bool ok = fwrite(h, 1, sizeof h, out) == sizeof h &&
            fwrite(f->command, 1, f->command_len, out) == f->command_len &&
            fwrite(c->out.data, 1, c->out.len, out) == c->out.len;
  ok = (fclose(out) == 0) && ok;
  if (!ok) return _af_error_set(err, AF_ERR_INVALID, "%s: write failed: %s", out_path, strerror(errno));
  return AF_OK;
}

int af_trace_convert(const char *raw_path, const char *out_path, af_error *err) {
  if (raw_path == NULL || out_path == NULL) return _af_error_set(err, AF_ERR_INVALID, "af_trace_convert needs two paths");
  uint8_t *buf;
  size_t len;
  int status = _af_trace_load(raw_path, &buf, &len, err);
  if (status != AF_OK) return status;
  raw_file f;
  converter c;
  memset(&c, 0, sizeof c);
  raw_pos *pos = NULL;
  uint64_t max_seq = 0;
  bool any = false;
  status = raw_open(&f, buf, len, err);
  if (status == AF_OK) status = raw_scan(&f, &max_seq, &any, err);
  if (status == AF_OK && any) {
    pos = calloc(max_seq + 1, sizeof *pos);
    if (pos == NULL) status = _af_error_set(err, AF_ERR_NOMEM, "no memory for %llu events", (unsigned long long)max_seq);
  }
  if (status == AF_OK && any) status = raw_place(&f, pos, err);
  if (status == AF_OK) {
    c.thread = 0;
    for (uint64_t seq = 0; any && seq <= max_seq && !c.out.failed; seq++) {
      if (pos[seq].offset == 0) {
        c.lost++;
        continue;
      }
      const uint8_t *p = f.base + pos[seq].offset / 2;
      unsigned tag;
      uint64_t v[6];
      raw_decode(&p, f.stop, &tag, v);
      convert_event(&c, tag, v, pos[seq].offset & 1, pos[seq].thread);
    }
    out_event(&c.out, TR_EXT, TR_EXT_END, 0, 0, 0, 0);
    if (c.threads == 0) c.threads = 1;
    if (c.out.failed) status = _af_error_set(err, AF_ERR_NOMEM, "no memory to convert %s", raw_path);
  }
  if (status == AF_OK) status = write_trace(out_path, &f, &c, err);
  if (status != AF_OK && err != NULL && strncmp(err->message, "offset", 6) == 0) {
    char detail[AF_ERROR_MESSAGE_SIZE];
    memcpy(detail, err->message, sizeof detail);
    _af_error_set(err, status, "%s: %.200s", raw_path, detail);
  }
  free(pos);
  free(c.map.slots);
  free(c.out.data);
  free(c.pending);
  free(buf);
  return status;
}
