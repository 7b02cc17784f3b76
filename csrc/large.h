/* ----------------------------------------------------------------------------
 * large.h: what the slab allocator needs from the large-region cache it keeps
 * for requests above its largest class, beyond the public vtable.
 * ------------------------------------------------------------------------- */
#ifndef AF_LARGE_H
#define AF_LARGE_H

#include "af_internal.h"

/* Bytes currently mapped (live + cached regions). `a` comes from af_large_new. */
size_t _af_large_mapped_bytes(af_allocator *a);

/* Replaces the byte limit (0: none); the next mapping obeys it (the cache is
   evicted before a request fails). `a` comes from af_large_new. */
void _af_large_set_byte_limit(af_allocator *a, size_t byte_limit);

#endif /* AF_LARGE_H */
