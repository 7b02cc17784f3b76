/* ----------------------------------------------------------------------------
 * entry_points.h: every way of calling each system library for a small
 * block with alignment <= 16, as the candidates for _af_entry_points
 * (syslib.c), with a direct loop (engine/direct.h) for each call shape.
 *
 * Shared by the measurement (tools/entry_points.c, `make entry-points`) and
 * its test (tests/test_entry_points.c): the table in syslib.c names the
 * winner, this file names the rivals it was measured against.
 * ------------------------------------------------------------------------- */
#ifndef AF_TOOLS_ENTRY_POINTS_H
#define AF_TOOLS_ENTRY_POINTS_H

#include "engine/direct.h"

typedef void *(*ep_flags_alloc)(size_t size, int flags);         /* mallocx */
typedef void *(*ep_align_first)(size_t align, size_t size);      /* aligned_alloc, tc_memalign */
typedef void *(*ep_align_last)(size_t size, size_t align);       /* mi_malloc_aligned */
typedef void (*ep_flags_free)(void *ptr, int flags);             /* dallocx */
typedef void (*ep_sized_free)(void *ptr, size_t size);           /* mi_free_size, tc_free_sized */
typedef void (*ep_sized_flags_free)(void *ptr, size_t size, int flags); /* sdallocx */

DIRECT_PAIRS(ep_plain_plain, direct_malloc_fn, alloc_fn(size), direct_free_fn, free_fn(p))
DIRECT_PAIRS(ep_plain_sized, direct_malloc_fn, alloc_fn(size), ep_sized_free, free_fn(p, size))
DIRECT_PAIRS(ep_plain_sized_flags, direct_malloc_fn, alloc_fn(size), ep_sized_flags_free, free_fn(p, size, 0))
DIRECT_PAIRS(ep_flags_flags, ep_flags_alloc, alloc_fn(size, 0), ep_flags_free, free_fn(p, 0))
DIRECT_PAIRS(ep_flags_sized_flags, ep_flags_alloc, alloc_fn(size, 0), ep_sized_flags_free, free_fn(p, size, 0))
DIRECT_PAIRS(ep_align_first_plain, ep_align_first, alloc_fn(16, size), direct_free_fn, free_fn(p))
DIRECT_PAIRS(ep_align_last_plain, ep_align_last, alloc_fn(size, 16), direct_free_fn, free_fn(p))

typedef uint64_t (*ep_loop)(void *alloc_sym, void *free_sym, size_t size, uint64_t n, direct_state *st);

/* One candidate: symbols looked up in the library's own handle. */
typedef struct ep_candidate {
  const char *library;        /* a row of _af_entry_points */
  const char *alloc;
  const char *free;
  ep_loop loop;               /* the loop for this pair's call shape */
} ep_candidate;

static const ep_candidate ep_candidates[] = {
  {"libc", "malloc", "free", ep_plain_plain},
  {"libc", "aligned_alloc", "free", ep_align_first_plain},
  {"mimalloc", "mi_malloc", "mi_free", ep_plain_plain},
  {"mimalloc", "mi_malloc", "mi_free_size", ep_plain_sized},
  {"mimalloc", "mi_malloc_small", "mi_free", ep_plain_plain},  /* sizes <= 1 KiB only */
  {"mimalloc", "malloc", "free", ep_plain_plain},              /* mimalloc's exported aliases */
  {"mimalloc", "mi_malloc_aligned", "mi_free", ep_align_last_plain},
  {"jemalloc", "malloc", "free", ep_plain_plain},
  {"jemalloc", "malloc", "sdallocx", ep_plain_sized_flags},
  {"jemalloc", "mallocx", "dallocx", ep_flags_flags},
  {"jemalloc", "mallocx", "sdallocx", ep_flags_sized_flags},
  {"tcmalloc", "tc_malloc", "tc_free", ep_plain_plain},
  {"tcmalloc", "tc_malloc", "tc_free_sized", ep_plain_sized},
  {"tcmalloc", "tc_malloc_skip_new_handler", "tc_free", ep_plain_plain},
  {"tcmalloc", "malloc", "free", ep_plain_plain},
};
#define EP_CANDIDATE_COUNT (sizeof ep_candidates / sizeof ep_candidates[0])

#endif /* AF_TOOLS_ENTRY_POINTS_H */
