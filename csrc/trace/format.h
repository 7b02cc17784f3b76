/* ----------------------------------------------------------------------------
 * format.h: the two on-disk trace formats and their byte-level codec, shared
 * by the capture library (capture.c, which writes raw files), the converter
 * (convert.c, raw -> trace) and the reader (reader.c, used by info and
 * replay). docs/trace-format.md documents both formats for readers in other
 * languages; this header is the single source of their constants.
 *
 * Header-only and allocation-free: capture.c includes it inside malloc hooks.
 * Every multi-byte integer of a header is little-endian; every number inside
 * an event stream is an unsigned LEB128 varint.
 * ------------------------------------------------------------------------- */
#ifndef AF_TRACE_FORMAT_H
#define AF_TRACE_FORMAT_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ----------------------------------------------------------------------------
 * Call types: the numbering of af_trace_summary.calls and of the event tags.
 * ------------------------------------------------------------------------- */
enum {
  TR_MALLOC = 0,         /* size */
  TR_CALLOC = 1,         /* nmemb, size */
  TR_REALLOC = 2,        /* old ref, size */
  TR_FREE = 3,           /* ref (0: free(NULL)) */
  TR_POSIX_MEMALIGN = 4, /* align, size (failed: + return code) */
  TR_ALIGNED_ALLOC = 5,  /* align, size */
  TR_MEMALIGN = 6,       /* align, size */
  TR_VALLOC = 7,         /* size */
  TR_PVALLOC = 8,        /* size */
  TR_REALLOCARRAY = 9,   /* old ref, nmemb, size */
  TR_CALL_KINDS = 10,
  /* trace-only tags */
  TR_FREE_UNKNOWN = 10,  /* free of a pointer the trace never saw allocated */
  TR_THREAD = 11,        /* following events belong to thread `a` */
  TR_THREAD_START = 12,  /* thread `a` started (or made its first call) */
  TR_THREAD_EXIT = 13,   /* thread `a` exited */
  TR_FAILED = 14,        /* a call that returned NULL/an error: `a` = call type, then its operands */
  TR_EXT = 15            /* `a` = one of TR_EXT_* */
};

enum {
  TR_EXT_END = 0,            /* last event of the file */
  TR_EXT_REALLOC_FREE = 1,   /* realloc(p, 0) that freed p and returned NULL: ref */
  TR_EXT_REALLOCARRAY_FREE = 2, /* the same through reallocarray: ref */
  TR_EXT_RUNTIME = 3          /* the next call came from the C runtime (libc or the dynamic loader) */
};

/* ----------------------------------------------------------------------------
 * The trace file (what `allocffi trace record` leaves behind, one per process)
 *
 *   magic "AFTRACE\n" | u32 version | u32 flags (0) | u32 pid | u32 ppid
 *   | u64 start time (ns since the epoch) | u64 events | u64 objects
 *   | u64 lost events | u32 threads | u32 command length | command bytes
 *   | events... | TR_EXT END
 *
 * An event is a tag byte (low nibble: the tag; high nibble: its first
 * operand when < 15, else 15 followed by a varint of operand - 15), then the
 * remaining operands as varints. Allocations get dense object ids 0, 1, 2...
 * in file order; a ref names a live object as (next id - id), so frees of
 * young objects cost one or two bytes, and 0 means NULL.
 * ------------------------------------------------------------------------- */
#define TR_MAGIC "AFTRACE\n"
#define TR_VERSION 1u
#define TR_HEADER_FIXED 64u /* bytes before the command */
#define TR_MAX_COMMAND (1u << 20)
#define TR_MAX_THREADS 65536u

/* ----------------------------------------------------------------------------
 * The raw file (what the capture library writes while the program runs)
 *
 *   magic "AFRAWTR\n" | u32 version | u32 pid | u32 ppid | u32 0
 *   | u64 start time | u32 command length | command bytes | chunks...
 *
 * A chunk is one flush of one thread's buffer: u32 thread | u32 length |
 * length bytes of raw events (or, thread TR_RAW_LOCKS_CHUNK, a u64 count of
 * global lock acquisitions). A raw event is a tag byte (TR_* call type or
 * RAW_THREAD_START / RAW_THREAD_EXIT, plus RAW_RUNTIME_FLAG for a call made
 * by libc or the dynamic loader), then varints: the global sequence
 * number(s), the operands and the pointers involved (0 for NULL).
 *   malloc/valloc/pvalloc:      seq size result
 *   calloc:                     seq nmemb size result
 *   free:                       seq ptr
 *   aligned_alloc/memalign:     seq align size result
 *   posix_memalign:             seq align size result rc
 *   realloc:                    seq_before seq_after ptr size result
 *   reallocarray:               seq_before seq_after ptr nmemb size result
 *   thread start/exit:          seq
 * realloc takes one number before the call (its release of ptr) and one after
 * (its allocation), so an address it frees and another thread reuses, or an
 * address another thread frees and it reuses, is ordered right.
 * ------------------------------------------------------------------------- */
#define TR_RAW_MAGIC "AFRAWTR\n"
#define TR_RAW_VERSION 2u
#define TR_RAW_HEADER_FIXED 36u
#define TR_RAW_CHUNK_HEADER 8u
/* The thread index of the locks chunk (version 2): 8 bytes, u64 count of
   the process's global lock acquisitions, written once at exit. */
#define TR_RAW_LOCKS_CHUNK 0xffffffffu
enum { RAW_THREAD_START = 12, RAW_THREAD_EXIT = 13 };
/* Set on a raw tag when the caller's return address lies in libc or the
   dynamic loader, not in the program. */
#define RAW_RUNTIME_FLAG 0x80u

/* ----------------------------------------------------------------------------
 * Codec
 * ------------------------------------------------------------------------- */
#define TR_VARINT_MAX 10

static inline uint8_t *tr_put_varint(uint8_t *p, uint64_t v) {
  while (v >= 0x80) {
    *p++ = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  *p++ = (uint8_t)v;
  return p;
}

/* Tag with its first operand packed into the high nibble. */
static inline uint8_t *tr_put_tag(uint8_t *p, unsigned tag, uint64_t a) {
  if (a < 15) {
    *p++ = (uint8_t)(tag | (unsigned)a << 4);
    return p;
  }
  *p++ = (uint8_t)(tag | 0xf0);
  return tr_put_varint(p, a - 15);
}

/* Reads a varint from [*p, end); 0 when it runs past end or past 64 bits. */
static inline int tr_get_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  unsigned shift = 0;
  const uint8_t *q = *p;
  while (q < end) {
    uint8_t byte = *q++;
    if (shift == 63 && byte > 1) return 0;
    v |= (uint64_t)(byte & 0x7f) << shift;
    if (!(byte & 0x80)) {
      *p = q;
      *out = v;
      return 1;
    }
    shift += 7;
    if (shift > 63) return 0;
  }
  return 0;
}

static inline void tr_put_u32(uint8_t *p, uint32_t v) {
  for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void tr_put_u64(uint8_t *p, uint64_t v) {
  for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint32_t tr_get_u32(const uint8_t *p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
  return v;
}
static inline uint64_t tr_get_u64(const uint8_t *p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
  return v;
}

#endif /* AF_TRACE_FORMAT_H */
