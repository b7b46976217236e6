/* libFuzzer target for the commit-metadata map (worker/offsetmap.c), the one string the worker
 * reads back from Kafka that anyone committing to the group may have written. The first byte
 * picks the mode:
 *
 * - even: the rest is a metadata string for dw_offsetmap_decode (exact byte range, guard page
 *   behind it). A map accepted has increasing runs beyond its base, separated by gaps of at
 *   least one offset (runs are maximal, the base itself is unfinished), a count
 *   equal to the sum of the runs, dw_offsetmap_contains agreeing with the runs, and written
 *   again with the writer it decodes to the same runs. A rejected one is left empty.
 * - odd: the rest drives the writer: a text limit, a buffer size, a base and a sequence of
 *   (gap, length) runs. The text must be exactly dw_offsetmap_text_len long and within the
 *   limit, and decode to the runs the writer accepted (a run that did not fit ends the map);
 *   runs out of order or without a gap are refused.
 *
 * Build and run with tests/fuzz/run.sh; corpus tests/fuzz/corpus/offsetmap. */
#define DW_FUZZ_NAME "fuzz_offsetmap"
#include "fuzz_main.h"

#include "dw/common.h"
#include "dw/offsetmap.h"

#define MAX_RUNS 4096

/* A little-endian reader over the input that yields zeros once it runs out. */
struct reader {
  const uint8_t *p;
  size_t n;
};

static uint64_t take(struct reader *r, size_t bytes)
{
  uint64_t v = 0;
  for (size_t i = 0; i < bytes; i++) {
    uint64_t b = 0;
    if (r->n) {
      b = *r->p++;
      r->n--;
    }
    v |= b << (8 * i);
  }
  return v;
}

static void check_map(struct dw_offsetmap *m)
{
  int64_t count = 0, prev = m->base;
  for (size_t i = 0; i < m->runs; i++) {
    if (m->from[i] <= prev || m->to[i] <= m->from[i])
      abort();
    count += m->to[i] - m->from[i];
    prev = m->to[i];
  }
  if (dw_offsetmap_count(m) != count)
    abort();
  /* contains() with increasing offsets around every run edge. */
  m->next = 0;
  if (m->base > 0 && dw_offsetmap_contains(m, m->base - 1))
    abort();
  if (dw_offsetmap_contains(m, m->base))
    abort();
  for (size_t i = 0; i < m->runs && i < 64; i++) {
    if (dw_offsetmap_contains(m, m->from[i] - 1))
      abort();
    if (!dw_offsetmap_contains(m, m->from[i]) || !dw_offsetmap_contains(m, m->to[i] - 1))
      abort();
  }
  m->next = 0;
}

/* Writes m again with the writer (no size limit that matters) into a fresh text. */
static char *rewrite(const struct dw_offsetmap *m, size_t *len)
{
  size_t cap = 1 + 10 + m->runs * 20 + 8;
  size_t max_text = 4 + cap * 4 / 3 + 16;
  uint8_t *bin = malloc(cap);
  char *text = malloc(max_text + 1);
  struct dw_offsetmap_writer w;
  int n;

  if (!bin || !text || dw_offsetmap_begin(&w, bin, cap, m->base, max_text) != 0)
    abort();
  for (size_t i = 0; i < m->runs; i++)
    if (dw_offsetmap_add(&w, m->from[i], m->to[i]) != 0)
      abort();
  n = dw_offsetmap_finish(&w, text, max_text + 1);
  if (n < 0 || (size_t)n != dw_offsetmap_text_len(&w) || strlen(text) != (size_t)n)
    abort();
  free(bin);
  *len = (size_t)n;
  return text;
}

static void same_runs(const struct dw_offsetmap *a, const struct dw_offsetmap *b)
{
  if (a->base != b->base || a->runs != b->runs)
    abort();
  for (size_t i = 0; i < a->runs; i++)
    if (a->from[i] != b->from[i] || a->to[i] != b->to[i])
      abort();
}

static void fuzz_decode(const uint8_t *data, size_t size)
{
  struct dw_offsetmap m, back;
  const char *text = (const char *)dw_fuzz_guarded_copy(data, size);
  char *again;
  size_t len;

  if (dw_offsetmap_decode(&m, text, size) != 0) {
    if (m.runs || m.from || m.to)
      abort();
    return;
  }
  check_map(&m);
  again = rewrite(&m, &len);
  if (dw_offsetmap_decode(&back, again, len) != 0)
    abort();
  same_runs(&m, &back);
  dw_offsetmap_free(&back);
  dw_offsetmap_free(&m);
  free(again);
}

static void fuzz_encode(const uint8_t *data, size_t size)
{
  struct reader r = {data, size};
  size_t max_text = (size_t)take(&r, 2) + 1; /* 1 .. 65536 */
  size_t cap = (size_t)take(&r, 2) + 1;
  uint8_t shift = (uint8_t)take(&r, 1) % 63;
  int64_t base = (int64_t)(take(&r, 8) >> (1 + shift)); /* small and huge bases alike */
  int64_t *from = malloc(MAX_RUNS * sizeof(*from)), *to = malloc(MAX_RUNS * sizeof(*to));
  uint8_t *bin = malloc(cap);
  char *text = malloc(max_text + 1);
  struct dw_offsetmap_writer w;
  struct dw_offsetmap m;
  size_t runs = 0;
  int rc, n;

  if (!from || !to || !bin || !text)
    abort();
  rc = dw_offsetmap_begin(&w, bin, cap, base, max_text);
  if (rc != 0) {
    if (rc != DW_ERANGE)
      abort();
    goto out;
  }
  int64_t cursor = base;
  while (r.n > 0 && runs < MAX_RUNS) {
    /* A run: a length byte picks the size class of the gap and the length. */
    uint8_t cls = (uint8_t)take(&r, 1);
    uint64_t gap = take(&r, (size_t)(cls & 7) % 5), len = take(&r, (size_t)(cls >> 3 & 7) % 5);
    if (cls & 0x40)
      gap <<= 24;
    gap += 1; /* runs are maximal: at least one unfinished offset between two */
    len += 1;
    if (gap > (uint64_t)(INT64_MAX - cursor) || len > (uint64_t)(INT64_MAX - cursor) - gap ||
        INT64_MAX - cursor - (int64_t)gap - (int64_t)len < 2) {
      /* Past INT64_MAX: the writer is never asked (its caller has offsets). */
      break;
    }
    int64_t f = cursor + (int64_t)gap, t = f + (int64_t)len;
    rc = dw_offsetmap_add(&w, f, t);
    if (rc == DW_ERANGE) {
      if (!w.truncated || dw_offsetmap_add(&w, t + 1, t + 2) != DW_ERANGE)
        abort(); /* once cut, a map takes nothing more */
      break;
    }
    if (rc != 0)
      abort();
    /* A run out of order, or touching the previous one, is refused and changes nothing. */
    if (dw_offsetmap_add(&w, f - 1, t) != DW_EINVAL || dw_offsetmap_add(&w, t, t + 1) != DW_EINVAL)
      abort();
    from[runs] = f;
    to[runs] = t;
    runs++;
    cursor = t;
  }
  if (w.runs != runs || dw_offsetmap_text_len(&w) > max_text || w.len + 4 > cap)
    abort();
  n = dw_offsetmap_finish(&w, text, max_text + 1);
  if (n < 0 || (size_t)n != dw_offsetmap_text_len(&w) || strlen(text) != (size_t)n)
    abort();
  if (dw_offsetmap_decode(&m, text, (size_t)n) != 0 || m.base != base || m.runs != runs)
    abort();
  for (size_t i = 0; i < runs; i++)
    if (m.from[i] != from[i] || m.to[i] != to[i])
      abort();
  check_map(&m);
  dw_offsetmap_free(&m);
out:
  free(from);
  free(to);
  free(bin);
  free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
  if (size == 0)
    return 0;
  if (input[0] & 1)
    fuzz_encode(input + 1, size - 1);
  else
    fuzz_decode(input + 1, size - 1);
  return 0;
}
