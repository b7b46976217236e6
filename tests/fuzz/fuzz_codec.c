/* libFuzzer target for the codec: every input is fed, as the exact byte range it is (no NUL
 * after it), to the event parser, the answer classifier (under a few HTTP statuses) and the
 * token answer parser; accepted events and final answers are also encoded as a result and the
 * result parsed back as an event, which must hold the same IDs. Build:
 *   clang -g -fsanitize=fuzzer,address,undefined -Iinclude tests/fuzz/fuzz_codec.c \
 *     worker/codec.c worker/common.c $(pkg-config --cflags --libs libcjson)
 * and run with tests/fuzz/corpus/codec as the seed corpus. Built with -DDW_FUZZ_REPLAY_MAIN
 * (any compiler, no libFuzzer) it gets a main that replays the files and directories named on
 * its command line once each, so ctest can run the saved corpus as a plain test.
 *
 * The system's libcjson is not instrumented, so AddressSanitizer cannot see it read past the
 * input. The input is therefore copied to the very end of a mapping followed by an inaccessible
 * guard page: one byte read past len by anyone, cJSON included, is a SIGSEGV the fuzzer
 * reports. */
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

#include "dw/codec.h"
#include "dw/common.h"

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

static void check_string(const char *s, size_t size)
{
  /* Every output string is NUL-terminated inside its buffer. */
  if (!memchr(s, '\0', size))
    abort();
}

/* A copy of the input that ends where a PROT_NONE page begins. The mapping is kept and grown
 * as larger inputs arrive. */
static const uint8_t *guarded_copy(const uint8_t *data, size_t size)
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

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
  const uint8_t *data = guarded_copy(input, size);
  static const long statuses[] = {200, 400, 429, 500};
  struct dw_event ev;
  struct dw_answer ans;
  char why[128];
  char token[4096], msg[256];
  int64_t expire;
  long code;
  int ev_ok;

  ev_ok = dw_event_parse(&ev, data, size, why, sizeof(why)) == 0;
  check_string(why, sizeof(why));
  if (ev_ok) {
    size_t n = strlen(ev.website_id);
    if (n < 1 || n > DW_WEBSITE_ID_MAX || strspn(ev.website_id, "0123456789") != n)
      abort();
    n = strlen(ev.task_id);
    if (n < 1 || n > DW_TASK_ID_MAX ||
        strspn(ev.task_id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") !=
            n)
      abort();
  } else if (why[0] == '\0') {
    abort(); /* a rejection always says why */
  }

  for (size_t i = 0; i < DW_ARRAY_SIZE(statuses); i++) {
    dw_answer_classify(&ans, statuses[i], data, size);
    check_string(ans.msg, sizeof(ans.msg));
    check_string(ans.application_id, sizeof(ans.application_id));
    check_string(ans.status_msg, sizeof(ans.status_msg));
    check_string(ans.extra_info, sizeof(ans.extra_info));
    if (strcmp(dw_answer_kind_name(ans.kind), "unknown") == 0)
      abort();
    if (ans.kind == DW_ANSWER_SUCCEEDED && ans.application_id[0] == '\0')
      abort();
  }

  /* A final answer with the parsed event (or a fixed one) encodes, and the result reads back
   * as an event with the same IDs (it carries website_id and delivery_task_id). */
  if (ans.kind == DW_ANSWER_SUCCEEDED || ans.kind == DW_ANSWER_FAILED) {
    struct dw_event fixed = {.website_id = "1", .task_id = "t"};
    struct dw_event back;
    struct dw_result res = {.event = ev_ok ? &ev : &fixed, .answer = &ans, .polls = 1,
                            .resolved_at_ms = 1795490884123LL};
    char *out = NULL;
    size_t len = 0;
    if (dw_result_encode(&res, &out, &len) != 0)
      abort();
    if (dw_event_parse(&back, out, len, why, sizeof(why)) != 0 ||
        strcmp(back.website_id, res.event->website_id) != 0 ||
        strcmp(back.task_id, res.event->task_id) != 0)
      abort();
    free(out);
  }

  if (dw_token_answer_parse(data, size, token, sizeof(token), &expire, &code, msg,
                            sizeof(msg)) == 0) {
    size_t n = strlen(token);
    if (n == 0 || expire <= 0 || code != 0)
      abort();
    for (size_t i = 0; i < n; i++)
      if ((unsigned char)token[i] < 0x21 || (unsigned char)token[i] > 0x7E)
        abort();
  }
  check_string(msg, sizeof(msg));
  return 0;
}

#ifdef DW_FUZZ_REPLAY_MAIN
/* Feeds one file to the target. Returns 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
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
    fprintf(stderr, "fuzz_codec: cannot read %s\n", path);
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
      failed |= replay_file(argv[i]) != 0;
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
      failed |= replay_file(path) != 0;
      files++;
    }
    closedir(d);
  }
  printf("fuzz_codec: replayed %d inputs\n", files);
  return failed || files == 0 ? 1 : 0;
}
#endif
