/*
 * Scans a file with one regex through Hyperscan (the engine GitHub compiles custom secret patterns
 * with) and prints "start end" byte offsets of each match, one per line. Built and run by
 * test/scanning/engines.ts: cc hyperscan-matches.c -lhs; ./a.out PATTERN FILE
 */
#include <hs/hs.h>
#include <stdio.h>
#include <stdlib.h>

/* Hyperscan reports every end offset of a match; SOM_LEFTMOST adds its leftmost start. */
static int print_match(unsigned int id, unsigned long long from, unsigned long long to, unsigned int flags, void *context) {
  (void)id;
  (void)flags;
  (void)context;
  printf("%llu %llu\n", from, to);
  return 0;
}

static char *read_file(const char *path, size_t *length) {
  FILE *file = fopen(path, "rb");
  if (!file) return NULL;
  fseek(file, 0, SEEK_END);
  long size = ftell(file);
  fseek(file, 0, SEEK_SET);
  char *data = malloc(size > 0 ? (size_t)size : 1);
  *length = data ? fread(data, 1, (size_t)size, file) : 0;
  fclose(file);
  return data;
}

int main(int argc, char **argv) {
  if (argc == 2 && argv[1][0] == '-') {
    printf("Hyperscan %s\n", hs_version());
    return 0;
  }
  if (argc != 3) {
    fprintf(stderr, "usage: %s PATTERN FILE | --version\n", argv[0]);
    return 2;
  }
  hs_database_t *database = NULL;
  hs_compile_error_t *error = NULL;
  if (hs_compile(argv[1], HS_FLAG_SOM_LEFTMOST, HS_MODE_BLOCK, NULL, &database, &error) != HS_SUCCESS) {
    fprintf(stderr, "pattern does not compile: %s\n", error->message);
    hs_free_compile_error(error);
    return 2;
  }
  size_t length = 0;
  char *data = read_file(argv[2], &length);
  if (!data) {
    fprintf(stderr, "cannot read %s\n", argv[2]);
    return 2;
  }
  hs_scratch_t *scratch = NULL;
  if (hs_alloc_scratch(database, &scratch) != HS_SUCCESS || hs_scan(database, data, (unsigned int)length, 0, scratch, print_match, NULL) != HS_SUCCESS) {
    fprintf(stderr, "scan failed\n");
    return 2;
  }
  hs_free_scratch(scratch);
  hs_free_database(database);
  free(data);
  return 0;
}
