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
 * Invariants: one write(2) per line on an O_APPEND file, so lines of
 * concurrent processes never interleave; no Python, no allocation of its own
 * beyond what dlsym/dladdr do; nothing happens without ALLOCFFI_PROBE_FILE.
 * -------------------------------------------------------------------------- */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <limits.h>
#include <link.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

__attribute__((constructor)) static void allocffi_probe_report(void) {
  const char *report = getenv("ALLOCFFI_PROBE_FILE");
  if (report == NULL || report[0] == '\0') return;

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

  char line[2 * PATH_MAX + 64];
  int len = snprintf(line, sizeof line, "probe\t%d\t%d\t%s\t%s\n", (int)getpid(), (int)getppid(), object, exe);
  if (len <= 0) return;
  if ((size_t)len >= sizeof line) len = (int)sizeof line - 1;
  int fd = open(report, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) return; /* the harness sees the missing line and fails the run */
  (void)!write(fd, line, (size_t)len);
  close(fd);
}
