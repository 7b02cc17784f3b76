/* ----------------------------------------------------------------------------
 * allocffi launcher: run one command as our child and report what it used.
 *
 *   _launcher FD PATH ARGV0 ARGS...
 *
 * Why a separate program: Linux carries the exec-ing process's peak RSS into
 * ru_maxrss, so a command started straight from a 300 MB Python reports at
 * least 300 MB. This launcher is small and statically linked (so the
 * command's LD_PRELOAD never loads into it): it forks the command from its own
 * tiny address space, waits for it, and getrusage(RUSAGE_CHILDREN) then holds
 * the figures of the command and every descendant it waited for.
 *
 * Protocol: exactly one line is written to FD (inherited from the caller),
 *   "exec-error ERRNO\n"                      the command could not be started
 *   "done PID STATUS UTIME_US STIME_US MAXRSS_KB MINFLT MAJFLT NVCSW NIVCSW\n"
 * where PID is the command's process id and STATUS its raw wait status. The
 * launcher exits 0 after writing (1 on a usage error, 3 if fork fails).
 *
 * A SIGTERM to the launcher is passed on to the command (how a server measured
 * under it is asked to stop); the command starts with the default action.
 *
 * Invariants: FD is close-on-exec in the command; the launcher is a child
 * subreaper, so orphaned descendants are reparented to it and reaped (and
 * counted) instead of escaping to init.
 * -------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

static void write_all(int fd, const char *text, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, text, len);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return; /* the caller went away: nothing left to tell */
    text += n;
    len -= (size_t)n;
  }
}

static volatile pid_t command_pid; /* 0 until forked */

static void pass_sigterm_on(int sig) {
  if (command_pid > 0) kill(command_pid, sig);
}

static long long micros(struct timeval tv) { return (long long)tv.tv_sec * 1000000LL + tv.tv_usec; }

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s FD PATH ARGV0 [ARGS...]\n", argv[0]);
    return 1;
  }
  int fd = atoi(argv[1]);
  if (fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
    perror("allocffi launcher: report fd");
    return 1;
  }
  (void)prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);

  struct sigaction forward;
  memset(&forward, 0, sizeof forward);
  forward.sa_handler = pass_sigterm_on; /* exec resets a handled signal to its default action */
  sigemptyset(&forward.sa_mask);
  (void)sigaction(SIGTERM, &forward, NULL);

  pid_t child = fork();
  if (child > 0) command_pid = child;
  if (child < 0) {
    perror("allocffi launcher: fork");
    return 3;
  }
  if (child == 0) {
    execv(argv[2], &argv[3]);
    char line[64];
    int len = snprintf(line, sizeof line, "exec-error %d\n", errno);
    write_all(fd, line, (size_t)len);
    _exit(127);
  }

  int status = 0;
  while (waitpid(child, &status, 0) < 0) {
    if (errno != EINTR) {
      perror("allocffi launcher: waitpid");
      return 1;
    }
  }
  /* Descendants already dead were reparented to us: reap them so their usage counts. */
  int ignored;
  while (waitpid(-1, &ignored, WNOHANG) > 0) {
  }

  struct rusage ru;
  if (getrusage(RUSAGE_CHILDREN, &ru) != 0) memset(&ru, 0, sizeof ru);
  char line[256];
  int len = snprintf(line, sizeof line, "done %d %d %lld %lld %ld %ld %ld %ld %ld\n", (int)child, status,
                     micros(ru.ru_utime), micros(ru.ru_stime), ru.ru_maxrss, ru.ru_minflt, ru.ru_majflt,
                     ru.ru_nvcsw, ru.ru_nivcsw);
  write_all(fd, line, (size_t)len);
  return 0;
}
