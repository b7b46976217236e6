/* Inputs for the unit tests of the JSON formats (test_event, test_answer, test_result,
 * test_auth, test_text): every input is a heap copy of exactly its length, without a NUL after
 * it, so that AddressSanitizer catches a read past len. Include after cmocka.h. */
#ifndef DW_TEST_INPUTS_H
#define DW_TEST_INPUTS_H

#include <stdlib.h>
#include <string.h>

#include "dw/answer.h"
#include "dw/event.h"

/* A heap copy of exactly n bytes (no NUL after them). */
static inline char *exact(const void *p, size_t n)
{
  char *c = malloc(n ? n : 1);
  assert_non_null(c);
  if (n)
    memcpy(c, p, n);
  return c;
}

static inline int parse_event_n(struct dw_event *ev, const void *p, size_t n, char *why,
                                size_t wl)
{
  char *c = exact(p, n);
  int rc = dw_event_parse(ev, c, n, why, wl);
  free(c);
  return rc;
}

static inline int parse_event(struct dw_event *ev, const char *s, char *why, size_t wl)
{
  return parse_event_n(ev, s, strlen(s), why, wl);
}

static inline void classify_n(struct dw_answer *a, long http, const void *body, size_t n)
{
  char *c = exact(body, n);
  dw_answer_classify(a, http, c, n);
  free(c);
}

static inline void classify(struct dw_answer *a, long http, const char *body)
{
  classify_n(a, http, body, strlen(body));
}

/* Nested arrays: "{"x":" + (levels - 1) brackets + "1" + closers + "}", i.e. depth = levels. */
static inline char *nested(const char *prefix, size_t levels, const char *suffix)
{
  size_t pl = strlen(prefix), sl = strlen(suffix), inner = levels - 1;
  size_t n = pl + 2 * inner + 1 + sl + 1;
  char *s = malloc(n);
  size_t i, k = 0;
  assert_non_null(s);
  memcpy(s + k, prefix, pl);
  k += pl;
  for (i = 0; i < inner; i++)
    s[k++] = '[';
  s[k++] = '1';
  for (i = 0; i < inner; i++)
    s[k++] = ']';
  memcpy(s + k, suffix, sl);
  k += sl;
  s[k] = '\0';
  return s;
}

#endif
