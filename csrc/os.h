/* ----------------------------------------------------------------------------
 * os.h: the operating-system layer. Every mmap, munmap and madvise call of
 * allocffi lives in os.c, behind these few functions.
 *
 * Contract: sizes are already multiples of the page size; functions return
 * AF_OK or an af_status (AF_ERR_NOMEM when the kernel refuses); they never
 * print and never abort.
 * ------------------------------------------------------------------------- */
#ifndef AF_OS_H
#define AF_OS_H

#include <stddef.h>

/* The page size, read once. */
size_t _af_os_page_size(void);

/* Maps `size` bytes of fresh zeroed read-write memory whose address is a
   multiple of `align` (a power of two, at least a page; larger alignments are
   obtained by over-mapping and trimming). */
int _af_os_map(size_t size, size_t align, void **out);

/* Unmaps a range obtained from _af_os_map (or a page-aligned part of one). */
int _af_os_unmap(void *addr, size_t size);

/* Tells the kernel the pages' contents are no longer needed: they stay
   mapped, read back as zero later, and stop counting towards RSS. */
int _af_os_purge(void *addr, size_t size);

/* Resident set size of this process in bytes (from /proc/self/statm), 0 if unknown. */
size_t _af_os_rss_bytes(void);

/* High-water mark of the resident set of this process image in bytes
   (VmHWM in /proc/self/status), 0 if unknown. Unlike getrusage's ru_maxrss,
   which Linux carries across execve, it starts afresh in an exec'd child. */
size_t _af_os_peak_rss_bytes(void);

#endif /* AF_OS_H */
