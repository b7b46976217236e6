/* Error codes and small helpers shared by every module. */
#ifndef DW_COMMON_H
#define DW_COMMON_H

#include <stddef.h>
#include <stdint.h>

/* Functions return 0 or one of these negative codes. */
enum {
  DW_OK = 0,
  DW_EINVAL = -1,    /* bad argument or bad input */
  DW_ENOMEM = -2,    /* allocation failed */
  DW_ERANGE = -3,    /* value out of bounds, buffer too small */
  DW_ENOENT = -4,    /* not found */
  DW_EIO = -5,       /* I/O or library failure */
  DW_ESTATE = -6,    /* wrong state for this call */
  DW_EAGAIN = -7,    /* try again later */
  DW_ETIMEDOUT = -8, /* deadline passed */
  DW_ECANCELED = -9, /* cancelled */
  DW_EEXIST = -10,   /* already there */
};

/* A short English description of a DW_E* code (never NULL). */
const char *dw_strerror(int err);

#define DW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define DW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define DW_MAX(a, b) ((a) > (b) ? (a) : (b))

/* Wall-clock milliseconds since the epoch (for timestamps in results and headers). */
int64_t dw_wallclock_ms(void);

/* Formats a wall-clock time as RFC 3339 UTC with milliseconds ("2026-11-24T03:28:04.123Z").
 * buf needs 25 bytes. Returns buf. */
char *dw_rfc3339(int64_t wall_ms, char *buf, size_t size);

/* Decodes unpadded base64url (RFC 4648 section 5): the byte count, or DW_EINVAL for a length
 * of 4k+1, a character outside the alphabet or leftover bits that are not zero. out holds
 * len * 3 / 4 bytes. */
int dw_base64url_decode(const char *s, size_t len, uint8_t *out);

/* Copies src into dst (size > 0) and always NUL-terminates; returns DW_ERANGE if truncated. */
int dw_strlcpy(char *dst, const char *src, size_t size);

/* xorshift64* pseudo-random numbers for jitter; state must be non-zero. */
uint64_t dw_rand_next(uint64_t *state);
/* A double in [0, 1). */
double dw_rand_unit(uint64_t *state);

#endif
