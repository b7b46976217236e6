/* Error texts, clocks and string helpers used across the worker. */
#include "dw/common.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

const char *dw_strerror(int err)
{
  switch (err) {
  case DW_OK: return "success";
  case DW_EINVAL: return "invalid argument";
  case DW_ENOMEM: return "out of memory";
  case DW_ERANGE: return "value out of range";
  case DW_ENOENT: return "not found";
  case DW_EIO: return "input/output error";
  case DW_ESTATE: return "wrong state";
  case DW_EAGAIN: return "try again";
  case DW_ETIMEDOUT: return "timed out";
  case DW_ECANCELED: return "cancelled";
  case DW_EEXIST: return "already exists";
  default: return "unknown error";
  }
}

int64_t dw_wallclock_ms(void)
{
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

char *dw_rfc3339(int64_t wall_ms, char *buf, size_t size)
{
  time_t secs = (time_t)(wall_ms / 1000);
  struct tm tm;
  if (size == 0)
    return buf;
  buf[0] = '\0';
  if (!gmtime_r(&secs, &tm))
    return buf;
  char date[24];
  strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(buf, size, "%s.%03dZ", date, (int)(wall_ms % 1000));
  return buf;
}

int dw_strlcpy(char *dst, const char *src, size_t size)
{
  size_t n = strlen(src);
  if (n >= size) {
    memcpy(dst, src, size - 1);
    dst[size - 1] = '\0';
    return DW_ERANGE;
  }
  memcpy(dst, src, n + 1);
  return 0;
}

size_t dw_utf8_seq_len(const unsigned char *s, size_t n)
{
  size_t len;
  unsigned cp;
  if (s[0] < 0x80)
    return 1;
  if (s[0] >= 0xc2 && s[0] <= 0xdf) {
    len = 2;
    cp = s[0] & 0x1f;
  } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
    len = 3;
    cp = s[0] & 0x0f;
  } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
    len = 4;
    cp = s[0] & 0x07;
  } else {
    return 0; /* a continuation byte, C0/C1 (always overlong), F5-FF (beyond U+10FFFF) */
  }
  if (len > n)
    return 0;
  for (size_t i = 1; i < len; i++) {
    if ((s[i] & 0xc0) != 0x80)
      return 0;
    cp = (cp << 6) | (s[i] & 0x3f);
  }
  if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
      (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    return 0;
  return len;
}

int dw_utf8_valid(const void *buf, size_t len)
{
  const unsigned char *p = buf;
  size_t i = 0;
  while (i < len) {
    size_t n = dw_utf8_seq_len(p + i, len - i);
    if (n == 0)
      return 0;
    i += n;
  }
  return 1;
}

uint64_t dw_rand_next(uint64_t *state)
{
  uint64_t x = *state;
  x ^= x >> 12;
  x ^= x << 25;
  x ^= x >> 27;
  *state = x;
  return x * 0x2545F4914F6CDD1DULL;
}

double dw_rand_unit(uint64_t *state)
{
  return (double)(dw_rand_next(state) >> 11) * (1.0 / 9007199254740992.0);
}

int dw_base64url_decode(const char *s, size_t len, uint8_t *out)
{
  static const char alphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
  size_t n = 0;
  uint32_t acc = 0;
  int bits = 0;
  if (len % 4 == 1)
    return DW_EINVAL;
  for (size_t i = 0; i < len; i++) {
    const char *p = s[i] ? memchr(alphabet, s[i], sizeof(alphabet) - 1) : NULL;
    if (!p)
      return DW_EINVAL;
    acc = acc << 6 | (uint32_t)(p - alphabet);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[n++] = (uint8_t)(acc >> bits);
    }
  }
  if (acc & ((1u << bits) - 1)) /* leftover bits must be zero: one text per value */
    return DW_EINVAL;
  return (int)n;
}
