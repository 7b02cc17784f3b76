/* known_sequence.c: a program whose allocation calls are known exactly, for
 * the capture tests (tests/test_trace_capture.py). With no argument it makes,
 * on the main thread:
 *   malloc x 11 (10 x 100 B, then 1 B), calloc x 5 (4 x 25 B), realloc x 4
 *   (NULL -> 64 B, 64 -> 4000 B, 4000 -> 0 B freeing it, a failing huge
 *   one), free x 23 (one free(NULL)), posix_memalign x 2 (64-aligned 256 B;
 *   one EINVAL),
 *   aligned_alloc x 1 (4096, 8192 B), memalign x 1 (128, 300 B), valloc x 1
 *   (5000 B), pvalloc x 1 (5000 B), reallocarray x 1 (NULL, 10 x 10 B)
 * and on a second thread: malloc x 20 (48 B), of which it frees 10, and
 * frees the main thread's 10 mallocs (cross-thread); the main thread then
 * frees the second thread's other 10 (cross-thread again). In all: malloc 31,
 * calloc 5, realloc 4 (1 failed), free 43, posix_memalign 2 (1 failed),
 * aligned_alloc, memalign, valloc, pvalloc and reallocarray 1 each.
 * Peak live bytes: 10*100 + 5*100 + 4000 + 256 + 8192 + 300 + 5000 + 5000
 * + 100 + 20*48 (every block is live at once just before the second thread
 * starts freeing) = 25308. Build it with -O0 -fno-builtin so the compiler
 * keeps every call.
 * Arguments: "fork" mallocs one 777-byte block, then forks a child that
 * makes malloc x 3 (32 B), frees them and frees the parent's block (an
 * unknown free in the child's trace); "fork exec PATH" execs PATH (with no
 * argument) from that child instead.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void *mains[10];
static void *theirs[20];

static void *second_thread(void *arg) {
  (void)arg;
  for (int i = 0; i < 20; i++) theirs[i] = malloc(48);
  for (int i = 0; i < 10; i++) free(theirs[i]);
  for (int i = 0; i < 10; i++) free(mains[i]);
  return NULL;
}

/* Keeps the compiler from pairing or dropping the calls. */
static void *volatile sink;

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "fork") == 0) {
    void *inherited = malloc(777);
    pid_t pid = fork();
    if (pid == 0) {
      if (argc > 3 && strcmp(argv[2], "exec") == 0) {
        execl(argv[3], argv[3], (char *)NULL);
        _exit(127);
      }
      void *p[3];
      for (int i = 0; i < 3; i++) p[i] = malloc(32);
      for (int i = 0; i < 3; i++) free(p[i]);
      free(inherited);
      exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    free(inherited);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
  }
  void *c[5];
  for (int i = 0; i < 10; i++) mains[i] = malloc(100);
  for (int i = 0; i < 5; i++) c[i] = calloc(4, 25);
  void *r = realloc(NULL, 64);
  r = realloc(r, 4000);
  void *pm = NULL, *bad = NULL;
  if (posix_memalign(&pm, 64, 256) != 0) return 2;
  if (posix_memalign(&bad, 3, 256) != EINVAL) return 3;
  void *aa = aligned_alloc(4096, 8192);
  void *ma = memalign(128, 300);
  void *va = valloc(5000);
  void *pv = pvalloc(5000);
  void *ra = reallocarray(NULL, 10, 10);
  pthread_t t;
  pthread_create(&t, NULL, second_thread, NULL);
  pthread_join(t, NULL);
  for (int i = 10; i < 20; i++) free(theirs[i]);
  sink = realloc(r, 0); /* frees r (glibc), returns NULL */
  void *keep = malloc(1);
  sink = realloc(keep, (size_t)1 << 62); /* fails: keep stays */
  free(keep);
  for (int i = 0; i < 5; i++) free(c[i]);
  free(pm);
  free(aa);
  free(ma);
  free(va);
  free(pv);
  free(ra);
  free(NULL);
  return 0;
}
