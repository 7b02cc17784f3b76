/* A small program of known memory: the probe's RSS test.
 *
 *   touch_memory KIB     allocates KIB KiB, writes every page, frees it
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: touch_memory KIB\n");
    return 2;
  }
  size_t size = strtoul(argv[1], NULL, 10) * 1024;
  volatile char *block = malloc(size);
  if (block == NULL) return 1;
  for (size_t i = 0; i < size; i += 4096) block[i] = (char)i;
  int last = block[size - 4096];
  free((void *)block);
  return last == (char)(size - 4096) ? 0 : 1;
}
