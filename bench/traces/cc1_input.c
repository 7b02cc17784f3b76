/* A small C file compiled by the cc1 trace (bench/traces, `make traces`). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct node {
  struct node *next;
  char key[32];
  long value;
};

static struct node *push(struct node *head, const char *key, long value) {
  struct node *n = malloc(sizeof *n);
  if (n == NULL) return head;
  snprintf(n->key, sizeof n->key, "%s", key);
  n->value = value;
  n->next = head;
  return n;
}

static long sum(const struct node *n) {
  long total = 0;
  for (; n != NULL; n = n->next) total += n->value * (long)strlen(n->key);
  return total;
}

int main(int argc, char **argv) {
  struct node *head = NULL;
  for (int i = 1; i < argc; i++) head = push(head, argv[i], i);
  printf("%ld\n", sum(head));
  while (head != NULL) {
    struct node *next = head->next;
    free(head);
    head = next;
  }
  return 0;
}
