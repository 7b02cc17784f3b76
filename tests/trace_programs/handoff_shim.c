/* handoff_shim.c: a malloc/free shim, preloaded after the capture library,
 * that makes one address change threads at the worst moment: the free of
 * the first 12345-byte block does not return until another thread's malloc
 * has got that very address back and returned (handoff.c drives it). A
 * recorder that logged a free after the real free would log it after that
 * malloc: the trace would then show the address allocated while still live.
 */
#include <stdatomic.h>
#include <stddef.h>

extern void *__libc_malloc(size_t);
extern void __libc_free(void *);

#define MARKED_SIZE 12345

static void *marked;                 /* the first MARKED_SIZE block */
static _Atomic(void *) handed_over;  /* set by its free, taken by the next MARKED_SIZE malloc */
static atomic_int freed, taken;

void *malloc(size_t size) {
  if (size == MARKED_SIZE) {
    void *p = atomic_exchange(&handed_over, NULL);
    if (p != NULL) return p;
    p = __libc_malloc(size);
    if (marked == NULL) marked = p;
    return p;
  }
  return __libc_malloc(size);
}

void free(void *p) {
  if (p != NULL && p == marked) {
    marked = NULL;
    atomic_store(&handed_over, p);
    atomic_store(&freed, 1);
    while (!atomic_load(&taken)) {
    }
    return;
  }
  __libc_free(p);
}

/* For handoff.c, through dlsym. */
void shim_wait_freed(void) {
  while (!atomic_load(&freed)) {
  }
}
void shim_taken(void) { atomic_store(&taken, 1); }
