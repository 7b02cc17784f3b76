/* A program that needs its input on stdin: the --stdin and likely-misuse test.
 *
 *   needs_stdin < FILE     reads numbers, one a line; keeps a block of each size; prints their sum
 *
 * On an empty stdin (/dev/null, allocffi run's default) it prints its usage to stderr and exits 0
 * at once, as many filters do: a run that did nothing, which the harness must flag.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int main(void) {
  char line[64];
  size_t count = 0, capacity = 0, total = 0;
  void **blocks = NULL;
  while (fgets(line, sizeof line, stdin) != NULL) {
    size_t size = strtoul(line, NULL, 10);
    if (count == capacity) {
      capacity = capacity ? 2 * capacity : 64;
      void **grown = realloc(blocks, capacity * sizeof *blocks);
      if (grown == NULL) return 1;
      blocks = grown;
    }
    blocks[count] = malloc(size + 1);
    if (blocks[count] == NULL) return 1;
    memset(blocks[count], 1, size + 1);
    count++;
    total += size;
  }
  if (count == 0) {
    fprintf(stderr, "Usage: needs_stdin < FILE (one size a line)\n");
    return 0;
  }
  for (size_t i = 0; i < count; i++) free(blocks[i]);
  free(blocks);
  printf("%zu blocks, %zu bytes\n", count, total);
  return 0;
}
