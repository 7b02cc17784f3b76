/* ----------------------------------------------------------------------------
 * addrmap.h: address -> record maps, so that free/owns/usable_size find a
 * block's metadata in O(1) without reading the block's memory, and a foreign
 * pointer is simply "not found". Two shapes:
 *
 * af_addrmap (hashed; open addressing, linear probing) for sparse keys: the
 * large-region cache maps each region's base address to its record.
 *
 * af_radixmap (two-level radix; direct indexing) for dense keys: the slab
 * allocator maps each 64 KiB granule of a slab to the slab's record. A lookup
 * is two dependent loads and one branch, no hashing, no probing.
 *
 * af_addrmap invariants:
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

/* ----------------------------------------------------------------------------
 * af_radixmap: 64 KiB granule of an address -> record.
 *
 * An address a has granule g = a >> AF_RADIX_GRANULE_SHIFT; the root entry
 * (g >> AF_RADIX_LEAF_BITS) names a leaf, the leaf's entry (g & leaf mask)
 * the record. The root index keeps the bits of a 48-bit address only, so an
 * address at or above 2^48 aliases a lower one: a caller must check that the
 * record it gets really covers the address (the slab's range check does).
 * Ranges registered must lie below 2^48 (the insert refuses others).
 *
 * Cost, bounded: the root is 2^16 pointers (512 KiB of address space, mapped
 * once at init, zero-filled lazily by the kernel: only the pages of the root
 * entries in use become resident, usually one). Each leaf is 2^16 pointers
 * (512 KiB of address space) covering one 4 GiB window of addresses; it is
 * mapped when the first range falls in its window and kept until destroy.
 * So address space <= 512 KiB x (1 + windows holding a range), and resident
 * memory is one 4 KiB page per 512 granules (32 MiB) of registered ranges
 * plus the root page(s): mappings cluster, so usually one leaf in total.
 *
 * Invariants:
 * - root != NULL after a successful init; root[i] is NULL or a zeroed-at-map
 *   leaf; a leaf entry is NULL or the record registered for that granule;
 * - root entries outside [root_lo, root_hi] are NULL (destroy walks only
 *   that span, so it never faults in the unused root pages).
 * ------------------------------------------------------------------------- */
#define AF_RADIX_GRANULE_SHIFT 16
#define AF_RADIX_LEAF_BITS 16
#define AF_RADIX_ROOT_BITS (48 - AF_RADIX_GRANULE_SHIFT - AF_RADIX_LEAF_BITS)
#define AF_RADIX_LEAF_SHIFT (AF_RADIX_GRANULE_SHIFT + AF_RADIX_LEAF_BITS) /* address -> root index */

typedef struct af_radixmap {
  void ***root;               /* 2^ROOT_BITS leaf pointers; NULL before init / after destroy */
  size_t root_lo, root_hi;    /* span of root entries that may be non-NULL (lo > hi: none) */
} af_radixmap;

/* AF_OK, or AF_ERR_NOMEM when the root cannot be mapped (then m->root is NULL). */
int _af_radixmap_init(af_radixmap *m);
/* Unmaps the leaves and the root (not the records). */
void _af_radixmap_destroy(af_radixmap *m);
/* Sets every granule of [addr, addr + size) to value (NULL clears). addr and
   size are multiples of the granule. AF_OK, or AF_ERR_NOMEM (a leaf could not
   be mapped, or the range reaches 2^48) with no entry changed. */
int _af_radixmap_set_range(af_radixmap *m, uintptr_t addr, size_t size, void *value);

/* The record of addr's granule, or NULL. (See the aliasing note above.) */
static inline void *_af_radixmap_get(const af_radixmap *m, uintptr_t addr) {
  void **leaf = m->root[(addr >> AF_RADIX_LEAF_SHIFT) & (((uintptr_t)1 << AF_RADIX_ROOT_BITS) - 1)];
  if (af_unlikely(leaf == NULL)) return NULL;
  return leaf[(addr >> AF_RADIX_GRANULE_SHIFT) & (((uintptr_t)1 << AF_RADIX_LEAF_BITS) - 1)];
}

#endif /* AF_ADDRMAP_H */
