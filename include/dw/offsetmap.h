/* The commit-metadata map: which records beyond a partition's committed offset are already
 * finished, committed with the offset (Kafka's commit "metadata" string) so a restarted or
 * reassigned worker skips them instead of calling the API again.
 *
 * Text form: "dw1." followed by base64url (no padding) of
 *   version (1 byte, = 1) | base offset (varint) | runs: (gap, length) varint pairs | CRC-32
 * where the base is the committed offset the map belongs to, and each run of finished offsets
 * starts `gap` after the end of the previous one (the first after the base). The CRC-32 (IEEE,
 * little-endian) covers everything before it. Anything else is foreign or corrupt and is
 * ignored: the records are then simply processed again. Pure. */
#ifndef DW_OFFSETMAP_H
#define DW_OFFSETMAP_H

#include <stddef.h>
#include <stdint.h>

#define DW_OFFSETMAP_PREFIX "dw1."
#define DW_OFFSETMAP_BIN_MAX 786432 /* binary bytes of the largest map (1 MiB of text) */
/* Less room than this after a refusal is not worth a map (an empty one takes up to 24 bytes,
 * each finished run up to 27 more). */
#define DW_OFFSETMAP_MIN_BYTES 64

/* Builds a map run by run within a size limit; the text is exactly as long as
 * dw_offsetmap_text_len says. */
struct dw_offsetmap_writer {
  uint8_t *bin;      /* caller's buffer of `cap` bytes */
  size_t cap;
  size_t len;        /* bytes written, without the CRC */
  size_t max_text;   /* limit of the text form, in bytes */
  int64_t cursor;    /* end of the last run (the base at first) */
  size_t runs;
  int truncated;     /* a run did not fit: the map holds only the runs before it */
};

/* Starts a map for `base` whose text must fit in max_text bytes. Returns DW_ERANGE when not
 * even an empty map fits (max_text too small), DW_EINVAL for a negative base. */
int dw_offsetmap_begin(struct dw_offsetmap_writer *w, uint8_t *bin, size_t cap, int64_t base,
                       size_t max_text);

/* Adds the finished run [from, to), from >= the end of the previous run. DW_ERANGE when it
 * does not fit (the map stays valid without it, and `truncated` is set), DW_EINVAL for a run
 * out of order. */
int dw_offsetmap_add(struct dw_offsetmap_writer *w, int64_t from, int64_t to);

/* Length of the text form of the map so far. */
size_t dw_offsetmap_text_len(const struct dw_offsetmap_writer *w);

/* Writes the text form (NUL-terminated) into out, which needs text_len + 1 bytes; returns the
 * length, or DW_ERANGE if out is too small. Appends the CRC to the writer's buffer. */
int dw_offsetmap_finish(struct dw_offsetmap_writer *w, char *out, size_t outlen);

/* A decoded map: finished runs [from[i], to[i]) in increasing order, all beyond the base. */
struct dw_offsetmap {
  int64_t base;
  int64_t *from, *to;
  size_t runs;
  size_t next; /* lookup cursor for dw_offsetmap_contains with increasing offsets */
};

/* Decodes text (not necessarily NUL-terminated). DW_EINVAL when it is not a map of ours or is
 * corrupt (wrong prefix, bad base64, bad CRC, runs out of order or overflowing), DW_ENOMEM.
 * On error m is left empty. Never reads beyond len. */
int dw_offsetmap_decode(struct dw_offsetmap *m, const char *text, size_t len);

/* Non-zero when offset lies in a finished run. Offsets must be asked in increasing order. */
int dw_offsetmap_contains(struct dw_offsetmap *m, int64_t offset);

/* Offsets covered by the runs (for logs and metrics). */
int64_t dw_offsetmap_count(const struct dw_offsetmap *m);

void dw_offsetmap_free(struct dw_offsetmap *m);

/* The room for maps after the broker refused one of `refused` bytes (longer than its
 * offset.metadata.max.bytes) while maps had `current` bytes: half of current, or less than
 * refused when that is smaller; 0 (commit without a map) when that leaves less than
 * DW_OFFSETMAP_MIN_BYTES. `current` itself when nothing is learnt: refused longer than current
 * (that map was written before an earlier shrink), or 0 (no map is never too long). */
size_t dw_offsetmap_shrink(size_t current, size_t refused);

#endif
