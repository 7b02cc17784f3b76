/* ----------------------------------------------------------------------------
 * footprint.c: af_get_footprint, what a system library says about its memory.
 *
 * Each library is asked through its own interface, looked up in its own
 * handle (syslib.c), and only what it can answer is marked known:
 * - jemalloc: mallctl "stats.allocated/active/resident/mapped" after an
 *   "epoch" write, which refreshes jemalloc's cached statistics;
 * - mimalloc: mi_process_info: its committed memory and peak (it commits
 *   in segments of MiBs, so small blocks do not move it), and the process's
 *   peak resident set. Its "current RSS" is not used: on Linux mimalloc
 *   reports its commit there, not a reading of the resident set;
 * - tcmalloc: MallocExtension_GetNumericProperty, the C interface gperftools
 *   exports ("generic.current_allocated_bytes", "generic.heap_size",
 *   "tcmalloc.pageheap_unmapped_bytes");
 * - glibc: mallinfo2 (all arenas): uordblks + hblkhd allocated, arena +
 *   hblkhd mapped.
 * A library that lacks the entry point (an older version) reports nothing,
 * never an error: the figures are extra information.
 * ------------------------------------------------------------------------- */
#include "syslib.h"

#include <dlfcn.h>
#include <malloc.h>

/* The library behind a system allocator's name; NULL for ours. */
static const char *library_of(const char *name) {
  static const struct { const char *allocator, *library; } map[] = {
    {"libc", "libc"},         {"mimalloc", "mimalloc"}, {"mimalloc-heap", "mimalloc"},
    {"jemalloc", "jemalloc"}, {"jemalloc-arena", "jemalloc"}, {"tcmalloc", "tcmalloc"}};
  for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
    if (strcmp(map[i].allocator, name) == 0) return map[i].library;
  return NULL;
}

static void set(af_footprint *out, uint32_t bit, uint64_t *field, uint64_t value) {
  *field = value;
  out->known |= bit;
}

static void jemalloc_footprint(af_footprint *out) {
  const af_jemalloc_api *api = _af_syslib_jemalloc(NULL);
  if (api == NULL) return;
  uint64_t epoch = 1;
  size_t len = sizeof epoch;
  if (api->mallctl("epoch", &epoch, &len, &epoch, len) != 0) return;
  static const struct { const char *name; uint32_t bit; size_t offset; } figures[] = {
    {"stats.allocated", AF_FOOTPRINT_ALLOCATED, offsetof(af_footprint, allocated_bytes)},
    {"stats.active", AF_FOOTPRINT_ACTIVE, offsetof(af_footprint, active_bytes)},
    {"stats.resident", AF_FOOTPRINT_RESIDENT, offsetof(af_footprint, resident_bytes)},
    {"stats.mapped", AF_FOOTPRINT_MAPPED, offsetof(af_footprint, mapped_bytes)}};
  for (size_t i = 0; i < sizeof figures / sizeof figures[0]; i++) {
    size_t value = 0;
    len = sizeof value;
    if (api->mallctl(figures[i].name, &value, &len, NULL, 0) == 0)
      set(out, figures[i].bit, (uint64_t *)((char *)out + figures[i].offset), value);
  }
}

typedef void (*mi_process_info_fn)(size_t *elapsed_msecs, size_t *user_msecs, size_t *system_msecs,
                                   size_t *current_rss, size_t *peak_rss, size_t *current_commit,
                                   size_t *peak_commit, size_t *page_faults);

static void mimalloc_footprint(void *handle, af_footprint *out) {
  mi_process_info_fn info = (mi_process_info_fn)dlsym(handle, "mi_process_info");
  if (info == NULL) return;
  size_t elapsed, user, sys, rss, peak_rss, commit, peak_commit, faults; /* rss: see the banner */
  info(&elapsed, &user, &sys, &rss, &peak_rss, &commit, &peak_commit, &faults);
  set(out, AF_FOOTPRINT_MAPPED, &out->mapped_bytes, commit);
  set(out, AF_FOOTPRINT_PEAK_MAPPED, &out->peak_mapped_bytes, peak_commit);
  set(out, AF_FOOTPRINT_PROCESS_PEAK_RESIDENT, &out->process_peak_resident_bytes, peak_rss);
}

typedef int (*tc_property_fn)(const char *property, size_t *value);

static void tcmalloc_footprint(void *handle, af_footprint *out) {
  tc_property_fn get = (tc_property_fn)dlsym(handle, "MallocExtension_GetNumericProperty");
  if (get == NULL) return;
  size_t allocated, heap, unmapped;
  if (get("generic.current_allocated_bytes", &allocated)) set(out, AF_FOOTPRINT_ALLOCATED, &out->allocated_bytes, allocated);
  if (get("generic.heap_size", &heap)) {
    set(out, AF_FOOTPRINT_MAPPED, &out->mapped_bytes, heap);
    if (get("tcmalloc.pageheap_unmapped_bytes", &unmapped) && unmapped <= heap)
      set(out, AF_FOOTPRINT_RESIDENT, &out->resident_bytes, heap - unmapped);
  }
}

typedef struct mallinfo2 (*mallinfo2_fn)(void);

static void libc_footprint(void *handle, af_footprint *out) {
  mallinfo2_fn info = (mallinfo2_fn)dlsym(handle, "mallinfo2");
  if (info == NULL) return; /* glibc < 2.33 */
  struct mallinfo2 m = info();
  set(out, AF_FOOTPRINT_ALLOCATED, &out->allocated_bytes, m.uordblks + m.hblkhd);
  set(out, AF_FOOTPRINT_MAPPED, &out->mapped_bytes, m.arena + m.hblkhd);
}

int af_get_footprint(af_allocator *a, af_footprint *out) {
  if (a == NULL || out == NULL) return AF_ERR_INVALID;
  memset(out, 0, sizeof *out);
  const char *library = library_of(af_name(a));
  if (library == NULL || (af_caps(a) & AF_CAP_SYSTEM) == 0) return AF_ERR_UNSUPPORTED;
  af_direct_entry entry;
  if (_af_syslib_direct(library, &entry, NULL) != AF_OK) return AF_OK; /* cannot exist: a was created */
  if (strcmp(library, "jemalloc") == 0) jemalloc_footprint(out);
  else if (strcmp(library, "mimalloc") == 0) mimalloc_footprint(entry.handle, out);
  else if (strcmp(library, "tcmalloc") == 0) tcmalloc_footprint(entry.handle, out);
  else libc_footprint(entry.handle, out);
  return AF_OK;
}
