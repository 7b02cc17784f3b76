/* ----------------------------------------------------------------------------
 * os.c: the operating-system layer (contract in os.h). The only file of
 * allocffi that calls mmap, munmap or madvise.
 *
 * Invariants: every size passed in is a multiple of the page size; every
 * function reports failure as an af_status and never prints or aborts.
 * ------------------------------------------------------------------------- */
#include "os.h"

#include "af_internal.h"

#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

size_t _af_os_page_size(void) {
  static atomic_size_t cached; /* 0 until the first call; every thread computes the same value */
  size_t page = atomic_load_explicit(&cached, memory_order_relaxed);
  if (af_unlikely(page == 0)) {
    long v = sysconf(_SC_PAGESIZE);
    page = v > 0 ? (size_t)v : 4096;
    atomic_store_explicit(&cached, page, memory_order_relaxed);
  }
  return page;
}

static void *map_anonymous(size_t size) {
  void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  return p == MAP_FAILED ? NULL : p;
}

int _af_os_map(size_t size, size_t align, void **out) {
  size_t page = _af_os_page_size();
  af_assert(size > 0 && size % page == 0);
  af_assert(af_is_pow2(align));
  *out = NULL;
  if (align <= page) {
    void *p = map_anonymous(size);
    if (p == NULL) return AF_ERR_NOMEM;
    *out = p;
    return AF_OK;
  }
  /* The kernel only promises page alignment: map align - page bytes more,
     then give back the misaligned head and the unused tail. */
  size_t padded = size + align - page;
  if (padded < size) return AF_ERR_NOMEM;
  char *raw = map_anonymous(padded);
  if (raw == NULL) return AF_ERR_NOMEM;
  char *aligned = (char *)af_align_up_ptr((uintptr_t)raw, align);
  size_t head = (size_t)(aligned - raw);
  size_t tail = padded - head - size;
  if (head > 0) munmap(raw, head);
  if (tail > 0) munmap(aligned + size, tail);
  *out = aligned;
  return AF_OK;
}

int _af_os_unmap(void *addr, size_t size) {
  af_assert(size % _af_os_page_size() == 0);
  return munmap(addr, size) == 0 ? AF_OK : AF_ERR_INVALID;
}

int _af_os_purge(void *addr, size_t size) {
  af_assert(size % _af_os_page_size() == 0);
  /* MADV_DONTNEED, not MADV_FREE: on a private anonymous mapping it drops the
     pages at once and guarantees they read back as zero. Callers rely on that
     to skip zeroing purged memory (calloc); MADV_FREE would leave the old
     contents readable until the kernel gets around to reclaiming them. */
  return madvise(addr, size, MADV_DONTNEED) == 0 ? AF_OK : AF_ERR_INVALID;
}

/* Reads a small /proc file into buf as a C string; false if it cannot. */
static bool read_proc_file(const char *path, char *buf, size_t size) {
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  ssize_t n = read(fd, buf, size - 1);
  close(fd);
  if (n <= 0) return false;
  buf[n] = '\0';
  return true;
}

size_t _af_os_rss_bytes(void) {
  char buf[128];
  if (!read_proc_file("/proc/self/statm", buf, sizeof buf)) return 0;
  /* Fields: size resident shared text lib data dt, in pages. */
  char *end = NULL;
  strtoull(buf, &end, 10);
  if (end == buf) return 0;
  char *field = end;
  unsigned long long resident = strtoull(field, &end, 10);
  if (end == field) return 0;
  return (size_t)resident * _af_os_page_size();
}

size_t _af_os_peak_rss_bytes(void) {
  char buf[4096];
  if (!read_proc_file("/proc/self/status", buf, sizeof buf)) return 0;
  const char *line = strstr(buf, "\nVmHWM:");
  if (line == NULL) return 0;
  return (size_t)strtoull(line + strlen("\nVmHWM:"), NULL, 10) * 1024u; /* "VmHWM:  1234 kB" */
}
