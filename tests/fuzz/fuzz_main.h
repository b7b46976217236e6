/* Shared by the libFuzzer targets in tests/fuzz: a guarded copy of each input, and, when built
 * with -DDW_FUZZ_REPLAY_MAIN (any compiler, no libFuzzer), a main that replays the files and
 * directories named on its command line once each so ctest can run a saved corpus as a plain
 * test. Included by exactly one .c per executable; the target defines DW_FUZZ_NAME first.
 *
 * The system's libcjson and libconfig are not instrumented, so AddressSanitizer cannot see them
 * read past an input. The input is therefore copied to the very end of a mapping followed by an
 * inaccessible guard page: one byte read past the end by anyone is a SIGSEGV the fuzzer
 * reports. */
#ifndef DW_FUZZ_MAIN_H
#define DW_FUZZ_MAIN_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#ifdef DW_FUZZ_REPLAY_MAIN
#include <dirent.h>
#include <stdio.h>
#endif

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

/* A copy of the input that ends where a PROT_NONE page begins. The mapping is kept and grown
 * as larger inputs arrive; the copy is valid until the next call. */
__attribute__((unused)) static const uint8_t *dw_fuzz_guarded_copy(const uint8_t *data, size_t size)
{
  static uint8_t *map;
  static size_t map_len, usable;
  size_t page = (size_t)sysconf(_SC_PAGESIZE);

  if (!map || size > usable) {
    if (map)
      munmap(map, map_len);
    usable = (size + page - 1) / page * page;
    if (usable == 0)
      usable = page;
    map_len = usable + page;
    map = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED || mprotect(map + usable, page, PROT_NONE) != 0)
      abort();
  }
  if (size)
    memcpy(map + usable - size, data, size);
  return map + usable - size;
}

/* Aborts unless s holds a NUL within size bytes. */
__attribute__((unused)) static void dw_fuzz_check_string(const char *s, size_t size)
{
  if (!memchr(s, '\0', size))
    abort();
}

#ifdef DW_FUZZ_REPLAY_MAIN
/* Feeds one file to the target. Returns 0, or -1 when it cannot be read. */
static int dw_fuzz_replay_file(const char *path)
{
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  long n;
  int rc = -1;

  if (!f)
    goto out;
  if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0)
    goto out;
  buf = malloc((size_t)n + 1);
  if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n)
    goto out;
  LLVMFuzzerTestOneInput(buf, (size_t)n);
  rc = 0;

out:
  if (rc != 0)
    fprintf(stderr, "%s: cannot read %s\n", DW_FUZZ_NAME, path);
  free(buf);
  if (f)
    fclose(f);
  return rc;
}

int main(int argc, char **argv)
{
  int files = 0, failed = 0;

  for (int i = 1; i < argc; i++) {
    DIR *d = opendir(argv[i]);
    struct dirent *e;
    char path[4096];

    if (!d) {
      failed |= dw_fuzz_replay_file(argv[i]) != 0;
      files++;
      continue;
    }
    while ((e = readdir(d)) != NULL) {
      if (e->d_name[0] == '.')
        continue;
      if (snprintf(path, sizeof(path), "%s/%s", argv[i], e->d_name) >= (int)sizeof(path)) {
        failed = 1;
        continue;
      }
      failed |= dw_fuzz_replay_file(path) != 0;
      files++;
    }
    closedir(d);
  }
  printf("%s: replayed %d inputs\n", DW_FUZZ_NAME, files);
  return failed || files == 0 ? 1 : 0;
}
#endif

#endif
