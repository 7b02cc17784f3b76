/* ----------------------------------------------------------------------------
 * registry.c: every allocator by name, with default options.
 *
 * The table below is the single list of names: af_create, af_available, the
 * "unknown name" message and, through af_registry_name, Python all read it.
 * ------------------------------------------------------------------------- */
#include "syslib.h"

typedef struct registry_entry {
  const char *name;
  af_allocator *(*create)(af_error *err);
  int (*available)(af_error *err); /* NULL: always available */
  int kind;                        /* AF_KIND_* */
} registry_entry;

static af_allocator *create_bump(af_error *err) { return af_bump_new(NULL, err); }
static af_allocator *create_slab(af_error *err) { return af_slab_new(NULL, err); }
static af_allocator *create_large(af_error *err) { return af_large_new(NULL, err); }
static af_allocator *create_libc(af_error *err) { return af_system_new("libc", err); }
static af_allocator *create_mimalloc(af_error *err) { return af_system_new("mimalloc", err); }
static af_allocator *create_jemalloc(af_error *err) { return af_system_new("jemalloc", err); }
static af_allocator *create_tcmalloc(af_error *err) { return af_system_new("tcmalloc", err); }
static af_allocator *create_mimalloc_heap(af_error *err) { return af_system_new("mimalloc-heap", err); }
static af_allocator *create_jemalloc_arena(af_error *err) { return af_system_new("jemalloc-arena", err); }

/* Loading the library is all that can fail before creation. */
static int have_libc(af_error *err) { return _af_syslib_libc(err) ? AF_OK : AF_ERR_UNAVAILABLE; }
static int have_mimalloc(af_error *err) { return _af_syslib_mimalloc(err) ? AF_OK : AF_ERR_UNAVAILABLE; }
static int have_jemalloc(af_error *err) { return _af_syslib_jemalloc(err) ? AF_OK : AF_ERR_UNAVAILABLE; }
static int have_tcmalloc(af_error *err) { return _af_syslib_tcmalloc(err) ? AF_OK : AF_ERR_UNAVAILABLE; }

static const registry_entry registry[] = {
  {"bump", create_bump, NULL, AF_KIND_OURS},
  {"slab", create_slab, NULL, AF_KIND_OURS},
  {"large", create_large, NULL, AF_KIND_OURS},
  {"libc", create_libc, have_libc, AF_KIND_SYSTEM},
  {"mimalloc", create_mimalloc, have_mimalloc, AF_KIND_SYSTEM},
  {"jemalloc", create_jemalloc, have_jemalloc, AF_KIND_SYSTEM},
  {"tcmalloc", create_tcmalloc, have_tcmalloc, AF_KIND_SYSTEM},
  {"mimalloc-heap", create_mimalloc_heap, have_mimalloc, AF_KIND_SYSTEM},
  {"jemalloc-arena", create_jemalloc_arena, have_jemalloc, AF_KIND_SYSTEM},
  {"mmap", af_mmap_new, NULL, AF_KIND_BASELINE},
  {"null", af_null_new, NULL, AF_KIND_BASELINE},
};
#define REGISTRY_SIZE (sizeof registry / sizeof registry[0])

static const registry_entry *registry_find(const char *name, af_error *err) {
  if (name != NULL) {
    for (size_t i = 0; i < REGISTRY_SIZE; i++)
      if (strcmp(registry[i].name, name) == 0) return &registry[i];
  }
  char names[160] = "";
  for (size_t i = 0; i < REGISTRY_SIZE; i++) {
    size_t used = strlen(names);
    snprintf(names + used, sizeof names - used, "%s%s", i == 0 ? "" : ", ", registry[i].name);
  }
  _af_error_set(err, AF_ERR_INVALID, "unknown allocator '%.48s': valid names are %s",
                name == NULL ? "(null)" : name, names);
  return NULL;
}

af_allocator *af_create(const char *name, af_error *err) {
  const registry_entry *entry = registry_find(name, err);
  return entry == NULL ? NULL : entry->create(err);
}

int af_available(const char *name, af_error *err) {
  const registry_entry *entry = registry_find(name, err);
  if (entry == NULL) return AF_ERR_INVALID;
  if (entry->available != NULL) return entry->available(err);
  _af_error_set(err, AF_OK, "%s is built in", entry->name);
  return AF_OK;
}

size_t af_registry_count(void) { return REGISTRY_SIZE; }

const char *af_registry_name(size_t index) { return index < REGISTRY_SIZE ? registry[index].name : NULL; }

int af_registry_kind(size_t index) { return index < REGISTRY_SIZE ? registry[index].kind : -1; }
