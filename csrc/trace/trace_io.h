/* ----------------------------------------------------------------------------
 * trace_io.h: what the converter (convert.c), the reader (reader.c), the
 * summary (summary.c) and the replay (engine/replay.c) share: loading a file
 * and walking a trace one validated event at a time.
 *
 * The reader checks everything before anyone acts on an event: the header,
 * every tag and varint against the end of the file, every ref against the
 * objects that are live at that point (a free of an id never allocated or a
 * double free is an error), thread indices against the header, sizes against
 * AF_MAX_ALLOC_SIZE, and at the end the header's counts and the end marker.
 * Each error names the byte offset.
 * ------------------------------------------------------------------------- */
#ifndef AF_TRACE_IO_H
#define AF_TRACE_IO_H

#include "af_internal.h"
#include "afbench.h"
#include "trace/format.h"

/* Reads a whole file into a malloc'd buffer (*out, *len); errors name the path. */
int _af_trace_load(const char *path, uint8_t **out, size_t *len, af_error *err);

#define TR_NONE UINT64_MAX

typedef struct tr_header {
  uint32_t version, flags, pid, ppid, threads;
  uint64_t start_unix_ns;
  uint64_t events;            /* calls (thread markers and the end marker excluded) */
  uint64_t objects;           /* object ids handed out */
  uint64_t lost;              /* sequence numbers the capture never wrote (killed threads) */
  const uint8_t *command;     /* NUL-separated arguments, not terminated */
  uint32_t command_len;
} tr_header;

/* One decoded event. */
typedef struct tr_event {
  unsigned kind;              /* TR_MALLOC..TR_REALLOCARRAY, TR_FREE_UNKNOWN, TR_THREAD_START/EXIT, TR_EXT (end) */
  bool failed;                /* the call returned NULL / an error: no object made or freed */
  bool runtime;               /* made by libc or the dynamic loader, not by the program */
  uint32_t thread;            /* the thread that made it */
  uint64_t id;                /* the object it made, or TR_NONE */
  uint64_t old_id;            /* the object it freed (free, realloc), or TR_NONE */
  uint64_t size;              /* bytes asked for (calloc, reallocarray: nmemb * size) */
  uint64_t align;             /* the alignment the call asked for; 0 for plain calls */
  uint64_t offset;            /* of the event's tag in the file */
} tr_event;

typedef struct tr_reader {
  const uint8_t *base, *p, *end;
  tr_header h;
  uint64_t next_id;
  uint64_t calls;             /* call events read so far */
  uint32_t thread;            /* current thread */
  bool runtime_next;          /* a TR_EXT_RUNTIME marker is waiting for its call */
  uint8_t *live;              /* h.objects flags: 1 while the object is live */
  bool done;
} tr_reader;

/* Parses and checks the header; allocates the live table. */
int _af_trace_reader_open(tr_reader *r, const uint8_t *buf, size_t len, af_error *err);
/* The next event; kind TR_EXT once the end marker has been checked. */
int _af_trace_reader_next(tr_reader *r, tr_event *ev, af_error *err);
void _af_trace_reader_close(tr_reader *r);

#endif /* AF_TRACE_IO_H */
