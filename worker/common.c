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
