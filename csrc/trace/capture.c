/* ----------------------------------------------------------------------------
 * capture.c: the capture library. Preloaded (LD_PRELOAD) into a program by
 * `allocffi trace record`, it interposes malloc, calloc, realloc, free,
 * posix_memalign, aligned_alloc, memalign, valloc, pvalloc and reallocarray,
 * forwards each call to the real function and logs it to a raw file
 * ($AF_TRACE_OUTPUT.PID.raw, see format.h) that the recorder converts into a
 * trace once the program has finished.
 *
 * Invariants (each one has a test in tests/test_trace_capture.py):
 * - It never calls the allocators it records except to forward a call: its
 *   own memory (thread buffers) comes from mmap, and its real_* pointers start
 *   at glibc's exported __libc_* functions, so resolving the next definition
 *   with dlsym (which may allocate) needs no bootstrap pool.
 * - Order: every event takes a number from one global counter. A free takes
 *   it before the real free, an allocation after the real call returns, and a
 *   realloc takes one before (its release) and one after (its allocation):
 *   an address that one thread frees and another gets back is always freed
 *   first in the trace.
 * - No global lock per event: each thread appends to its own mmap'd buffer
 *   (its `busy` flag is only ever contended by the exit-time flusher) and
 *   writes it out in one write() when full, at thread exit and at exit.
 * - Recursion guard: a thread-local flag with initial-exec TLS (no lazy TLS
 *   allocation); anything called with it set (dlsym, write) is forwarded
 *   unrecorded. No stdio, dladdr or unwinding in the hooks.
 * - fork: the child starts a file of its own (FILE.CHILDPID) and drops the
 *   events it inherited unflushed from the parent; exec'd images inherit the
 *   preload and the output prefix, so the gcc driver's cc1 is traced too.
 *   The exec family is interposed only to flush the buffers first.
 * - It never calls into Python and never aborts the program: if a write
 *   fails, capture stops and the program goes on.
 * Events of a thread killed by a signal, or after _exit(), are lost; the
 * converter counts the gaps they leave in the sequence numbers.
 * ------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include "format.h"

#include <dlfcn.h>
#include <link.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#define AF_EXPORT __attribute__((visibility("default")))
#define AF_TLS __attribute__((tls_model("initial-exec")))

/* glibc's own entry points: usable before dlsym has run, never interposed. */
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void __libc_free(void *);
extern void *__libc_memalign(size_t, size_t);
extern void *__libc_valloc(size_t);
extern void *__libc_pvalloc(size_t);

static int boot_posix_memalign(void **out, size_t align, size_t size);
static void *boot_aligned_alloc(size_t align, size_t size);
static void *boot_reallocarray(void *ptr, size_t nmemb, size_t size);

static void *(*real_malloc)(size_t) = __libc_malloc;
static void *(*real_calloc)(size_t, size_t) = __libc_calloc;
static void *(*real_realloc)(void *, size_t) = __libc_realloc;
static void (*real_free)(void *) = __libc_free;
static void *(*real_memalign)(size_t, size_t) = __libc_memalign;
static void *(*real_valloc)(size_t) = __libc_valloc;
static void *(*real_pvalloc)(size_t) = __libc_pvalloc;
static int (*real_posix_memalign)(void **, size_t, size_t) = boot_posix_memalign;
static void *(*real_aligned_alloc)(size_t, size_t) = boot_aligned_alloc;
static void *(*real_reallocarray)(void *, size_t, size_t) = boot_reallocarray;
static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_fexecve)(int, char *const[], char *const[]);

/* ----------------------------------------------------------------------------
 * State
 * ------------------------------------------------------------------------- */
#define STATE_BYTES (64 * 1024)
/* Largest raw event: a tag and six varints. */
#define MAX_EVENT (1 + 6 * TR_VARINT_MAX)
/* pthread runs key destructors up to 4 rounds; ours re-arms itself for the
   first 3 so frees done by other keys' destructors are still buffered. */
#define EXIT_ROUNDS 3

typedef struct tstate tstate;
struct tstate {
  tstate *next;               /* registry list; states are never unmapped */
  atomic_int busy;            /* 1 while the owner appends or a flusher writes */
  bool in_use;                /* false: free for the next new thread */
  unsigned exit_rounds;       /* key destructor rounds seen */
  uint32_t thread;            /* dense index in this process, 0 = first */
  uint32_t used;              /* bytes of events after the chunk header */
  uint8_t *chunk;             /* TR_RAW_CHUNK_HEADER bytes, then the events */
  uint8_t *limit;             /* chunk + capacity - MAX_EVENT */
};

static int g_active;            /* 1 once the constructor has set up an output */
static atomic_int g_failed;     /* a write failed: stop recording */
static atomic_int g_exiting;    /* past our exit flush: write every event at once */
static atomic_uint_fast64_t g_seq;
static atomic_uint g_next_thread;
static tstate *g_states;        /* under g_registry_lock */
static pthread_mutex_t g_registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t g_flush_lock = PTHREAD_MUTEX_INITIALIZER;
/* Acquisitions of the two locks above, written at exit in the locks chunk:
   the proof that events do not take a global lock (tests check it). */
static atomic_uint_fast64_t g_global_locks;
static pthread_key_t g_exit_key;
static int g_fd = -1;           /* opened at the first flush (under g_flush_lock) */
static pid_t g_pid;             /* this process (set at start and in a fork child) */
static uint32_t g_ppid;
static uint64_t g_start_ns;
static char g_prefix[4096];
static uint8_t g_header[TR_RAW_HEADER_FIXED + 65536];
static uint32_t g_header_len;

static void lock_global(pthread_mutex_t *m) {
  atomic_fetch_add_explicit(&g_global_locks, 1, memory_order_relaxed);
  pthread_mutex_lock(m);
}

/* Text ranges of libc and the dynamic loader: calls whose return address is
   inside are the runtime's own, not the program's (found once, at start). */
#define MAX_RUNTIME_RANGES 8
static uintptr_t g_runtime_lo[MAX_RUNTIME_RANGES], g_runtime_hi[MAX_RUNTIME_RANGES];
static int g_runtime_ranges;

static __thread int t_guard AF_TLS;     /* inside a hook or inside our own code */
static __thread tstate *t_state AF_TLS; /* this thread's buffer, NULL before its first event */
static __thread int t_exited AF_TLS;    /* its buffer has been flushed for good */
static __thread uint32_t t_thread AF_TLS; /* its index, kept for events after that */

/* ----------------------------------------------------------------------------
 * Output
 * ------------------------------------------------------------------------- */
static size_t put_decimal(char *out, uint64_t v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; i++) out[i] = digits[n - 1 - i];
  return n;
}

/* PREFIX.PID.raw, or PREFIX.PID-N.raw when an earlier image of this pid (a
   forked child that flushed before it exec'd) already wrote one. */
static int open_output(void) {
  char path[sizeof g_prefix + 64];
  size_t base = strlen(g_prefix);
  memcpy(path, g_prefix, base);
  path[base++] = '.';
  base += put_decimal(path + base, (uint64_t)g_pid);
  for (unsigned attempt = 1; attempt < 100; attempt++) {
    size_t n = base;
    if (attempt > 1) {
      path[n++] = '-';
      n += put_decimal(path + n, attempt);
    }
    memcpy(path + n, ".raw", 5);
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0 || errno != EEXIST) return fd;
  }
  return -1;
}

static bool write_all(int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return false;
    p += w;
    n -= (size_t)w;
  }
  return true;
}

static void build_header(void) {
  uint8_t *h = g_header;
  memcpy(h, TR_RAW_MAGIC, 8);
  tr_put_u32(h + 8, TR_RAW_VERSION);
  tr_put_u32(h + 12, (uint32_t)g_pid);
  tr_put_u32(h + 16, g_ppid);
  tr_put_u32(h + 20, 0);
  tr_put_u64(h + 24, g_start_ns);
  uint32_t len = 0;
  int fd = open("/proc/self/cmdline", O_RDONLY | O_CLOEXEC);
  if (fd >= 0) {
    size_t cap = sizeof g_header - TR_RAW_HEADER_FIXED;
    ssize_t r;
    while (len < cap && (r = read(fd, h + TR_RAW_HEADER_FIXED + len, cap - len)) > 0) len += (uint32_t)r;
    close(fd);
  }
  tr_put_u32(h + 32, len);
  g_header_len = TR_RAW_HEADER_FIXED + len;
}

/* Writes one chunk (header bytes already reserved in front of `events`).
   Called with g_flush_lock held. */
static void write_chunk_locked(uint8_t *chunk, uint32_t thread, uint32_t used) {
  if (atomic_load(&g_failed)) return;
  if (g_fd < 0) {
    g_fd = open_output();
    if (g_fd < 0 || !write_all(g_fd, g_header, g_header_len)) {
      atomic_store(&g_failed, 1);
      return;
    }
  }
  tr_put_u32(chunk, thread);
  tr_put_u32(chunk + 4, used);
  if (!write_all(g_fd, chunk, TR_RAW_CHUNK_HEADER + used)) atomic_store(&g_failed, 1);
}

static void flush_state(tstate *t) {
  if (t->used == 0) return;
  lock_global(&g_flush_lock);
  write_chunk_locked(t->chunk, t->thread, t->used);
  pthread_mutex_unlock(&g_flush_lock);
  t->used = 0;
}

/* ----------------------------------------------------------------------------
 * Thread states
 * ------------------------------------------------------------------------- */
static void log_thread_event(tstate *t, unsigned tag);

static tstate *new_state(void) {
  lock_global(&g_registry_lock);
  tstate *t = g_states;
  while (t != NULL && t->in_use) t = t->next;
  if (t == NULL) {
    void *mem = mmap(NULL, STATE_BYTES, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (mem == MAP_FAILED) {
      pthread_mutex_unlock(&g_registry_lock);
      return NULL;
    }
    t = mem;
    t->chunk = (uint8_t *)mem + sizeof *t;
    t->limit = (uint8_t *)mem + STATE_BYTES - MAX_EVENT;
    t->next = g_states;
    g_states = t;
  }
  t->in_use = true;
  t->used = 0;
  t->exit_rounds = 0;
  atomic_store(&t->busy, 0);
  pthread_mutex_unlock(&g_registry_lock);
  t->thread = atomic_fetch_add(&g_next_thread, 1);
  t_thread = t->thread;
  return t;
}

static tstate *my_state(void) {
  if (t_state != NULL) return t_state;
  if (t_exited) return NULL;
  tstate *t = new_state();
  if (t == NULL) return NULL;
  t_state = t;
  pthread_setspecific(g_exit_key, t);
  log_thread_event(t, RAW_THREAD_START);
  return t;
}

/* The key destructor: flush for good after the last round we re-arm. */
static void thread_exit(void *arg) {
  tstate *t = arg;
  t_guard++;
  if (++t->exit_rounds < EXIT_ROUNDS) {
    pthread_setspecific(g_exit_key, t);
  } else {
    log_thread_event(t, RAW_THREAD_EXIT);
    while (atomic_exchange(&t->busy, 1)) {
    }
    flush_state(t);
    t_state = NULL;
    t_exited = 1;
    lock_global(&g_registry_lock);
    t->in_use = false;
    pthread_mutex_unlock(&g_registry_lock);
    atomic_store(&t->busy, 0);
  }
  t_guard--;
}

/* ----------------------------------------------------------------------------
 * Logging
 * ------------------------------------------------------------------------- */
static inline uint64_t next_seq(void) { return atomic_fetch_add(&g_seq, 1); }

/* A thread whose buffer is gone (it ran its last key destructor) writes each
   event as a chunk of its own. */
static void write_direct(const uint8_t *event, size_t n) {
  uint8_t chunk[TR_RAW_CHUNK_HEADER + MAX_EVENT];
  memcpy(chunk + TR_RAW_CHUNK_HEADER, event, n);
  lock_global(&g_flush_lock);
  write_chunk_locked(chunk, t_thread, (uint32_t)n);
  pthread_mutex_unlock(&g_flush_lock);
}

/* Appends one encoded event (at most MAX_EVENT bytes). */
static void append(const uint8_t *event, size_t n) {
  int saved_errno = errno;
  tstate *t = my_state();
  if (t == NULL) {
    if (t_exited) write_direct(event, n);
    errno = saved_errno;
    return;
  }
  while (atomic_exchange_explicit(&t->busy, 1, memory_order_acquire)) {
  }
  uint8_t *p = t->chunk + TR_RAW_CHUNK_HEADER + t->used;
  if (p > t->limit) {
    flush_state(t);
    p = t->chunk + TR_RAW_CHUNK_HEADER;
  }
  memcpy(p, event, n);
  t->used += (uint32_t)n;
  if (atomic_load_explicit(&g_exiting, memory_order_relaxed)) flush_state(t);
  atomic_store_explicit(&t->busy, 0, memory_order_release);
  errno = saved_errno;
}

static void log_thread_event(tstate *t, unsigned tag) {
  uint8_t e[MAX_EVENT], *p = e;
  *p++ = (uint8_t)tag;
  p = tr_put_varint(p, next_seq());
  (void)t;
  append(e, (size_t)(p - e));
}

static inline unsigned runtime_flag(const void *caller) {
  uintptr_t pc = (uintptr_t)caller;
  for (int i = 0; i < g_runtime_ranges; i++)
    if (pc >= g_runtime_lo[i] && pc < g_runtime_hi[i]) return RAW_RUNTIME_FLAG;
  return 0;
}

#define CALLER __builtin_return_address(0)

static void log_alloc(unsigned tag, uint64_t a, uint64_t b, const void *result, const void *caller) {
  uint64_t seq = next_seq();
  uint8_t e[MAX_EVENT], *p = e;
  *p++ = (uint8_t)(tag | runtime_flag(caller));
  p = tr_put_varint(p, seq);
  if (tag == TR_CALLOC || tag == TR_ALIGNED_ALLOC || tag == TR_MEMALIGN) p = tr_put_varint(p, a);
  p = tr_put_varint(p, b);
  p = tr_put_varint(p, (uintptr_t)result);
  append(e, (size_t)(p - e));
}

/* ----------------------------------------------------------------------------
 * Bootstrap fallbacks (only used until dlsym has answered)
 * ------------------------------------------------------------------------- */
static int boot_posix_memalign(void **out, size_t align, size_t size) {
  if (align < sizeof(void *) || (align & (align - 1)) != 0) return EINVAL;
  void *p = __libc_memalign(align, size);
  if (p == NULL) return ENOMEM;
  *out = p;
  return 0;
}

static void *boot_aligned_alloc(size_t align, size_t size) { return __libc_memalign(align, size); }

static void *boot_reallocarray(void *ptr, size_t nmemb, size_t size) {
  size_t total;
  if (__builtin_mul_overflow(nmemb, size, &total)) {
    errno = ENOMEM;
    return NULL;
  }
  return __libc_realloc(ptr, total);
}

#define RESOLVE(name)                                  \
  do {                                                 \
    void *sym = dlsym(RTLD_NEXT, #name);               \
    if (sym != NULL) *(void **)&real_##name = sym;     \
  } while (0)

/* ----------------------------------------------------------------------------
 * Process life: start, fork, exit
 * ------------------------------------------------------------------------- */
static void before_fork(void) {
  t_guard++;
  lock_global(&g_registry_lock);
  lock_global(&g_flush_lock);
}

static void after_fork_parent(void) {
  pthread_mutex_unlock(&g_flush_lock);
  pthread_mutex_unlock(&g_registry_lock);
  t_guard--;
}

/* The child: the parent writes every event it buffered, so the child drops
   them; only the forking thread exists here and it becomes thread 0. */
static void after_fork_child(void) {
  g_pid = getpid();
  pthread_mutex_init(&g_flush_lock, NULL);
  pthread_mutex_init(&g_registry_lock, NULL);
  g_fd = -1;
  g_ppid = (uint32_t)getppid();
  struct timespec now;
  clock_gettime(CLOCK_REALTIME, &now);
  g_start_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
  build_header();
  for (tstate *t = g_states; t != NULL; t = t->next) {
    t->in_use = false;
    t->used = 0;
    atomic_store(&t->busy, 0);
  }
  atomic_store(&g_seq, 0);
  atomic_store(&g_global_locks, 0);
  atomic_store(&g_next_thread, 0);
  atomic_store(&g_failed, 0);
  t_state = NULL;
  t_exited = 0;
  if (g_active) my_state();
  t_guard--;
}

/* Writes every thread's buffer out. A buffer whose owner is mid-append is
   waited for, but not for ever (a thread stopped inside a hook). */
static void flush_all(void) {
  lock_global(&g_registry_lock);
  for (tstate *t = g_states; t != NULL; t = t->next) {
    if (!t->in_use) continue;
    bool got = false;
    for (int spin = 0; spin < 1000000 && !got; spin++) got = !atomic_exchange(&t->busy, 1);
    if (!got) continue;
    flush_state(t);
    atomic_store(&t->busy, 0);
  }
  pthread_mutex_unlock(&g_registry_lock);
}

/* The locks chunk: how many times this process took a global lock, this
   acquisition included (events written after it are not counted). Only
   into a file that exists: a process without events still makes none. */
static void write_locks_chunk(void) {
  uint8_t chunk[TR_RAW_CHUNK_HEADER + 8];
  lock_global(&g_flush_lock);
  tr_put_u64(chunk + TR_RAW_CHUNK_HEADER, atomic_load(&g_global_locks));
  if (g_fd >= 0) write_chunk_locked(chunk, TR_RAW_LOCKS_CHUNK, 8);
  pthread_mutex_unlock(&g_flush_lock);
}

/* Last of the process: flush every thread's buffer. Destructors that run
   after this one still get their events written, one write per event. */
__attribute__((destructor)) static void capture_fini(void) {
  if (!g_active) return;
  t_guard++;
  if (t_state != NULL) log_thread_event(t_state, RAW_THREAD_EXIT);
  atomic_store(&g_exiting, 1);
  flush_all();
  write_locks_chunk();
  t_guard--;
}

static bool is_runtime(const char *name) {
  const char *base = strrchr(name, '/');
  base = base != NULL ? base + 1 : name;
  return strncmp(base, "libc.so", 7) == 0 || strncmp(base, "ld-linux", 8) == 0;
}

static int find_runtime(struct dl_phdr_info *info, size_t size, void *data) {
  (void)size;
  (void)data;
  if (info->dlpi_name == NULL || !is_runtime(info->dlpi_name)) return 0;
  for (int i = 0; i < info->dlpi_phnum && g_runtime_ranges < MAX_RUNTIME_RANGES; i++) {
    const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
    if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_X)) continue;
    g_runtime_lo[g_runtime_ranges] = info->dlpi_addr + ph->p_vaddr;
    g_runtime_hi[g_runtime_ranges] = info->dlpi_addr + ph->p_vaddr + ph->p_memsz;
    g_runtime_ranges++;
  }
  return 0;
}

__attribute__((constructor)) static void capture_init(void) {
  t_guard++;
  RESOLVE(malloc);
  RESOLVE(calloc);
  RESOLVE(realloc);
  RESOLVE(free);
  RESOLVE(memalign);
  RESOLVE(valloc);
  RESOLVE(pvalloc);
  RESOLVE(posix_memalign);
  RESOLVE(aligned_alloc);
  RESOLVE(reallocarray);
  RESOLVE(execve);
  RESOLVE(execvpe);
  RESOLVE(fexecve);
  dl_iterate_phdr(find_runtime, NULL);
  const char *prefix = getenv("AF_TRACE_OUTPUT");
  if (prefix != NULL && prefix[0] != '\0' && strlen(prefix) < sizeof g_prefix &&
      pthread_key_create(&g_exit_key, thread_exit) == 0) {
    strcpy(g_prefix, prefix);
    g_pid = getpid();
    g_ppid = (uint32_t)getppid();
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    g_start_ns = (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
    build_header();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
    g_active = 1;
  }
  if (g_active) my_state();
  t_guard--;
}

/* ----------------------------------------------------------------------------
 * The hooks
 * ------------------------------------------------------------------------- */
#define PASS_THROUGH (t_guard != 0 || !g_active || atomic_load_explicit(&g_failed, memory_order_relaxed))

AF_EXPORT void *malloc(size_t size) {
  if (PASS_THROUGH) return real_malloc(size);
  t_guard = 1;
  void *p = real_malloc(size);
  log_alloc(TR_MALLOC, 0, size, p, CALLER);
  t_guard = 0;
  return p;
}

AF_EXPORT void *calloc(size_t nmemb, size_t size) {
  if (PASS_THROUGH) return real_calloc(nmemb, size);
  t_guard = 1;
  void *p = real_calloc(nmemb, size);
  log_alloc(TR_CALLOC, nmemb, size, p, CALLER);
  t_guard = 0;
  return p;
}

AF_EXPORT void free(void *ptr) {
  if (PASS_THROUGH) {
    real_free(ptr);
    return;
  }
  t_guard = 1;
  uint8_t e[MAX_EVENT], *p = e;
  *p++ = (uint8_t)(TR_FREE | runtime_flag(CALLER));
  p = tr_put_varint(p, next_seq());
  p = tr_put_varint(p, (uintptr_t)ptr);
  append(e, (size_t)(p - e));
  real_free(ptr);
  t_guard = 0;
}

static void log_realloc(unsigned tag, uint64_t seq_before, const void *old, uint64_t nmemb, uint64_t size,
                        const void *result, const void *caller) {
  uint8_t e[MAX_EVENT], *p = e;
  *p++ = (uint8_t)(tag | runtime_flag(caller));
  p = tr_put_varint(p, seq_before);
  p = tr_put_varint(p, next_seq());
  p = tr_put_varint(p, (uintptr_t)old);
  if (tag == TR_REALLOCARRAY) p = tr_put_varint(p, nmemb);
  p = tr_put_varint(p, size);
  p = tr_put_varint(p, (uintptr_t)result);
  append(e, (size_t)(p - e));
}

AF_EXPORT void *realloc(void *ptr, size_t size) {
  if (PASS_THROUGH) return real_realloc(ptr, size);
  t_guard = 1;
  uint64_t before = next_seq();
  void *q = real_realloc(ptr, size);
  log_realloc(TR_REALLOC, before, ptr, 0, size, q, CALLER);
  t_guard = 0;
  return q;
}

AF_EXPORT void *reallocarray(void *ptr, size_t nmemb, size_t size) {
  if (PASS_THROUGH) return real_reallocarray(ptr, nmemb, size);
  t_guard = 1;
  uint64_t before = next_seq();
  void *q = real_reallocarray(ptr, nmemb, size);
  log_realloc(TR_REALLOCARRAY, before, ptr, nmemb, size, q, CALLER);
  t_guard = 0;
  return q;
}

AF_EXPORT int posix_memalign(void **out, size_t align, size_t size) {
  if (PASS_THROUGH) return real_posix_memalign(out, align, size);
  t_guard = 1;
  void *p = NULL;
  int rc = real_posix_memalign(&p, align, size);
  if (rc == 0) *out = p;
  uint64_t seq = next_seq();
  uint8_t e[MAX_EVENT], *q = e;
  *q++ = (uint8_t)(TR_POSIX_MEMALIGN | runtime_flag(CALLER));
  q = tr_put_varint(q, seq);
  q = tr_put_varint(q, align);
  q = tr_put_varint(q, size);
  q = tr_put_varint(q, rc == 0 ? (uintptr_t)p : 0);
  q = tr_put_varint(q, (uint64_t)(unsigned)rc);
  append(e, (size_t)(q - e));
  t_guard = 0;
  return rc;
}

AF_EXPORT void *aligned_alloc(size_t align, size_t size) {
  if (PASS_THROUGH) return real_aligned_alloc(align, size);
  t_guard = 1;
  void *p = real_aligned_alloc(align, size);
  log_alloc(TR_ALIGNED_ALLOC, align, size, p, CALLER);
  t_guard = 0;
  return p;
}

AF_EXPORT void *memalign(size_t align, size_t size) {
  if (PASS_THROUGH) return real_memalign(align, size);
  t_guard = 1;
  void *p = real_memalign(align, size);
  log_alloc(TR_MEMALIGN, align, size, p, CALLER);
  t_guard = 0;
  return p;
}

AF_EXPORT void *valloc(size_t size) {
  if (PASS_THROUGH) return real_valloc(size);
  t_guard = 1;
  void *p = real_valloc(size);
  log_alloc(TR_VALLOC, 0, size, p, CALLER);
  t_guard = 0;
  return p;
}

AF_EXPORT void *pvalloc(size_t size) {
  if (PASS_THROUGH) return real_pvalloc(size);
  t_guard = 1;
  void *p = real_pvalloc(size);
  log_alloc(TR_PVALLOC, 0, size, p, CALLER);
  t_guard = 0;
  return p;
}

/* ----------------------------------------------------------------------------
 * exec: the image is about to be replaced, so its buffers go out first (the
 * new image, same pid, then writes FILE.PID-2). If exec fails, nothing is
 * lost: the program goes on with empty buffers.
 * ------------------------------------------------------------------------- */
static void before_exec(void) {
  /* A vfork child (posix_spawn, the gcc driver) shares the parent's memory
     and runs no fork handler: its pid differs from g_pid. The buffers are
     the parent's, which writes them itself; flushing here would also leave
     the parent holding a descriptor opened in the child. */
  if (!g_active || getpid() != g_pid) return;
  t_guard++;
  flush_all();
  t_guard--;
}

extern char **environ;

AF_EXPORT int execve(const char *path, char *const argv[], char *const envp[]) {
  before_exec();
  if (real_execve == NULL) {
    errno = ENOSYS;
    return -1;
  }
  return real_execve(path, argv, envp);
}

AF_EXPORT int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

AF_EXPORT int execvpe(const char *file, char *const argv[], char *const envp[]) {
  before_exec();
  if (real_execvpe == NULL) {
    errno = ENOSYS;
    return -1;
  }
  return real_execvpe(file, argv, envp);
}

AF_EXPORT int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }

AF_EXPORT int fexecve(int fd, char *const argv[], char *const envp[]) {
  before_exec();
  if (real_fexecve == NULL) {
    errno = ENOSYS;
    return -1;
  }
  return real_fexecve(fd, argv, envp);
}

/* The list forms (execl, execlp, execle), through the execve and execvpe above. */
#define AF_EXEC_EXPORT AF_EXPORT
#include "exec_list.h"
