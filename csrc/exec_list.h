/* ----------------------------------------------------------------------------
 * exec_list.h: execl, execlp and execle for the libraries allocffi preloads
 * into other programs (csrc/run/probe.c, csrc/trace/capture.c).
 *
 * Both libraries interpose execve and execvpe. The list forms gather their
 * arguments into an argv on the stack (nothing is allocated before an exec)
 * and go through those two, so each library sees every exec exactly once.
 *
 * Include it in one file per library, after execve and execvpe are defined,
 * with AF_EXEC_EXPORT defined as the visibility the three functions need.
 * ------------------------------------------------------------------------- */
#ifndef AF_EXEC_LIST_H
#define AF_EXEC_LIST_H

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <unistd.h>

#ifndef AF_EXEC_EXPORT
#define AF_EXEC_EXPORT
#endif

extern char **environ;

/* Arguments an exec may take here, the terminating NULL included. */
#define AF_EXEC_MAX_ARGS 4096

/* argv from arg0 and the variable arguments up to and including their NULL;
   with envp, also the pointer after the NULL (execle). -1 with errno E2BIG
   when they do not fit. */
static int af_exec_gather(const char *arg0, va_list *ap, char **argv, char *const **envp) {
  size_t n = 0;
  argv[n++] = (char *)arg0;
  while (argv[n - 1] != NULL) {
    if (n == AF_EXEC_MAX_ARGS) {
      errno = E2BIG;
      return -1;
    }
    argv[n++] = va_arg(*ap, char *);
  }
  if (envp != NULL) *envp = va_arg(*ap, char *const *);
  return 0;
}

AF_EXEC_EXPORT int execl(const char *path, const char *arg0, ...) {
  char *argv[AF_EXEC_MAX_ARGS];
  va_list ap;
  va_start(ap, arg0);
  int status = af_exec_gather(arg0, &ap, argv, NULL);
  va_end(ap);
  return status == 0 ? execve(path, argv, environ) : -1;
}

AF_EXEC_EXPORT int execlp(const char *file, const char *arg0, ...) {
  char *argv[AF_EXEC_MAX_ARGS];
  va_list ap;
  va_start(ap, arg0);
  int status = af_exec_gather(arg0, &ap, argv, NULL);
  va_end(ap);
  return status == 0 ? execvpe(file, argv, environ) : -1;
}

AF_EXEC_EXPORT int execle(const char *path, const char *arg0, ...) {
  char *argv[AF_EXEC_MAX_ARGS];
  char *const *envp = NULL;
  va_list ap;
  va_start(ap, arg0);
  int status = af_exec_gather(arg0, &ap, argv, &envp);
  va_end(ap);
  return status == 0 ? execve(path, argv, envp) : -1;
}

#endif /* AF_EXEC_LIST_H */
