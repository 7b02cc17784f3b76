/* ----------------------------------------------------------------------------
 * summary.c: af_trace_summarize, what `allocffi trace info` reports. One
 * validating pass of the reader with three per-object tables (size, the call
 * index of its birth, its thread) for the live-bytes peak, lifetimes and
 * cross-thread frees.
 * ------------------------------------------------------------------------- */
#include "trace/trace_io.h"

#include <stdlib.h>

static const char *const call_names[TR_CALL_KINDS] = {
    "malloc", "calloc", "realloc", "free", "posix_memalign", "aligned_alloc", "memalign", "valloc", "pvalloc",
    "reallocarray",
};

const char *af_trace_call_name(size_t index) { return index < TR_CALL_KINDS ? call_names[index] : NULL; }

static unsigned bucket_of(uint64_t x) {
  if (x == 0) return 0;
  unsigned b = af_log2(x) + 1;
  return b < AF_TRACE_HISTOGRAM_BUCKETS ? b : AF_TRACE_HISTOGRAM_BUCKETS - 1;
}

typedef struct object_info {
  uint64_t size;
  uint64_t birth;             /* call index of its allocation */
  uint32_t thread;
  bool runtime;               /* made by libc or the loader */
} object_info;

static void release(af_trace_summary *s, object_info *o, const tr_event *ev, uint64_t call, uint64_t *live_bytes,
                    uint64_t *live_blocks, uint64_t *program_bytes) {
  *live_bytes -= o->size;
  if (!o->runtime) *program_bytes -= o->size;
  *live_blocks -= 1;
  s->frees++;
  if (o->thread != ev->thread) s->cross_thread_frees++;
  s->lifetime_histogram[bucket_of(call - o->birth)]++;
}

static int summarize(const uint8_t *buf, size_t len, af_trace_summary *s, af_error *err) {
  tr_reader r;
  int status = _af_trace_reader_open(&r, buf, len, err);
  if (status != AF_OK) return status;
  s->version = r.h.version;
  s->pid = r.h.pid;
  s->ppid = r.h.ppid;
  s->threads = r.h.threads;
  s->start_unix_ns = r.h.start_unix_ns;
  s->events = r.h.events;
  s->objects = r.h.objects;
  s->lost_events = r.h.lost;
  s->file_bytes = len;
  s->command_len = r.h.command_len;
  size_t n = r.h.command_len < AF_TRACE_COMMAND_SIZE - 1 ? r.h.command_len : AF_TRACE_COMMAND_SIZE - 1;
  memcpy(s->command, r.h.command, n);
  object_info *objects = calloc(r.h.objects > 0 ? r.h.objects : 1, sizeof *objects);
  if (objects == NULL) {
    _af_trace_reader_close(&r);
    return _af_error_set(err, AF_ERR_NOMEM, "no memory for %llu objects", (unsigned long long)r.h.objects);
  }
  uint64_t live_bytes = 0, live_blocks = 0, program_bytes = 0, call = 0;
  tr_event ev;
  while ((status = _af_trace_reader_next(&r, &ev, err)) == AF_OK && ev.kind != TR_EXT) {
    if (ev.kind == TR_THREAD_START || ev.kind == TR_THREAD_EXIT) continue;
    if (ev.runtime) s->runtime_calls[ev.kind == TR_FREE_UNKNOWN ? TR_FREE : ev.kind]++;
    if (ev.kind == TR_FREE_UNKNOWN) {
      s->calls[TR_FREE]++;
      s->unknown_frees++;
      call++;
      continue;
    }
    s->calls[ev.kind]++;
    if (ev.failed) {
      s->failed[ev.kind]++;
      call++;
      continue;
    }
    if (ev.kind == TR_FREE && ev.old_id == TR_NONE) s->null_frees++;
    if (ev.old_id != TR_NONE) release(s, &objects[ev.old_id], &ev, call, &live_bytes, &live_blocks, &program_bytes);
    if (ev.id != TR_NONE) {
      objects[ev.id] = (object_info){ev.size, call, ev.thread, ev.runtime};
      live_bytes += ev.size;
      if (!ev.runtime) program_bytes += ev.size;
      if (program_bytes > s->program_peak_live_bytes) s->program_peak_live_bytes = program_bytes;
      live_blocks++;
      s->bytes_requested += ev.size;
      s->size_histogram[bucket_of(ev.size)]++;
      if (ev.align > s->max_align) s->max_align = ev.align;
      if (live_bytes > s->peak_live_bytes) s->peak_live_bytes = live_bytes;
      if (live_blocks > s->peak_live_blocks) s->peak_live_blocks = live_blocks;
    }
    call++;
  }
  s->live_bytes_at_end = live_bytes;
  s->live_blocks_at_end = live_blocks;
  free(objects);
  _af_trace_reader_close(&r);
  return status;
}

int af_trace_summarize(const char *path, af_trace_summary *out, af_error *err) {
  if (path == NULL || out == NULL) return _af_error_set(err, AF_ERR_INVALID, "af_trace_summarize needs a path and a result");
  memset(out, 0, sizeof *out);
  uint8_t *buf;
  size_t len;
  int status = _af_trace_load(path, &buf, &len, err);
  if (status != AF_OK) return status;
  status = summarize(buf, len, out, err);
  free(buf);
  if (status != AF_OK) {
    if (err != NULL) {
      char detail[AF_ERROR_MESSAGE_SIZE];
      memcpy(detail, err->message, sizeof detail);
      _af_error_set(err, status, "%s: %.200s", path, detail);
    }
    memset(out, 0, sizeof *out);
  }
  return status;
}
