/* ----------------------------------------------------------------------------
 * addrmap.h: an address -> record map (open addressing, linear probing).
 *
 * The large-region cache maps each region's base address to its record and
 * the slab allocator maps each 64 KiB granule of a slab to the slab's record,
 * so free/owns/usable_size find a block's metadata in O(1) without reading the
 * block's memory, and a foreign pointer is simply "not found".
 *
 * Invariants:
 * - keys are stored as key + 1 so that 0 marks an empty slot (key
 *   UINTPTR_MAX is therefore not allowed; addresses and granule numbers never
 *   reach it);
 * - the table has a power-of-two number of slots and is at most half full, so
 *   a probe sequence always ends at an empty slot and stays short;
 * - deletion shifts the following entries back (no tombstones).
 * The table memory comes from the OS layer (zeroed pages).
 * ------------------------------------------------------------------------- */
#ifndef AF_ADDRMAP_H
#define AF_ADDRMAP_H

#include "af_internal.h"

typedef struct af_addrmap_slot {
  uintptr_t key;              /* stored key + 1; 0: empty */
  void *value;                /* non-NULL when key != 0 */
} af_addrmap_slot;

typedef struct af_addrmap {
  af_addrmap_slot *slots;     /* never NULL: a static empty table before the first insert */
  size_t mask;                /* slot count - 1 */
  unsigned shift;             /* 64 - log2(slot count): hash -> index */
  size_t count;               /* used slots, <= (mask + 1) / 2 */
} af_addrmap;

void _af_addrmap_init(af_addrmap *m);
/* Frees the table (not the records). */
void _af_addrmap_destroy(af_addrmap *m);
/* AF_OK, or AF_ERR_NOMEM when the table could not grow (map unchanged).
   key must not be present already. */
int _af_addrmap_insert(af_addrmap *m, uintptr_t key, void *value);
/* Removes key if present. */
void _af_addrmap_remove(af_addrmap *m, uintptr_t key);

static inline size_t _af_addrmap_index(const af_addrmap *m, uintptr_t stored) {
  /* Fibonacci hashing: the multiply spreads the low bits that distinguish
     page-aligned addresses into the top bits we keep. */
  return (size_t)(((uint64_t)stored * 0x9E3779B97F4A7C15ull) >> m->shift);
}

/* The value stored under key, or NULL. */
static inline void *_af_addrmap_get(const af_addrmap *m, uintptr_t key) {
  uintptr_t stored = key + 1;
  size_t i = _af_addrmap_index(m, stored);
  for (;;) {
    const af_addrmap_slot *s = &m->slots[i];
    if (af_likely(s->key == stored)) return s->value;
    if (s->key == 0) return NULL;
    i = (i + 1) & m->mask;
  }
}

#endif /* AF_ADDRMAP_H */
