/* ----------------------------------------------------------------------------
 * allocffi run's preload probe: which library serves malloc in this process?
 *
 * `allocffi run` preloads this library after the allocator under test. Its
 * constructor runs in every process that starts with the preload (the command
 * and each child it execs with the environment kept) and appends one line to
 * the file named by ALLOCFFI_PROBE_FILE:
 *
 *   "probe\tPID\tPPID\tOBJECT\tEXE\n"
 *
 * OBJECT is the shared object (as the dynamic linker names it) that holds the
 * definition of `malloc` found from the global scope, dlsym(RTLD_DEFAULT), i.e.
 * the malloc every call in the process binds to; EXE is /proc/self/exe.
 * One trap: an executable that takes malloc's address (Debian's python3 does)
 * holds an undefined `malloc` whose value is its own PLT stub, and dlsym
 * returns that stub. Calls never bind to an undefined symbol, so then the
 * definition is the next one in scope: dlsym(RTLD_NEXT) from this probe,
 * which the harness puts first in LD_PRELOAD for that reason. The
 * harness compares OBJECT with the allocator it meant to load: a wrong path
 * or a process without the probe is an error, never a silent glibc row.
 *
 * A program that clears its environment before an exec (a wrapper running
 * `env -i`, a daemon that sanitises its children) starts a process without
 * the preload, which then reports nothing, and may live too briefly for the
 * sampler to see it. So the probe also wraps the exec family (execve, execv,
 * execvp, execvpe, execl, execlp, execle, posix_spawn, posix_spawnp): an exec
 * whose environment no longer preloads the probe appends
 *
 *   "unprobed	PID	PATH
"
 *
 * before going ahead, and the harness fails the run. (system() and popen()
 * pass the process's own environment on, so they keep the preload unless the
 * program removed it from environ; the sampler covers what lives >= 10 ms.)
 *
 * Invariants: one write(2) per line on an O_APPEND file, so lines of
 * concurrent processes never interleave; no Python, no allocation of its own
 * beyond what dlsym/dladdr do; nothing happens without ALLOCFFI_PROBE_FILE.
 *
 * Its own memory: the probe runs in every measured process, so what it
 * touches shows in that process's max RSS. No stdio: snprintf alone touched
 * ~0.3 MiB of libc's formatting code and data in /bin/true (1.0 MiB plain,
 * 1.35 MiB probed); lines are built by the small appenders below. What is
 * left (the library's few pages, dlsym/dladdr's walk of the symbol tables)
 * is within the run-to-run spread of /bin/true's max RSS (see docs/methodology.md).
 * -------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static char report_path[PATH_MAX]; /* ALLOCFFI_PROBE_FILE at start; "" when not probing */
static char probe_path[PATH_MAX];  /* this library, as LD_PRELOAD names it */

/* The wrapped exec functions, resolved once at start: a vfork child (gcc's driver) then calls
 * no dlsym of its own. They are resolved late only if an exec runs before our constructor. */
typedef int (*execve_fn)(const char *, char *const[], char *const[]);
typedef int (*execv_fn)(const char *, char *const[]);
typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *, const posix_spawnattr_t *,
                        char *const[], char *const[]);
static execve_fn real_execve, real_execvpe;
static execv_fn real_execv, real_execvp;
static spawn_fn real_posix_spawn, real_posix_spawnp;

static void resolve_exec_family(void) {
  real_execve = (execve_fn)dlsym(RTLD_NEXT, "execve");
  real_execvpe = (execve_fn)dlsym(RTLD_NEXT, "execvpe");
  real_execv = (execv_fn)dlsym(RTLD_NEXT, "execv");
  real_execvp = (execv_fn)dlsym(RTLD_NEXT, "execvp");
  real_posix_spawn = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawn");
  real_posix_spawnp = (spawn_fn)dlsym(RTLD_NEXT, "posix_spawnp");
}
#define REAL(name) (real_##name != NULL ? real_##name : (resolve_exec_family(), real_##name))

/* A line under construction: appends stop at the end of the buffer (a cut line is still one line). */
typedef struct line_s {
  char text[2 * PATH_MAX + 64];
  size_t len; /* <= sizeof text - 1: the last byte is kept for the newline */
} line_t;

static void put_text(line_t *line, const char *text) {
  while (*text != '\0' && line->len < sizeof line->text - 1) line->text[line->len++] = *text++;
}

static void put_int(line_t *line, long value) {
  char digits[24];
  int n = 0;
  unsigned long v = value < 0 ? 0UL - (unsigned long)value : (unsigned long)value;
  do digits[n++] = (char)('0' + v % 10); while ((v /= 10) != 0);
  if (value < 0) digits[n++] = '-';
  while (n > 0 && line->len < sizeof line->text - 1) line->text[line->len++] = digits[--n];
}

static void append_line(line_t *line) {
  if (report_path[0] == '\0') return;
  line->text[line->len++] = '\n';
  int fd = open(report_path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return; /* the harness sees the missing line and fails the run */
  (void)!write(fd, line->text, line->len);
  close(fd);
}

__attribute__((constructor)) static void allocffi_probe_report(void) {
  resolve_exec_family();
  const char *report = getenv("ALLOCFFI_PROBE_FILE");
  if (report == NULL || report[0] == '\0' || strlen(report) >= sizeof report_path) return;
  strcpy(report_path, report);
  Dl_info self;
  if (dladdr((void *)allocffi_probe_report, &self) != 0 && self.dli_fname != NULL &&
      strlen(self.dli_fname) < sizeof probe_path)
    strcpy(probe_path, self.dli_fname);

  const char *object = "?";
  Dl_info info;
  const ElfW(Sym) *symbol = NULL;
  void *fn = dlsym(RTLD_DEFAULT, "malloc");
  if (fn != NULL && dladdr1(fn, &info, (void **)&symbol, RTLD_DL_SYMENT) != 0 && symbol != NULL &&
      symbol->st_shndx == SHN_UNDEF)
    fn = dlsym(RTLD_NEXT, "malloc"); /* a PLT stub, not a definition: see above */
  if (fn != NULL && dladdr(fn, &info) != 0 && info.dli_fname != NULL) object = info.dli_fname;

  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  exe[n > 0 ? n : 0] = '\0';

  line_t line;
  line.len = 0;
  put_text(&line, "probe\t");
  put_int(&line, getpid());
  put_text(&line, "\t");
  put_int(&line, getppid());
  put_text(&line, "\t");
  put_text(&line, object);
  put_text(&line, "\t");
  put_text(&line, exe);
  append_line(&line);
}

/* ---------------------------------------------------------------------------
 * The exec family: note an exec whose environment drops the probe
 * ------------------------------------------------------------------------- */

static int keeps_probe(char *const envp[]) {
  if (probe_path[0] == '\0' || envp == NULL) return envp != NULL;
  int preload = 0, report = 0;
  for (char *const *e = envp; *e != NULL; e++) {
    if (strncmp(*e, "LD_PRELOAD=", 11) == 0 && strstr(*e, probe_path) != NULL) preload = 1;
    if (strncmp(*e, "ALLOCFFI_PROBE_FILE=", 20) == 0 && strcmp(*e + 20, report_path) == 0) report = 1;
  }
  return preload && report;
}

static void check_exec(const char *path, char *const envp[]) {
  if (report_path[0] == '\0' || keeps_probe(envp)) return;
  line_t line;
  line.len = 0;
  put_text(&line, "unprobed\t");
  put_int(&line, getpid());
  put_text(&line, "\t");
  put_text(&line, path ? path : "?");
  append_line(&line);
}

int execve(const char *path, char *const argv[], char *const envp[]) {
  check_exec(path, envp);
  return REAL(execve)(path, argv, envp);
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
  check_exec(file, envp);
  return REAL(execvpe)(file, argv, envp);
}

int execv(const char *path, char *const argv[]) {
  check_exec(path, environ);
  return REAL(execv)(path, argv);
}

int execvp(const char *file, char *const argv[]) {
  check_exec(file, environ);
  return REAL(execvp)(file, argv);
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  check_exec(path, envp);
  return REAL(posix_spawn)(pid, path, actions, attr, argv, envp);
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *actions,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  check_exec(file, envp);
  return REAL(posix_spawnp)(pid, file, actions, attr, argv, envp);
}

/* The list forms (execl, execlp, execle), through the execve and execvpe above. */
#include "exec_list.h"
