/* ----------------------------------------------------------------------------
 * addrmap.c: growth, insertion and deletion of the address maps (addrmap.h).
 * ------------------------------------------------------------------------- */
#include "addrmap.h"

#include "os.h"

/* Two empty slots: lookups in a map that never had an insert end here. */
static af_addrmap_slot empty_table[2];

void _af_addrmap_init(af_addrmap *m) {
  m->slots = empty_table;
  m->mask = 1;
  m->shift = 63;
  m->count = 0;
}

static size_t table_bytes(size_t slots) {
  return af_align_up(slots * sizeof(af_addrmap_slot), _af_os_page_size());
}

void _af_addrmap_destroy(af_addrmap *m) {
  if (m->slots != empty_table) _af_os_unmap(m->slots, table_bytes(m->mask + 1));
  _af_addrmap_init(m);
}

static void place(af_addrmap *m, uintptr_t stored, void *value) {
  size_t i = _af_addrmap_index(m, stored);
  while (m->slots[i].key != 0) i = (i + 1) & m->mask;
  m->slots[i].key = stored;
  m->slots[i].value = value;
}

static int grow(af_addrmap *m) {
  size_t old_slots = m->mask + 1;
  size_t slots = m->slots == empty_table ? 256 : old_slots * 2;
  void *mem = NULL;
  int status = _af_os_map(table_bytes(slots), _af_os_page_size(), &mem);
  if (status != AF_OK) return status;
  af_addrmap old = *m;
  m->slots = mem; /* zeroed by the OS: all empty */
  m->mask = slots - 1;
  m->shift = 64 - af_log2(slots);
  for (size_t i = 0; i < old_slots; i++) {
    if (old.slots[i].key != 0) place(m, old.slots[i].key, old.slots[i].value);
  }
  if (old.slots != empty_table) _af_os_unmap(old.slots, table_bytes(old_slots));
  return AF_OK;
}

int _af_addrmap_insert(af_addrmap *m, uintptr_t key, void *value) {
  af_assert(value != NULL && key != UINTPTR_MAX);
  af_assert(_af_addrmap_get(m, key) == NULL);
  if (m->slots == empty_table || (m->count + 1) * 2 > m->mask + 1) {
    int status = grow(m);
    if (status != AF_OK) return status;
  }
  place(m, key + 1, value);
  m->count++;
  return AF_OK;
}

void _af_addrmap_remove(af_addrmap *m, uintptr_t key) {
  uintptr_t stored = key + 1;
  size_t i = _af_addrmap_index(m, stored);
  while (m->slots[i].key != stored) {
    if (m->slots[i].key == 0) return;
    i = (i + 1) & m->mask;
  }
  /* Backward-shift deletion: move later entries of the cluster into the
     hole when their home slot is not strictly between the hole and them. */
  size_t hole = i;
  for (size_t j = (hole + 1) & m->mask; m->slots[j].key != 0; j = (j + 1) & m->mask) {
    size_t home = _af_addrmap_index(m, m->slots[j].key);
    bool home_between = hole <= j ? (hole < home && home <= j) : (hole < home || home <= j);
    if (!home_between) {
      m->slots[hole] = m->slots[j];
      hole = j;
    }
  }
  m->slots[hole].key = 0;
  m->slots[hole].value = NULL;
  m->count--;
}

/* ----------------------------------------------------------------------------
 * af_radixmap
 * ------------------------------------------------------------------------- */

#define ROOT_COUNT ((size_t)1 << AF_RADIX_ROOT_BITS)
#define LEAF_COUNT ((size_t)1 << AF_RADIX_LEAF_BITS)
#define LEAF_MASK (LEAF_COUNT - 1)

int _af_radixmap_init(af_radixmap *m) {
  void *mem = NULL;
  m->root = NULL;
  m->root_lo = ROOT_COUNT;
  m->root_hi = 0;
  int status = _af_os_map(ROOT_COUNT * sizeof(void **), _af_os_page_size(), &mem);
  if (status != AF_OK) return status;
  m->root = mem; /* zeroed by the OS: no leaves */
  return AF_OK;
}

void _af_radixmap_destroy(af_radixmap *m) {
  if (m->root == NULL) return;
  for (size_t i = m->root_lo; i <= m->root_hi && i < ROOT_COUNT; i++)
    if (m->root[i] != NULL) _af_os_unmap(m->root[i], LEAF_COUNT * sizeof(void *));
  _af_os_unmap(m->root, ROOT_COUNT * sizeof(void **));
  m->root = NULL;
}

int _af_radixmap_set_range(af_radixmap *m, uintptr_t addr, size_t size, void *value) {
  af_assert(size > 0 && addr % ((uintptr_t)1 << AF_RADIX_GRANULE_SHIFT) == 0 &&
            size % ((size_t)1 << AF_RADIX_GRANULE_SHIFT) == 0);
  uintptr_t first = addr >> AF_RADIX_GRANULE_SHIFT, last = (addr + size - 1) >> AF_RADIX_GRANULE_SHIFT;
  if (addr + size < addr || (last >> AF_RADIX_LEAF_BITS) >= ROOT_COUNT) return AF_ERR_NOMEM; /* would alias */
  /* Every leaf first, so a failure changes no entry (a leaf mapped before the
     failure just stays, empty, until destroy). */
  for (uintptr_t r = first >> AF_RADIX_LEAF_BITS; r <= last >> AF_RADIX_LEAF_BITS; r++) {
    if (m->root[r] != NULL) continue;
    if (value == NULL) continue; /* clearing: nothing to clear there */
    void *leaf = NULL;
    int status = _af_os_map(LEAF_COUNT * sizeof(void *), _af_os_page_size(), &leaf);
    if (status != AF_OK) return status;
    m->root[r] = leaf;
    if (r < m->root_lo) m->root_lo = r;
    if (r > m->root_hi) m->root_hi = r;
  }
  for (uintptr_t g = first; g <= last; g++) {
    void **leaf = m->root[g >> AF_RADIX_LEAF_BITS];
    if (leaf != NULL) leaf[g & LEAF_MASK] = value;
  }
  return AF_OK;
}
