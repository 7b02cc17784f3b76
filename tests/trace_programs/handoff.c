/* handoff.c: with handoff_shim.so preloaded after the capture library, the
 * main thread frees a 12345-byte block while a second thread mallocs 12345
 * bytes, gets the same address and returns before the free does; main then
 * frees that second block. Calls: malloc 2, free 2, no unknown free.
 */
#include <dlfcn.h>
#include <pthread.h>
#include <stdlib.h>

static void (*wait_freed)(void);
static void (*mark_taken)(void);
static void *second;

static void *taker(void *arg) {
  (void)arg;
  wait_freed();
  second = malloc(12345);
  mark_taken(); /* after malloc returned, so after the capture logged it */
  return NULL;
}

int main(void) {
  wait_freed = (void (*)(void))dlsym(RTLD_DEFAULT, "shim_wait_freed");
  mark_taken = (void (*)(void))dlsym(RTLD_DEFAULT, "shim_taken");
  if (wait_freed == NULL || mark_taken == NULL) return 3; /* the shim is not preloaded */
  void *first = malloc(12345);
  pthread_t t;
  pthread_create(&t, NULL, taker, NULL);
  free(first);
  pthread_join(t, NULL);
  if (second != first) return 4;
  free(second);
  return 0;
}
