/* ----------------------------------------------------------------------------
 * test_trace.c: the trace converter, reader, summary and replay, in C (so
 * `make sanitize` runs all of them, the replay on every allocator included,
 * under ASan and UBSan, and `make valgrind` under memcheck).
 *
 * - A raw capture with a known random sequence (two threads, address reuse,
 *   cross-thread frees, realloc incl. the size-0 and failed cases, aligned
 *   calls, a free of a pointer never seen) is written with format.h's
 *   encoder, converted, and summarised: counts, peak live bytes and unknown
 *   frees must be exactly what the generator did.
 * - The trace is replayed on every available allocator, serial and threads:
 *   the checksum agrees across them, peak live bytes is the generator's.
 * - Every truncation of the trace and a few thousand byte mutations go
 *   through summarize and replay: each either succeeds or fails with a
 *   message naming an offset, never crashes; a mutated raw file likewise
 *   through the converter.
 * AF_TEST_SCALE scales the sequence and the mutations.
 * ------------------------------------------------------------------------- */
#include "check.h"
#include "trace/trace_io.h"

#include <unistd.h>

static const char *const ALLOCATORS[] = {"bump",     "slab",     "large",         "libc",          "mimalloc",
                                         "jemalloc", "tcmalloc", "mimalloc-heap", "jemalloc-arena"};
#define ALLOCATOR_COUNT (sizeof ALLOCATORS / sizeof ALLOCATORS[0])

/* ----------------------------------------------------------------------------
 * A raw file built in memory
 * ------------------------------------------------------------------------- */
typedef struct raw_builder {
  uint8_t *data;
  size_t len, cap;
  uint64_t seq;
  /* what the generator did */
  uint64_t calls[TR_CALL_KINDS];
  uint64_t unknown_frees;
  uint64_t live_bytes, peak_live_bytes;
} raw_builder;

static void put(raw_builder *b, const void *p, size_t n) {
  if (b->len + n > b->cap) {
    b->cap = (b->len + n) * 2;
    b->data = realloc(b->data, b->cap);
    if (b->data == NULL) abort();
  }
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

static void put_header(raw_builder *b) {
  uint8_t h[TR_RAW_HEADER_FIXED];
  memcpy(h, TR_RAW_MAGIC, 8);
  tr_put_u32(h + 8, TR_RAW_VERSION);
  tr_put_u32(h + 12, 4242);
  tr_put_u32(h + 16, 1);
  tr_put_u32(h + 20, 0);
  tr_put_u64(h + 24, 1700000000000000000ull);
  tr_put_u32(h + 32, 5);
  put(b, h, sizeof h);
  put(b, "test\0", 5);
}

/* One event as a chunk of its own (the converter merges by sequence number). */
static void put_event(raw_builder *b, uint32_t thread, unsigned tag, int n, const uint64_t *v) {
  uint8_t e[1 + 6 * TR_VARINT_MAX], *p = e;
  *p++ = (uint8_t)tag;
  for (int i = 0; i < n; i++) p = tr_put_varint(p, v[i]);
  uint8_t h[TR_RAW_CHUNK_HEADER];
  tr_put_u32(h, thread);
  tr_put_u32(h + 4, (uint32_t)(p - e));
  put(b, h, sizeof h);
  put(b, e, (size_t)(p - e));
}

typedef struct block {
  uint64_t ptr, size;
} block;

#define MAX_LIVE 512

typedef struct generator {
  raw_builder b;
  block live[MAX_LIVE];
  size_t live_count;
  uint64_t free_addrs[MAX_LIVE * 4];
  size_t free_count;
  uint64_t next_addr;
  uint64_t rng;
} generator;

static uint64_t new_address(generator *g) {
  if (g->free_count > 0 && test_rand(&g->rng) % 2 == 0) return g->free_addrs[--g->free_count];
  g->next_addr += 4096;
  return g->next_addr;
}

static void born(generator *g, uint64_t ptr, uint64_t size) {
  g->live[g->live_count++] = (block){ptr, size};
  g->b.live_bytes += size;
  if (g->b.live_bytes > g->b.peak_live_bytes) g->b.peak_live_bytes = g->b.live_bytes;
}

static block take(generator *g, size_t i) {
  block out = g->live[i];
  g->live[i] = g->live[--g->live_count];
  g->b.live_bytes -= out.size;
  if (g->free_count < sizeof g->free_addrs / sizeof g->free_addrs[0]) g->free_addrs[g->free_count++] = out.ptr;
  return out;
}

static void generate(generator *g, uint64_t steps) {
  memset(g, 0, sizeof *g);
  g->rng = 7;
  g->next_addr = 0x100000;
  raw_builder *b = &g->b;
  put_header(b);
  uint64_t v[6];
  v[0] = b->seq++;
  put_event(b, 0, RAW_THREAD_START, 1, v);
  v[0] = b->seq++;
  put_event(b, 1, RAW_THREAD_START, 1, v);
  uint32_t thread = 0;
  for (uint64_t s = 0; s < steps; s++) {
    uint64_t r = test_rand(&g->rng);
    /* runs of ~64 calls per thread, as real threads make them (a switch
       every call would make the threads-mode replay a ping-pong) */
    if ((r >> 54) % 64 == 0) thread ^= 1;
    unsigned choice = (unsigned)(r % 16);
    uint64_t size = (r >> 8) % 300 + (choice == 15 ? 10000 : 0);
    if (g->live_count >= MAX_LIVE - 1 || (choice < 6 && g->live_count > 0)) {
      block freed = take(g, (size_t)((r >> 20) % g->live_count));
      v[0] = b->seq++;
      v[1] = freed.ptr;
      put_event(b, thread, TR_FREE, 2, v);
      b->calls[TR_FREE]++;
    } else if (choice < 8 && g->live_count > 0) {
      /* realloc: moved, size 0 (frees), or failed */
      size_t i = (size_t)((r >> 20) % g->live_count);
      uint64_t old = g->live[i].ptr;
      v[0] = b->seq++;
      v[1] = b->seq++;
      v[2] = old;
      if (choice == 6 && (r >> 40) % 8 == 0) {
        take(g, i);
        v[3] = 0;
        v[4] = 0;
      } else if (choice == 6 && (r >> 40) % 8 == 1) {
        v[3] = 1ull << 50;
        v[4] = 0;
      } else {
        take(g, i);
        v[3] = size;
        v[4] = new_address(g);
        born(g, v[4], size);
      }
      put_event(b, thread, TR_REALLOC, 5, v);
      b->calls[TR_REALLOC]++;
    } else if (choice == 8) {
      v[0] = b->seq++;
      v[1] = 3;
      v[2] = size;
      v[3] = new_address(g);
      put_event(b, thread, TR_CALLOC, 4, v);
      born(g, v[3], 3 * size);
      b->calls[TR_CALLOC]++;
    } else if (choice == 9) {
      v[0] = b->seq++;
      v[1] = 64;
      v[2] = size;
      v[3] = new_address(g);
      v[4] = 0;
      put_event(b, thread, TR_POSIX_MEMALIGN, 5, v);
      born(g, v[3], size);
      b->calls[TR_POSIX_MEMALIGN]++;
    } else if (choice == 10) {
      v[0] = b->seq++;
      v[1] = 8192; /* above AF_MAX_ALIGN: replayed at 4096 */
      v[2] = size;
      v[3] = new_address(g);
      put_event(b, thread, TR_MEMALIGN, 4, v);
      born(g, v[3], size);
      b->calls[TR_MEMALIGN]++;
    } else if (choice == 11 && (r >> 30) % 16 == 0) {
      v[0] = b->seq++;
      v[1] = 0xdead0000; /* never allocated: an unknown free */
      put_event(b, thread, TR_FREE, 2, v);
      b->calls[TR_FREE]++;
      b->unknown_frees++;
    } else {
      v[0] = b->seq++;
      v[1] = size;
      v[2] = new_address(g);
      put_event(b, thread, TR_MALLOC, 3, v);
      born(g, v[2], size);
      b->calls[TR_MALLOC]++;
    }
  }
}

static void write_file(const char *path, const uint8_t *data, size_t len) {
  /* A fresh file each time: ext4 flushes a file that was truncated and
     rewritten when it is closed, which made this test wait on the disk. */
  unlink(path);
  FILE *f = fopen(path, "wb");
  if (f == NULL || fwrite(data, 1, len, f) != len) abort();
  fclose(f);
}

static uint8_t *read_file(const char *path, size_t *len) {
  uint8_t *data;
  af_error err;
  if (_af_trace_load(path, &data, len, &err) != AF_OK) abort();
  return data;
}

/* ----------------------------------------------------------------------------
 * Tests
 * ------------------------------------------------------------------------- */
static char raw_path[64], trace_path[64], scratch_path[64];

static void test_convert_and_summarize(const generator *g) {
  af_error err;
  CHECK_EQ(af_trace_convert(raw_path, trace_path, &err), AF_OK);
  af_trace_summary s;
  CHECK_EQ(af_trace_summarize(trace_path, &s, &err), AF_OK);
  for (int i = 0; i < TR_CALL_KINDS; i++) CHECK_EQ(s.calls[i], g->b.calls[i]);
  CHECK_EQ(s.unknown_frees, g->b.unknown_frees);
  CHECK_EQ(s.peak_live_bytes, g->b.peak_live_bytes);
  CHECK_EQ(s.live_bytes_at_end, g->b.live_bytes);
  CHECK_EQ(s.threads, 2);
  CHECK_EQ(s.pid, 4242);
  CHECK_EQ(s.lost_events, 0);
  CHECK(s.cross_thread_frees > 0);
  CHECK(s.failed[TR_REALLOC] > 0);
  CHECK(strcmp(s.command, "test") == 0);
}

static void test_replay_everywhere(const generator *g) {
  uint64_t checksum = 0;
  bool have_checksum = false;
  for (size_t i = 0; i < ALLOCATOR_COUNT; i++) {
    af_error err;
    if (af_available(ALLOCATORS[i], &err) != AF_OK) {
      printf("  %s: not available (%s)\n", ALLOCATORS[i], err.message);
      continue;
    }
    for (int mode = AF_TRACE_SERIAL; mode <= AF_TRACE_THREADS; mode++) {
      for (int touch = AF_TOUCH_ENDS; touch <= AF_TOUCH_ALL; touch++) {
        af_trace_replay_config config = {trace_path, ALLOCATORS[i], touch, mode};
        af_trace_replay_result r;
        int status = af_trace_replay(&config, &r, &err);
        if (mode == AF_TRACE_THREADS && strcmp(ALLOCATORS[i], "mimalloc-heap") == 0) {
          CHECK_EQ(status, AF_ERR_THREAD);
          continue;
        }
        if (status != AF_OK) fprintf(stderr, "%s mode %d touch %d: %s\n", ALLOCATORS[i], mode, touch, err.message);
        CHECK_EQ(status, AF_OK);
        CHECK_EQ(r.peak_live_bytes, g->b.peak_live_bytes);
        CHECK(r.events > 0);
        CHECK(r.clamped_alignments > 0);
        CHECK_EQ(r.frees_ignored, strcmp(ALLOCATORS[i], "bump") == 0 ? 1 : 0);
        CHECK_EQ(r.threads, mode == AF_TRACE_THREADS ? 2 : 1);
        if (touch != AF_TOUCH_ENDS) continue;
        if (!have_checksum) {
          checksum = r.checksum;
          have_checksum = true;
        }
        CHECK_EQ(r.checksum, checksum);
      }
    }
  }
}

/* A mutated file either works or fails with a message naming an offset. */
static void check_survives(const char *path, bool replay) {
  af_error err;
  memset(&err, 0, sizeof err);
  af_trace_summary s;
  int status = af_trace_summarize(path, &s, &err);
  CHECK(status == AF_OK || strstr(err.message, "offset") != NULL || strstr(err.message, "no memory") != NULL);
  if (!replay) return;
  /* slab: mmap-backed, so a mutated huge size fails cleanly under ASan too */
  af_trace_replay_config config = {path, "slab", AF_TOUCH_ENDS, AF_TRACE_SERIAL};
  af_trace_replay_result r;
  int replayed = af_trace_replay(&config, &r, &err);
  CHECK(status == AF_OK || replayed != AF_OK); /* a file summarize refuses is never replayed */
}

static void test_bad_traces(void) {
  size_t len;
  uint8_t *good = read_file(trace_path, &len);
  /* every truncation */
  for (size_t cut = 0; cut < len; cut += (len > 2000 ? 3 : 1)) {
    write_file(scratch_path, good, cut);
    af_error err;
    af_trace_summary s;
    CHECK(af_trace_summarize(scratch_path, &s, &err) != AF_OK);
  }
  /* byte mutations */
  uint64_t rng = 99;
  uint64_t mutants = scaled(1000, 100);
  uint8_t *copy = malloc(len);
  for (uint64_t m = 0; m < mutants; m++) {
    memcpy(copy, good, len);
    int flips = 1 + (int)(test_rand(&rng) % 4);
    for (int f = 0; f < flips; f++) copy[test_rand(&rng) % len] ^= (uint8_t)(1u << (test_rand(&rng) % 8));
    write_file(scratch_path, copy, len);
    check_survives(scratch_path, m % 8 == 0);
  }
  /* another version, another format */
  memcpy(copy, good, len);
  tr_put_u32(copy + 8, TR_VERSION + 1);
  write_file(scratch_path, copy, len);
  af_error err;
  af_trace_summary s;
  CHECK_EQ(af_trace_summarize(scratch_path, &s, &err), AF_ERR_INVALID);
  CHECK(strstr(err.message, "version") != NULL && strstr(err.message, scratch_path) != NULL);
  write_file(scratch_path, (const uint8_t *)"GIF89a not a trace at all", 25);
  CHECK_EQ(af_trace_summarize(scratch_path, &s, &err), AF_ERR_INVALID);
  CHECK(strstr(err.message, "offset 0") != NULL);
  free(copy);
  free(good);
}

static void test_bad_raw(void) {
  size_t len;
  uint8_t *good = read_file(raw_path, &len);
  uint8_t *copy = malloc(len);
  uint64_t rng = 5;
  uint64_t mutants = scaled(300, 20);
  for (uint64_t m = 0; m < mutants; m++) {
    memcpy(copy, good, len);
    copy[TR_RAW_HEADER_FIXED + test_rand(&rng) % (len - TR_RAW_HEADER_FIXED)] ^= (uint8_t)(1u << (m % 8));
    write_file(scratch_path, copy, len);
    af_error err;
    memset(&err, 0, sizeof err);
    int status = af_trace_convert(scratch_path, trace_path, &err);
    CHECK(status == AF_OK || err.message[0] != '\0');
    if (status == AF_OK) check_survives(trace_path, false);
  }
  free(copy);
  free(good);
}

int main(void) {
  snprintf(raw_path, sizeof raw_path, "/tmp/af_test_trace_%d.raw", (int)getpid());
  snprintf(trace_path, sizeof trace_path, "/tmp/af_test_trace_%d", (int)getpid());
  snprintf(scratch_path, sizeof scratch_path, "/tmp/af_test_trace_%d.bad", (int)getpid());
  static generator g;
  generate(&g, scaled(5000, 1000));
  write_file(raw_path, g.b.data, g.b.len);
  test_convert_and_summarize(&g);
  test_replay_everywhere(&g);
  test_bad_traces();
  test_bad_raw();
  free(g.b.data);
  unlink(raw_path);
  if (getenv("AF_KEEP_TRACE") == NULL) unlink(trace_path);
  unlink(scratch_path);
  return check_summary();
}
