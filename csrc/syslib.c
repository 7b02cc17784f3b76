/* ----------------------------------------------------------------------------
 * syslib.c: loading the system allocator libraries (see syslib.h).
 *
 * One `syslib` record per library: its soname, the Debian package that ships
 * it, the symbols to resolve and where to store them. pthread_once runs the
 * load exactly once per process; afterwards `status`, `message` and the
 * function table are read-only, so readers need no lock.
 *
 * Two process-safety measures, both found by experiment:
 * - RTLD_LOCAL keeps the libraries' exported malloc/free out of the global
 *   symbol scope, so the process's malloc (Python's, numpy's) stays glibc's.
 * - jemalloc and tcmalloc depend on libstdc++. If libstdc++ is not yet in
 *   the process, dlopen loads it inside their local scope and binds its
 *   replaceable operator new/delete to the allocator's definitions: C++ code
 *   loaded later (numpy, any extension) then mixes allocators and crashes
 *   ("free(): invalid pointer"). Loading libstdc++ on its own first binds it
 *   to its own operator new, which calls glibc malloc.
 * ------------------------------------------------------------------------- */
#include "syslib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>

/* One symbol to resolve: its name and the offset of its slot in the table. */
typedef struct syslib_symbol {
  const char *name;
  size_t offset;
} syslib_symbol;

typedef struct syslib {
  const char *name;               /* the library's row in _af_entry_points */
  const char *soname;             /* what dlopen is given */
  const char *package;            /* Debian package shipping it */
  bool needs_libstdcxx;           /* load libstdc++ first (see banner) */
  const syslib_symbol *symbols;
  size_t symbol_count;
  void *table;                    /* function table filled from `symbols` */
  size_t malloc_offset;           /* the table's slots for the chosen entry points */
  size_t free_offset;
  void *handle;                   /* from dlopen, kept forever; set once, inside `once` */
  pthread_once_t once;
  int status;                     /* AF_OK once loaded; set once, inside `once` */
  char message[AF_ERROR_MESSAGE_SIZE]; /* the reason when status != AF_OK */
} syslib;

#define SYM(type, field, symbol) { symbol, offsetof(type, field) }
#define COUNT(array) (sizeof(array) / sizeof((array)[0]))

/* ----------------------------------------------------------------------------
 * The entry points for a block with alignment <= 16, chosen by measurement:
 * the fastest pair of those the library's users call. Every candidate of
 * tools/entry_points.h runs a direct loop of the engine's fixed-48 work
 * (engine/direct.h: alloc, tag both ends, read back, free) through a plain
 * function pointer. Instructions per pair from callgrind (`make
 * entry-points-callgrind`: two runs, the difference, so they do not depend
 * on the load); ns per pair, median [min] of 15 interleaved rounds of 2 M
 * pairs in one process (`make entry-points`, 2 cores, load average 6).
 *
 *   libc      malloc/free                 155 instr  17.5 [9.1] ns   chosen
 *             aligned_alloc(16)/free      172        18.5 [10.9]
 *   mimalloc  mi_malloc/mi_free           131        14.7 [9.5]      chosen
 *             mi_malloc/mi_free_size      134        16.0 [11.0]
 *             mi_malloc_small/mi_free     128        14.9 [9.4]      <= 1 KiB only: no gain worth a limit
 *             malloc/free (aliases)       131        14.8 [9.8]
 *             mi_malloc_aligned(16)       171        20.7 [14.9]
 *   jemalloc  malloc/free                  93        10.3 [6.3]      chosen
 *             malloc/sdallocx             156        18.9 [11.6]
 *             mallocx/dallocx             211        23.9 [13.7]     the old choice: 2.3x the instructions
 *             mallocx/sdallocx            220        24.4 [16.3]
 *   tcmalloc  tc_malloc/tc_free            93         9.5 [5.4]      chosen
 *             tc_malloc/tc_free_sized      91         9.8 [5.3]      2 instructions less, not faster, and
 *                                                                    wrong after an in-place shrink
 *             tc_malloc_skip_new_handler   97        10.6 [5.6]
 *             malloc/free (aliases)        93        10.2 [5.2]
 *
 * Larger alignments, calloc and realloc use each library's own variant in
 * system.c; they are not on the benchmark's hot path.
 * ------------------------------------------------------------------------- */
const af_entry_choice _af_entry_points[] = {
  {"libc", "malloc", "free"},
  {"mimalloc", "mi_malloc", "mi_free"},
  {"jemalloc", "malloc", "free"},
  {"tcmalloc", "tc_malloc", "tc_free"},
};
const size_t _af_entry_point_count = sizeof _af_entry_points / sizeof _af_entry_points[0];

const af_entry_choice *_af_entry_choice(const char *library) {
  for (size_t i = 0; i < _af_entry_point_count; i++)
    if (library != NULL && strcmp(_af_entry_points[i].library, library) == 0) return &_af_entry_points[i];
  return NULL;
}

/* ----------------------------------------------------------------------------
 * Loading
 * ------------------------------------------------------------------------- */

static void syslib_fail(syslib *lib, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void syslib_fail(syslib *lib, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(lib->message, sizeof lib->message, fmt, ap);
  va_end(ap);
  lib->status = AF_ERR_UNAVAILABLE;
}

/* Runs once per library, under its pthread_once. */
static void syslib_load(syslib *lib) {
  if (lib->needs_libstdcxx) (void)dlopen("libstdc++.so.6", RTLD_NOW | RTLD_LOCAL); /* kept forever */

  dlerror(); /* clear a stale message */
  void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) {
    const char *why = dlerror();
    if (why == NULL) why = "unknown dlopen error";
    if (strstr(why, "static TLS") != NULL) {
      /* the surplus of static TLS is fixed when the process starts */
      syslib_fail(lib,
                  "%s uses initial-exec TLS: start Python (or your program) with "
                  "GLIBC_TUNABLES=glibc.rtld.optional_static_tls=16384 in its environment; "
                  "make test, make bench and allocffi bench set it for you",
                  lib->soname);
    } else if (strstr(why, "cannot open shared object file") != NULL) {
      syslib_fail(lib, "%s not found: install the Debian package %s (apt-get install %s)",
                  lib->soname, lib->package, lib->package);
    } else {
      syslib_fail(lib, "cannot load %s: %s", lib->soname, why);
    }
    return;
  }
  for (size_t i = 0; i < lib->symbol_count; i++) {
    void *fn = dlsym(handle, lib->symbols[i].name);
    if (fn == NULL) {
      /* the handle stays open: never dlclose an allocator library */
      syslib_fail(lib, "%s lacks %s: a newer version of the Debian package %s is needed",
                  lib->soname, lib->symbols[i].name, lib->package);
      return;
    }
    memcpy((char *)lib->table + lib->symbols[i].offset, &fn, sizeof fn);
  }
  const af_entry_choice *choice = _af_entry_choice(lib->name);
  const char *chosen[2] = {choice->alloc, choice->free};
  size_t slots[2] = {lib->malloc_offset, lib->free_offset};
  for (int i = 0; i < 2; i++) {
    void *fn = dlsym(handle, chosen[i]);
    if (fn == NULL) {
      syslib_fail(lib, "%s lacks %s: a newer version of the Debian package %s is needed", lib->soname,
                  chosen[i], lib->package);
      return;
    }
    memcpy((char *)lib->table + slots[i], &fn, sizeof fn);
  }
  lib->handle = handle;
  lib->status = AF_OK;
}

/* The table once loaded, else NULL with the remembered reason in *err. */
static const void *syslib_get(syslib *lib, void (*load_once)(void), af_error *err) {
  pthread_once(&lib->once, load_once);
  if (lib->status == AF_OK) return lib->table;
  _af_error_set(err, lib->status, "%s", lib->message);
  return NULL;
}

/* ----------------------------------------------------------------------------
 * The four libraries
 * ------------------------------------------------------------------------- */

static af_libc_api libc_api;
static const syslib_symbol libc_symbols[] = {
  SYM(af_libc_api, calloc, "calloc"),
  SYM(af_libc_api, realloc, "realloc"),
  SYM(af_libc_api, aligned_alloc, "aligned_alloc"),
  SYM(af_libc_api, malloc_usable_size, "malloc_usable_size"),
};
static syslib libc_lib = {
  .name = "libc", .soname = "libc.so.6", .package = "libc6", .needs_libstdcxx = false,
  .symbols = libc_symbols, .symbol_count = COUNT(libc_symbols), .table = &libc_api,
  .malloc_offset = offsetof(af_libc_api, malloc), .free_offset = offsetof(af_libc_api, free),
  .once = PTHREAD_ONCE_INIT,
};
static void libc_load(void) { syslib_load(&libc_lib); }

static af_mimalloc_api mimalloc_api;
static const syslib_symbol mimalloc_symbols[] = {
  SYM(af_mimalloc_api, zalloc, "mi_zalloc"),
  SYM(af_mimalloc_api, malloc_aligned, "mi_malloc_aligned"),
  SYM(af_mimalloc_api, zalloc_aligned, "mi_zalloc_aligned"),
  SYM(af_mimalloc_api, realloc, "mi_realloc"),
  SYM(af_mimalloc_api, realloc_aligned, "mi_realloc_aligned"),
  SYM(af_mimalloc_api, usable_size, "mi_usable_size"),
  SYM(af_mimalloc_api, heap_new, "mi_heap_new"),
  SYM(af_mimalloc_api, heap_destroy, "mi_heap_destroy"),
  SYM(af_mimalloc_api, heap_malloc, "mi_heap_malloc"),
  SYM(af_mimalloc_api, heap_zalloc, "mi_heap_zalloc"),
  SYM(af_mimalloc_api, heap_malloc_aligned, "mi_heap_malloc_aligned"),
  SYM(af_mimalloc_api, heap_zalloc_aligned, "mi_heap_zalloc_aligned"),
  SYM(af_mimalloc_api, heap_realloc, "mi_heap_realloc"),
  SYM(af_mimalloc_api, heap_realloc_aligned, "mi_heap_realloc_aligned"),
};
static syslib mimalloc_lib = {
  .name = "mimalloc", .soname = "libmimalloc.so.2", .package = "libmimalloc2.0", .needs_libstdcxx = false,
  .symbols = mimalloc_symbols, .symbol_count = COUNT(mimalloc_symbols), .table = &mimalloc_api,
  .malloc_offset = offsetof(af_mimalloc_api, malloc), .free_offset = offsetof(af_mimalloc_api, free),
  .once = PTHREAD_ONCE_INIT,
};
/* Valgrind's memcheck (unless run with --soname-synonyms=somalloc=nouserintercepts)
   replaces every function named malloc, free, realloc, malloc_usable_size...
   in every library. In mimalloc those names are aliases of mi_malloc,
   mi_free, mi_realloc, mi_usable_size, while mi_malloc_aligned and mi_heap_*
   stay mimalloc's own: blocks would cross between two allocators. An
   aligned block that mi_usable_size does not know reveals it. */
static void mimalloc_check_intercepted(void) {
  void *probe = mimalloc_api.malloc_aligned(64, 64);
  if (probe == NULL) return; /* out of memory: the allocator will say so itself */
  if (mimalloc_api.usable_size(probe) >= 64) {
    mimalloc_api.free(probe);
    return;
  }
  /* the probe is left alone: freeing it would cross allocators */
  syslib_fail(&mimalloc_lib,
              "%s cannot be used here: a tool (valgrind?) replaced its mi_malloc/mi_free but not "
              "its other entry points; run valgrind with --soname-synonyms=somalloc=nouserintercepts",
              mimalloc_lib.soname);
}

/* ----------------------------------------------------------------------------
 * mimalloc 2.0.9 (Debian's libmimalloc2.0) can return a misaligned block from
 * its aligned entry points when align <= size <= 1024: the "a free small block
 * happens to be aligned" fast path of its aligned allocation (upstream issues
 * 602 and 700). Probed here over align 32..4096 and size 1..70000: only sizes
 * 256..1024 are hit. The table gets checking wrappers instead of the six
 * aligned entry points: a misaligned block is freed and the request repeated
 * above the small-block limit, which skips that path; an aligned realloc into
 * the affected range is alloc + copy + free, so a bad result can never cost
 * the caller the old block. The check is one AND on paths with align > 16.
 * ------------------------------------------------------------------------- */
#define MI_SMALL_SIZE_MAX 1024 /* mimalloc's MI_SMALL_SIZE_MAX on 64-bit */

static af_mimalloc_api mimalloc_raw; /* the library's own entry points */

static bool mi_misaligned(const void *p, size_t align) { return ((uintptr_t)p & (align - 1)) != 0; }
static bool mi_in_bug_range(size_t size, size_t align) { return size <= MI_SMALL_SIZE_MAX && align <= size; }
static size_t mi_past_small(size_t size) { return size > MI_SMALL_SIZE_MAX ? size : MI_SMALL_SIZE_MAX + 1; }

static void *mi_malloc_aligned_checked(size_t size, size_t align) {
  void *p = mimalloc_raw.malloc_aligned(size, align);
  if (af_unlikely(p != NULL && mi_misaligned(p, align))) {
    mimalloc_raw.free(p);
    p = mimalloc_raw.malloc_aligned(mi_past_small(size), align);
  }
  return p;
}

static void *mi_zalloc_aligned_checked(size_t size, size_t align) {
  void *p = mimalloc_raw.zalloc_aligned(size, align);
  if (af_unlikely(p != NULL && mi_misaligned(p, align))) {
    mimalloc_raw.free(p);
    p = mimalloc_raw.zalloc_aligned(mi_past_small(size), align);
  }
  return p;
}

static void *mi_realloc_aligned_checked(void *ptr, size_t size, size_t align) {
  if (!mi_in_bug_range(size, align)) return mimalloc_raw.realloc_aligned(ptr, size, align);
  void *q = mi_malloc_aligned_checked(size, align);
  if (q == NULL) return NULL; /* the old block stays valid, as realloc promises */
  size_t old_usable = mimalloc_raw.usable_size(ptr);
  memcpy(q, ptr, size < old_usable ? size : old_usable);
  mimalloc_raw.free(ptr);
  return q;
}

static void *mi_heap_malloc_aligned_checked(af_mi_heap *heap, size_t size, size_t align) {
  void *p = mimalloc_raw.heap_malloc_aligned(heap, size, align);
  if (af_unlikely(p != NULL && mi_misaligned(p, align))) {
    mimalloc_raw.free(p);
    p = mimalloc_raw.heap_malloc_aligned(heap, mi_past_small(size), align);
  }
  return p;
}

static void *mi_heap_zalloc_aligned_checked(af_mi_heap *heap, size_t size, size_t align) {
  void *p = mimalloc_raw.heap_zalloc_aligned(heap, size, align);
  if (af_unlikely(p != NULL && mi_misaligned(p, align))) {
    mimalloc_raw.free(p);
    p = mimalloc_raw.heap_zalloc_aligned(heap, mi_past_small(size), align);
  }
  return p;
}

static void *mi_heap_realloc_aligned_checked(af_mi_heap *heap, void *ptr, size_t size, size_t align) {
  if (!mi_in_bug_range(size, align)) return mimalloc_raw.heap_realloc_aligned(heap, ptr, size, align);
  void *q = mi_heap_malloc_aligned_checked(heap, size, align);
  if (q == NULL) return NULL;
  size_t old_usable = mimalloc_raw.usable_size(ptr);
  memcpy(q, ptr, size < old_usable ? size : old_usable);
  mimalloc_raw.free(ptr);
  return q;
}

static void mimalloc_install_alignment_checks(void) {
  mimalloc_raw = mimalloc_api;
  mimalloc_api.malloc_aligned = mi_malloc_aligned_checked;
  mimalloc_api.zalloc_aligned = mi_zalloc_aligned_checked;
  mimalloc_api.realloc_aligned = mi_realloc_aligned_checked;
  mimalloc_api.heap_malloc_aligned = mi_heap_malloc_aligned_checked;
  mimalloc_api.heap_zalloc_aligned = mi_heap_zalloc_aligned_checked;
  mimalloc_api.heap_realloc_aligned = mi_heap_realloc_aligned_checked;
}

static void mimalloc_load(void) {
  syslib_load(&mimalloc_lib);
  if (mimalloc_lib.status != AF_OK) return;
  mimalloc_install_alignment_checks();
  mimalloc_check_intercepted();
}

static af_jemalloc_api jemalloc_api;
static const syslib_symbol jemalloc_symbols[] = {
  SYM(af_jemalloc_api, calloc, "calloc"),
  SYM(af_jemalloc_api, realloc, "realloc"),
  SYM(af_jemalloc_api, mallocx, "mallocx"),
  SYM(af_jemalloc_api, rallocx, "rallocx"),
  SYM(af_jemalloc_api, dallocx, "dallocx"),
  SYM(af_jemalloc_api, sallocx, "sallocx"),
  SYM(af_jemalloc_api, mallctl, "mallctl"),
};
static syslib jemalloc_lib = {
  .name = "jemalloc", .soname = "libjemalloc.so.2", .package = "libjemalloc2", .needs_libstdcxx = true,
  .symbols = jemalloc_symbols, .symbol_count = COUNT(jemalloc_symbols), .table = &jemalloc_api,
  .malloc_offset = offsetof(af_jemalloc_api, malloc), .free_offset = offsetof(af_jemalloc_api, free),
  .once = PTHREAD_ONCE_INIT,
};
static void jemalloc_load(void) { syslib_load(&jemalloc_lib); }

static af_tcmalloc_api tcmalloc_api;
static const syslib_symbol tcmalloc_symbols[] = {
  SYM(af_tcmalloc_api, calloc, "tc_calloc"),
  SYM(af_tcmalloc_api, realloc, "tc_realloc"),
  SYM(af_tcmalloc_api, memalign, "tc_memalign"),
  SYM(af_tcmalloc_api, malloc_size, "tc_malloc_size"),
};
static syslib tcmalloc_lib = {
  .name = "tcmalloc", .soname = "libtcmalloc_minimal.so.4", .package = "libtcmalloc-minimal4",
  .needs_libstdcxx = true, .symbols = tcmalloc_symbols, .symbol_count = COUNT(tcmalloc_symbols),
  .table = &tcmalloc_api, .malloc_offset = offsetof(af_tcmalloc_api, malloc),
  .free_offset = offsetof(af_tcmalloc_api, free), .once = PTHREAD_ONCE_INIT,
};
static void tcmalloc_load(void) { syslib_load(&tcmalloc_lib); }

const af_libc_api *_af_syslib_libc(af_error *err) { return syslib_get(&libc_lib, libc_load, err); }

int _af_syslib_direct(const char *library, af_direct_entry *out, af_error *err) {
  const void *table = NULL;
  syslib *lib = NULL;
  if (library != NULL && strcmp(library, "libc") == 0) table = _af_syslib_libc(err), lib = &libc_lib;
  else if (library != NULL && strcmp(library, "mimalloc") == 0) table = _af_syslib_mimalloc(err), lib = &mimalloc_lib;
  else if (library != NULL && strcmp(library, "jemalloc") == 0) table = _af_syslib_jemalloc(err), lib = &jemalloc_lib;
  else if (library != NULL && strcmp(library, "tcmalloc") == 0) table = _af_syslib_tcmalloc(err), lib = &tcmalloc_lib;
  else
    return _af_error_set(err, AF_ERR_INVALID, "unknown library '%.48s': expected libc, mimalloc, jemalloc or tcmalloc",
                         library == NULL ? "(null)" : library);
  if (table == NULL) return lib->status;
  memcpy(&out->malloc, (const char *)table + lib->malloc_offset, sizeof out->malloc);
  memcpy(&out->free, (const char *)table + lib->free_offset, sizeof out->free);
  out->handle = lib->handle;
  out->choice = _af_entry_choice(library);
  return AF_OK;
}
const af_mimalloc_api *_af_syslib_mimalloc(af_error *err) {
  return syslib_get(&mimalloc_lib, mimalloc_load, err);
}
const af_jemalloc_api *_af_syslib_jemalloc(af_error *err) {
  return syslib_get(&jemalloc_lib, jemalloc_load, err);
}
const af_tcmalloc_api *_af_syslib_tcmalloc(af_error *err) {
  return syslib_get(&tcmalloc_lib, tcmalloc_load, err);
}

/* ----------------------------------------------------------------------------
 * LeakSanitizer: tcmalloc's start-up (MallocExtension::Register) overwrites a
 * freshly allocated default instance with its own, leaking 8 bytes once per
 * process. Under ASan that `new` goes to the sanitizer, which reports it.
 * Weak, so a program with its own suppressions keeps them; not printing the
 * list of used suppressions keeps the test programs' last line theirs.
 * ------------------------------------------------------------------------- */
#if defined(__SANITIZE_ADDRESS__)
const char *__lsan_default_suppressions(void) __attribute__((weak, used));
const char *__lsan_default_suppressions(void) { return "leak:MallocExtension::Register\n"; }
const char *__lsan_default_options(void) __attribute__((weak, used));
const char *__lsan_default_options(void) { return "print_suppressions=0"; }
#endif
