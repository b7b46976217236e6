/* The commit-metadata map (see offsetmap.h for the format). Kafka keeps the metadata string
 * with the offset, up to offset.metadata.max.bytes (4096 by default), so the writer counts the
 * exact text length as it goes and stops before the limit: a map cut short is still right, it
 * only makes a restarted worker process a few finished records again. The decoder trusts
 * nothing: whoever else commits to the group (a tool, another program, a replay) may have left
 * any string there. No library of ours exposes base64 or CRC-32, hence the two small codecs. */
#include "dw/offsetmap.h"

#include <stdlib.h>
#include <string.h>

#include "dw/common.h"

#define VERSION 1
#define CRC_BYTES 4
#define PREFIX_LEN (sizeof(DW_OFFSETMAP_PREFIX) - 1)

static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static uint32_t crc32_ieee(const uint8_t *p, size_t n)
{
  uint32_t c = 0xFFFFFFFFu;
  for (size_t i = 0; i < n; i++) {
    c ^= p[i];
    for (int k = 0; k < 8; k++)
      c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
  }
  return ~c;
}

static size_t b64_len(size_t n)
{
  return n / 3 * 4 + (n % 3 ? n % 3 + 1 : 0);
}

static size_t varint_len(uint64_t v)
{
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    n++;
  }
  return n;
}

static size_t put_varint(uint8_t *p, uint64_t v)
{
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

/* Reads a varint of at most 10 bytes; returns bytes read, 0 when malformed or cut. */
static size_t get_varint(const uint8_t *p, size_t n, uint64_t *v)
{
  uint64_t r = 0;
  for (size_t i = 0; i < n && i < 10; i++) {
    uint64_t b = p[i] & 0x7F;
    if (i == 9 && b > 1)
      return 0; /* more than 64 bits */
    r |= b << (7 * i);
    if (!(p[i] & 0x80)) {
      *v = r;
      return i + 1;
    }
  }
  return 0;
}

static size_t text_len_for(size_t bin_len)
{
  return PREFIX_LEN + b64_len(bin_len + CRC_BYTES);
}

int dw_offsetmap_begin(struct dw_offsetmap_writer *w, uint8_t *bin, size_t cap, int64_t base,
                       size_t max_text)
{
  if (base < 0)
    return DW_EINVAL;
  memset(w, 0, sizeof(*w));
  w->bin = bin;
  w->cap = cap;
  w->max_text = max_text;
  w->cursor = base;
  size_t need = 1 + varint_len((uint64_t)base);
  if (need + CRC_BYTES > cap || text_len_for(need) > max_text)
    return DW_ERANGE;
  bin[0] = VERSION;
  w->len = 1 + put_varint(bin + 1, (uint64_t)base);
  return 0;
}

int dw_offsetmap_add(struct dw_offsetmap_writer *w, int64_t from, int64_t to)
{
  if (from <= w->cursor || to <= from) /* a gap of at least 1: see parse_runs */
    return DW_EINVAL;
  if (w->truncated)
    return DW_ERANGE;
  uint64_t gap = (uint64_t)(from - w->cursor), len = (uint64_t)(to - from);
  size_t need = w->len + varint_len(gap) + varint_len(len);
  if (need + CRC_BYTES > w->cap || text_len_for(need) > w->max_text) {
    w->truncated = 1;
    return DW_ERANGE;
  }
  w->len += put_varint(w->bin + w->len, gap);
  w->len += put_varint(w->bin + w->len, len);
  w->cursor = to;
  w->runs++;
  return 0;
}

size_t dw_offsetmap_text_len(const struct dw_offsetmap_writer *w)
{
  return text_len_for(w->len);
}

int dw_offsetmap_finish(struct dw_offsetmap_writer *w, char *out, size_t outlen)
{
  size_t n = w->len + CRC_BYTES, tl = text_len_for(w->len);
  if (outlen < tl + 1)
    return DW_ERANGE;
  uint32_t crc = crc32_ieee(w->bin, w->len);
  for (int i = 0; i < CRC_BYTES; i++)
    w->bin[w->len + (size_t)i] = (uint8_t)(crc >> (8 * i));
  memcpy(out, DW_OFFSETMAP_PREFIX, PREFIX_LEN);
  char *o = out + PREFIX_LEN;
  const uint8_t *b = w->bin;
  size_t i = 0;
  for (; i + 3 <= n; i += 3) {
    uint32_t v = (uint32_t)b[i] << 16 | (uint32_t)b[i + 1] << 8 | b[i + 2];
    *o++ = b64[v >> 18];
    *o++ = b64[(v >> 12) & 63];
    *o++ = b64[(v >> 6) & 63];
    *o++ = b64[v & 63];
  }
  if (n - i == 1) {
    *o++ = b64[b[i] >> 2];
    *o++ = b64[(b[i] & 3) << 4];
  } else if (n - i == 2) {
    uint32_t v = (uint32_t)b[i] << 8 | b[i + 1];
    *o++ = b64[v >> 10];
    *o++ = b64[(v >> 4) & 63];
    *o++ = b64[(v & 15) << 2];
  }
  *o = '\0';
  return (int)tl;
}

void dw_offsetmap_free(struct dw_offsetmap *m)
{
  free(m->from);
  free(m->to);
  memset(m, 0, sizeof(*m));
}

static int parse_runs(struct dw_offsetmap *m, const uint8_t *b, size_t n)
{
  size_t pos = 1, cap = 0, k;
  uint64_t v, gap, len;
  if (n < 1 || b[0] != VERSION || !(k = get_varint(b + 1, n - 1, &v)) || v > INT64_MAX)
    return DW_EINVAL;
  m->base = (int64_t)v;
  pos += k;
  int64_t cursor = m->base;
  while (pos < n) {
    /* Runs are maximal and the base itself is unfinished: a gap is at least 1. */
    if (!(k = get_varint(b + pos, n - pos, &gap)) || gap == 0)
      return DW_EINVAL;
    pos += k;
    if (!(k = get_varint(b + pos, n - pos, &len)) || len == 0)
      return DW_EINVAL;
    pos += k;
    if (gap > (uint64_t)(INT64_MAX - cursor) || len > (uint64_t)(INT64_MAX - cursor) - gap)
      return DW_EINVAL;
    if (m->runs == cap) {
      cap = cap ? cap * 2 : 16;
      int64_t *f = realloc(m->from, cap * sizeof(*f));
      if (f)
        m->from = f;
      int64_t *t = realloc(m->to, cap * sizeof(*t));
      if (t)
        m->to = t;
      if (!f || !t)
        return DW_ENOMEM;
    }
    m->from[m->runs] = cursor + (int64_t)gap;
    m->to[m->runs] = m->from[m->runs] + (int64_t)len;
    cursor = m->to[m->runs];
    m->runs++;
  }
  return 0;
}

int dw_offsetmap_decode(struct dw_offsetmap *m, const char *text, size_t len)
{
  memset(m, 0, sizeof(*m));
  if (!text || len < PREFIX_LEN || memcmp(text, DW_OFFSETMAP_PREFIX, PREFIX_LEN) != 0)
    return DW_EINVAL;
  text += PREFIX_LEN;
  len -= PREFIX_LEN;
  if (len / 4 * 3 + 3 > DW_OFFSETMAP_BIN_MAX + CRC_BYTES)
    return DW_EINVAL;
  uint8_t *bin = malloc(len / 4 * 3 + 3);
  if (!bin)
    return DW_ENOMEM;
  int n = dw_base64url_decode(text, len, bin), rc = DW_EINVAL;
  if (n > CRC_BYTES) {
    size_t body = (size_t)n - CRC_BYTES;
    uint32_t crc = 0;
    for (int i = 0; i < CRC_BYTES; i++)
      crc |= (uint32_t)bin[body + (size_t)i] << (8 * i);
    if (crc == crc32_ieee(bin, body))
      rc = parse_runs(m, bin, body);
  }
  free(bin);
  if (rc < 0)
    dw_offsetmap_free(m);
  return rc;
}

int dw_offsetmap_contains(struct dw_offsetmap *m, int64_t offset)
{
  while (m->next < m->runs && m->to[m->next] <= offset)
    m->next++;
  return m->next < m->runs && m->from[m->next] <= offset;
}

int64_t dw_offsetmap_count(const struct dw_offsetmap *m)
{
  int64_t n = 0;
  for (size_t i = 0; i < m->runs; i++)
    n += m->to[i] - m->from[i];
  return n;
}

size_t dw_offsetmap_shrink(size_t current, size_t refused)
{
  if (refused == 0 || refused > current)
    return current;
  size_t room = DW_MIN(current / 2, refused - 1);
  return room < DW_OFFSETMAP_MIN_BYTES ? 0 : room;
}
