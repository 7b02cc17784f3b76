/* ----------------------------------------------------------------------------
 * reader.c: loading a trace file and walking its events with full
 * validation (see trace_io.h for what is checked). Nothing here trusts the
 * file: every read is bounded by the end of the buffer, every count by the
 * header, and the header's counts by the file's length, so a corrupt file
 * costs at most an error message.
 * ------------------------------------------------------------------------- */
#include "trace/trace_io.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <sys/stat.h>

int _af_trace_load(const char *path, uint8_t **out, size_t *len, af_error *err) {
  *out = NULL;
  *len = 0;
  FILE *f = fopen(path, "rb");
  if (f == NULL) return _af_error_set(err, AF_ERR_INVALID, "%s: cannot open: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
    fclose(f);
    return _af_error_set(err, AF_ERR_INVALID, "%s: not a regular file", path);
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = malloc(size > 0 ? size : 1);
  if (buf == NULL) {
    fclose(f);
    return _af_error_set(err, AF_ERR_NOMEM, "%s: no memory to load %zu bytes", path, size);
  }
  size_t got = fread(buf, 1, size, f);
  fclose(f);
  if (got != size) {
    free(buf);
    return _af_error_set(err, AF_ERR_INVALID, "%s: read %zu of %zu bytes", path, got, size);
  }
  *out = buf;
  *len = size;
  return AF_OK;
}

#define FAIL_AT(r, off, ...) ((void)(r), fail_at(err, (uint64_t)(off), __VA_ARGS__))

__attribute__((format(printf, 3, 4))) static int fail_at(af_error *err, uint64_t offset, const char *fmt, ...) {
  char what[AF_ERROR_MESSAGE_SIZE];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(what, sizeof what, fmt, ap);
  va_end(ap);
  return _af_error_set(err, AF_ERR_INVALID, "offset %llu: %s", (unsigned long long)offset, what);
}

int _af_trace_reader_open(tr_reader *r, const uint8_t *buf, size_t len, af_error *err) {
  memset(r, 0, sizeof *r);
  if (len < 8 || memcmp(buf, TR_MAGIC, 8) != 0) {
    if (len >= 8 && memcmp(buf, TR_RAW_MAGIC, 8) == 0)
      return fail_at(err, 0, "a raw capture file, not a trace: convert it first (allocffi trace record does)");
    return fail_at(err, 0, "not an allocffi trace (no AFTRACE magic)");
  }
  if (len < TR_HEADER_FIXED) return fail_at(err, len, "truncated header (%zu of %u bytes)", len, TR_HEADER_FIXED);
  tr_header *h = &r->h;
  h->version = tr_get_u32(buf + 8);
  if (h->version != TR_VERSION)
    return fail_at(err, 8, "trace format version %u; this allocffi reads version %u", h->version, TR_VERSION);
  h->flags = tr_get_u32(buf + 12);
  h->pid = tr_get_u32(buf + 16);
  h->ppid = tr_get_u32(buf + 20);
  h->start_unix_ns = tr_get_u64(buf + 24);
  h->events = tr_get_u64(buf + 32);
  h->objects = tr_get_u64(buf + 40);
  h->lost = tr_get_u64(buf + 48);
  h->threads = tr_get_u32(buf + 56);
  h->command_len = tr_get_u32(buf + 60);
  if (h->flags != 0) return fail_at(err, 12, "unknown flags %#x", h->flags);
  if (h->command_len > len - TR_HEADER_FIXED)
    return fail_at(err, 60, "command length %u runs past the end of the file", h->command_len);
  h->command = buf + TR_HEADER_FIXED;
  size_t body = len - TR_HEADER_FIXED - h->command_len;
  /* Every call and every object takes at least one byte of the body. */
  if (h->events > body || h->objects > h->events)
    return fail_at(err, 32, "header counts (%llu events, %llu objects) do not fit in %zu bytes of events",
                   (unsigned long long)h->events, (unsigned long long)h->objects, body);
  if (h->threads > TR_MAX_THREADS) return fail_at(err, 56, "%u threads (at most %u)", h->threads, TR_MAX_THREADS);
  r->live = calloc(h->objects > 0 ? h->objects : 1, 1);
  if (r->live == NULL) return _af_error_set(err, AF_ERR_NOMEM, "no memory for %llu objects", (unsigned long long)h->objects);
  r->base = buf;
  r->p = buf + TR_HEADER_FIXED + h->command_len;
  r->end = buf + len;
  return AF_OK;
}

void _af_trace_reader_close(tr_reader *r) {
  free(r->live);
  r->live = NULL;
}

static int get(tr_reader *r, uint64_t *out, uint64_t at, af_error *err) {
  if (!tr_get_varint(&r->p, r->end, out)) return FAIL_AT(r, at, "truncated or malformed number in the event");
  return AF_OK;
}

/* The object a ref names; `what` names the call for the message. */
static int resolve(tr_reader *r, uint64_t ref, uint64_t at, const char *what, uint64_t *id, af_error *err) {
  if (ref > r->next_id)
    return FAIL_AT(r, at, "%s of an object never allocated (ref %llu, only %llu objects so far)", what,
                   (unsigned long long)ref, (unsigned long long)r->next_id);
  *id = r->next_id - ref;
  if (!r->live[*id])
    return FAIL_AT(r, at, "%s of object %llu, which was already freed (double free)", what, (unsigned long long)*id);
  return AF_OK;
}

static int new_object(tr_reader *r, tr_event *ev, af_error *err) {
  if (ev->size > AF_MAX_ALLOC_SIZE)
    return FAIL_AT(r, ev->offset, "allocation of %llu bytes (more than 1 TiB)", (unsigned long long)ev->size);
  if (r->next_id >= r->h.objects)
    return FAIL_AT(r, ev->offset, "more allocations than the header's %llu objects", (unsigned long long)r->h.objects);
  ev->id = r->next_id++;
  r->live[ev->id] = 1;
  return AF_OK;
}

static int mul_size(tr_reader *r, uint64_t nmemb, uint64_t size, uint64_t at, uint64_t *out, af_error *err) {
  if (__builtin_mul_overflow(nmemb, size, out))
    return FAIL_AT(r, at, "%llu x %llu bytes overflows", (unsigned long long)nmemb, (unsigned long long)size);
  return AF_OK;
}

/* The operands of a call of type `call` after its first one (`a`). */
static int call_operands(tr_reader *r, unsigned call, uint64_t a, tr_event *ev, bool failed, af_error *err) {
  uint64_t at = ev->offset, b = 0, c = 0;
  int s = AF_OK;
  switch (call) {
  case TR_MALLOC:
  case TR_VALLOC:
  case TR_PVALLOC:
    ev->size = a;
    if (call != TR_MALLOC) ev->align = 4096;
    break;
  case TR_CALLOC:
    if ((s = get(r, &b, at, err)) != AF_OK) return s;
    if (!failed && (s = mul_size(r, a, b, at, &ev->size, err)) != AF_OK) return s;
    break;
  case TR_POSIX_MEMALIGN:
  case TR_ALIGNED_ALLOC:
  case TR_MEMALIGN:
    if ((s = get(r, &b, at, err)) != AF_OK) return s;
    if (failed && call == TR_POSIX_MEMALIGN && (s = get(r, &c, at, err)) != AF_OK) return s;
    if (!failed && (a == 0 || a > (1ull << 40)))
      return FAIL_AT(r, at, "alignment %llu out of range", (unsigned long long)a);
    ev->align = a;
    ev->size = b;
    break;
  case TR_REALLOC:
  case TR_REALLOCARRAY:
    if ((s = get(r, &b, at, err)) != AF_OK) return s;
    if (call == TR_REALLOCARRAY) {
      if ((s = get(r, &c, at, err)) != AF_OK) return s;
      if (!failed && (s = mul_size(r, b, c, at, &ev->size, err)) != AF_OK) return s;
    } else {
      ev->size = b;
    }
    if (a != 0 && (s = resolve(r, a, at, "realloc", &ev->old_id, err)) != AF_OK) return s;
    break;
  case TR_FREE:
    if (a != 0 && (s = resolve(r, a, at, "free", &ev->old_id, err)) != AF_OK) return s;
    break;
  default:
    return FAIL_AT(r, at, "unknown call type %u", call);
  }
  return AF_OK;
}

int _af_trace_reader_next(tr_reader *r, tr_event *ev, af_error *err) {
  for (;;) {
    memset(ev, 0, sizeof *ev);
    ev->id = ev->old_id = TR_NONE;
    ev->offset = (uint64_t)(r->p - r->base);
    ev->thread = r->thread;
    if (r->done) {
      ev->kind = TR_EXT;
      return AF_OK;
    }
    if (r->p >= r->end) return FAIL_AT(r, ev->offset, "file ends without the end marker (truncated?)");
    unsigned tag = *r->p & 0x0f;
    uint64_t a = *r->p >> 4;
    r->p++;
    if (a == 15) {
      uint64_t more;
      if (!tr_get_varint(&r->p, r->end, &more) || more > UINT64_MAX - 15)
        return FAIL_AT(r, ev->offset, "truncated or malformed number in the event");
      a = 15 + more;
    }
    int s;
    bool is_call = !(tag == TR_THREAD || tag == TR_THREAD_START || tag == TR_THREAD_EXIT ||
                     (tag == TR_EXT && (a == TR_EXT_END || a == TR_EXT_RUNTIME)));
    if (r->runtime_next && !is_call) return FAIL_AT(r, ev->offset, "runtime marker not followed by a call");
    if (is_call) {
      ev->runtime = r->runtime_next;
      r->runtime_next = false;
    }
    switch (tag) {
    case TR_THREAD:
    case TR_THREAD_START:
    case TR_THREAD_EXIT:
      if (a >= r->h.threads)
        return FAIL_AT(r, ev->offset, "thread %llu, but the header declares %u threads", (unsigned long long)a,
                       r->h.threads);
      if (tag == TR_THREAD) {
        r->thread = (uint32_t)a;
        continue;
      }
      ev->kind = tag;
      ev->thread = (uint32_t)a;
      return AF_OK;
    case TR_FREE_UNKNOWN:
      ev->kind = TR_FREE_UNKNOWN;
      break;
    case TR_FAILED:
      if (a >= TR_CALL_KINDS) return FAIL_AT(r, ev->offset, "failed call of unknown type %llu", (unsigned long long)a);
      ev->kind = (unsigned)a;
      ev->failed = true;
      {
        uint64_t first;
        if ((s = get(r, &first, ev->offset, err)) != AF_OK) return s;
        if ((s = call_operands(r, ev->kind, first, ev, true, err)) != AF_OK) return s;
      }
      ev->old_id = TR_NONE; /* a failed realloc leaves its block alone */
      break;
    case TR_EXT:
      if (a == TR_EXT_END) {
        if (r->calls != r->h.events)
          return FAIL_AT(r, ev->offset, "end marker after %llu calls; the header says %llu",
                         (unsigned long long)r->calls, (unsigned long long)r->h.events);
        if (r->next_id != r->h.objects)
          return FAIL_AT(r, ev->offset, "end marker after %llu objects; the header says %llu",
                         (unsigned long long)r->next_id, (unsigned long long)r->h.objects);
        if (r->p != r->end)
          return FAIL_AT(r, (uint64_t)(r->p - r->base), "%zu bytes after the end marker", (size_t)(r->end - r->p));
        r->done = true;
        ev->kind = TR_EXT;
        return AF_OK;
      }
      if (a == TR_EXT_RUNTIME) {
        r->runtime_next = true;
        continue;
      }
      if (a == TR_EXT_REALLOC_FREE || a == TR_EXT_REALLOCARRAY_FREE) {
        uint64_t ref;
        if ((s = get(r, &ref, ev->offset, err)) != AF_OK) return s;
        ev->kind = a == TR_EXT_REALLOC_FREE ? TR_REALLOC : TR_REALLOCARRAY;
        /* ref 0: of a pointer the trace never saw; nothing to replay */
        if (ref != 0) {
          if ((s = resolve(r, ref, ev->offset, "realloc", &ev->old_id, err)) != AF_OK) return s;
          r->live[ev->old_id] = 0;
        }
        break;
      }
      return FAIL_AT(r, ev->offset, "unknown extension %llu", (unsigned long long)a);
    default:
      ev->kind = tag;
      if ((s = call_operands(r, tag, a, ev, false, err)) != AF_OK) return s;
      if (ev->old_id != TR_NONE) r->live[ev->old_id] = 0;
      if (tag != TR_FREE && (s = new_object(r, ev, err)) != AF_OK) return s;
      break;
    }
    if (++r->calls > r->h.events)
      return FAIL_AT(r, ev->offset, "more calls than the header's %llu", (unsigned long long)r->h.events);
    return AF_OK;
  }
}
