/* Small helpers with no I/O for dw-sim: a bounded growable buffer that the answers and the
 * /_sim/ dumps are written into, JSON string escaping, strict number parsing (strtoll/strtod with
 * end-pointer and errno checks), a monotonic clock, splitmix64 and an intrusive hash table. */
#include "sim.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void sim_buf_init(struct sim_buf *b, size_t max)
{
  memset(b, 0, sizeof(*b));
  b->max = max;
}

void sim_buf_free(struct sim_buf *b)
{
  size_t max = b->max;
  free(b->data);
  sim_buf_init(b, max);
}

static int buf_reserve(struct sim_buf *b, size_t n)
{
  size_t need, cap;
  char *p;

  if (b->failed)
    return SIM_ERANGE;
  if (n > b->max || b->len > b->max - n) {
    b->failed = 1;
    return SIM_ERANGE;
  }
  need = b->len + n + 1;
  if (need <= b->cap)
    return 0;
  cap = b->cap ? b->cap : 256;
  while (cap < need)
    cap = cap > SIZE_MAX / 2 ? need : cap * 2;
  if (cap > b->max + 1)
    cap = b->max + 1;
  p = realloc(b->data, cap);
  if (!p) {
    b->failed = 1;
    return SIM_ENOMEM;
  }
  b->data = p;
  b->cap = cap;
  return 0;
}

int sim_buf_add(struct sim_buf *b, const void *p, size_t n)
{
  int rc = buf_reserve(b, n);
  if (rc)
    return rc;
  if (n)
    memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int sim_buf_adds(struct sim_buf *b, const char *s)
{
  return sim_buf_add(b, s, strlen(s));
}

int sim_buf_addf(struct sim_buf *b, const char *fmt, ...)
{
  char small[256];
  va_list ap;
  int n, rc;

  va_start(ap, fmt);
  n = vsnprintf(small, sizeof(small), fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->failed = 1;
    return SIM_EINVAL;
  }
  if ((size_t)n < sizeof(small))
    return sim_buf_add(b, small, (size_t)n);
  rc = buf_reserve(b, (size_t)n);
  if (rc)
    return rc;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

int sim_buf_add_jstrn(struct sim_buf *b, const char *s, size_t n)
{
  static const char hex[] = "0123456789abcdef";
  size_t i, run = 0;
  int rc = sim_buf_add(b, "\"", 1);

  for (i = 0; i < n && !rc; i++) {
    unsigned char c = (unsigned char)s[i];
    char esc[6];
    size_t elen = 0;

    if (c == '"' || c == '\\') {
      esc[0] = '\\';
      esc[1] = (char)c;
      elen = 2;
    } else if (c < 0x20) {
      esc[0] = '\\';
      esc[1] = 'u';
      esc[2] = '0';
      esc[3] = '0';
      esc[4] = hex[c >> 4];
      esc[5] = hex[c & 15];
      elen = 6;
    }
    if (!elen) {
      run++;
      continue;
    }
    rc = sim_buf_add(b, s + i - run, run);
    if (!rc)
      rc = sim_buf_add(b, esc, elen);
    run = 0;
  }
  if (!rc)
    rc = sim_buf_add(b, s + n - run, run);
  if (!rc)
    rc = sim_buf_add(b, "\"", 1);
  return rc;
}

int sim_buf_add_jstr(struct sim_buf *b, const char *s)
{
  if (!s)
    return sim_buf_add(b, "null", 4);
  return sim_buf_add_jstrn(b, s, strlen(s));
}

char *sim_buf_take(struct sim_buf *b, size_t *len)
{
  char *p = b->data;
  if (len)
    *len = b->len;
  sim_buf_init(b, b->max);
  return p;
}

int sim_parse_ll(const char *s, long long min, long long max, long long *out)
{
  char *end = NULL;
  long long v;

  if (!s || !*s)
    return SIM_EINVAL;
  errno = 0;
  v = strtoll(s, &end, 10);
  if (errno || end == s || *end != '\0')
    return SIM_EINVAL;
  if (v < min || v > max)
    return SIM_ERANGE;
  *out = v;
  return 0;
}

int sim_parse_double(const char *s, double min, double max, double *out)
{
  char *end = NULL;
  double v;

  if (!s || !*s)
    return SIM_EINVAL;
  errno = 0;
  v = strtod(s, &end);
  if (errno || end == s || *end != '\0' || !isfinite(v))
    return SIM_EINVAL;
  if (v < min || v > max)
    return SIM_ERANGE;
  *out = v;
  return 0;
}

uint64_t sim_mono_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

uint64_t sim_rand_next(uint64_t *state)
{
  uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

double sim_rand_unit(uint64_t *state)
{
  return (double)(sim_rand_next(state) >> 11) * 0x1.0p-53;
}

uint64_t sim_hash(const void *p, size_t n, uint64_t seed)
{
  const unsigned char *c = p;
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  size_t i;

  for (i = 0; i < n; i++) {
    h ^= c[i];
    h *= 0x100000001b3ULL;
  }
  /* FNV alone mixes the low bits poorly for power-of-two tables. */
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

char *sim_strndup(const char *s, size_t n)
{
  char *p = malloc(n + 1);
  if (!p)
    return NULL;
  memcpy(p, s, n);
  p[n] = '\0';
  return p;
}

#define HTAB_INITIAL 64

int sim_htab_init(struct sim_htab *t)
{
  t->buckets = calloc(HTAB_INITIAL, sizeof(*t->buckets));
  t->nbuckets = t->buckets ? HTAB_INITIAL : 0;
  t->count = 0;
  return t->buckets ? 0 : SIM_ENOMEM;
}

void sim_htab_cleanup(struct sim_htab *t)
{
  free(t->buckets);
  t->buckets = NULL;
  t->nbuckets = 0;
  t->count = 0;
}

struct sim_hnode *sim_htab_find(const struct sim_htab *t, const char *key, size_t klen)
{
  uint64_t h = sim_hash(key, klen, 0);
  struct sim_hnode *n;

  if (!t->nbuckets)
    return NULL;
  for (n = t->buckets[h & (t->nbuckets - 1)]; n; n = n->next)
    if (n->hash == h && n->klen == klen && memcmp(n->key, key, klen) == 0)
      return n;
  return NULL;
}

static void htab_grow(struct sim_htab *t)
{
  size_t nb = t->nbuckets * 2, i;
  struct sim_hnode **b;

  if (nb < t->nbuckets)
    return;
  b = calloc(nb, sizeof(*b));
  if (!b)
    return; /* keep the old table: slower, still correct */
  for (i = 0; i < t->nbuckets; i++) {
    struct sim_hnode *n = t->buckets[i], *next;
    for (; n; n = next) {
      next = n->next;
      n->next = b[n->hash & (nb - 1)];
      b[n->hash & (nb - 1)] = n;
    }
  }
  free(t->buckets);
  t->buckets = b;
  t->nbuckets = nb;
}

void sim_htab_insert(struct sim_htab *t, struct sim_hnode *n)
{
  size_t i;

  if (t->count >= t->nbuckets)
    htab_grow(t);
  n->hash = sim_hash(n->key, n->klen, 0);
  i = n->hash & (t->nbuckets - 1);
  n->next = t->buckets[i];
  t->buckets[i] = n;
  t->count++;
}

void sim_htab_remove(struct sim_htab *t, struct sim_hnode *n)
{
  struct sim_hnode **pp = &t->buckets[n->hash & (t->nbuckets - 1)];

  for (; *pp; pp = &(*pp)->next) {
    if (*pp == n) {
      *pp = n->next;
      n->next = NULL;
      t->count--;
      return;
    }
  }
}
