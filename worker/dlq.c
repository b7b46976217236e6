/* What a dead letter keeps of its record. Every record taken gets an output before its offset
 * may be committed, and a dead letter is the output of last resort, so it must always fit
 * what Kafka takes: the worker sizes it here before producing it, leaving out the parts that
 * do not fit (value, then original headers, then key, putting back what was given up for
 * nothing), and gives up one more part whenever Kafka refuses it all the same. Sizes are
 * counted the way librdkafka checks them against message.max.bytes, at their widest. The
 * dlq.* header names belong to the worker: an incoming record's are renamed orig.dlq.*, so a
 * forged dlq.error_code can never pass for the worker's verdict. Pure: no I/O. */
#include "dw/dlq.h"

#include <string.h>

#include "dw/common.h"

/* The order parts are given up in. */
static const unsigned shed_order[] = {DW_DLQ_VALUE, DW_DLQ_HEADERS, DW_DLQ_KEY};

static size_t add_sat(size_t a, size_t b)
{
  return a > SIZE_MAX - b ? SIZE_MAX : a + b;
}

size_t dw_dlq_header_size(size_t name_len, size_t value_len)
{
  return add_sat(add_sat(name_len, value_len), DW_DLQ_HEADER_OVERHEAD);
}

size_t dw_dlq_headers_size(const struct dw_header *h, size_t n)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    total = add_sat(total, dw_dlq_header_size(strlen(h[i].name), h[i].value ? h[i].len : 0));
  return total;
}

size_t dw_dlq_size(const struct dw_dlq_parts *p, unsigned shed)
{
  size_t n = add_sat(DW_DLQ_RECORD_OVERHEAD, p->own);
  n = add_sat(n, shed & DW_DLQ_KEY ? DW_DLQ_MARKER_MAX : p->key);
  n = add_sat(n, shed & DW_DLQ_VALUE ? DW_DLQ_MARKER_MAX : p->value);
  return add_sat(n, shed & DW_DLQ_HEADERS ? DW_DLQ_MARKER_MAX : p->headers);
}

int dw_dlq_fit(const struct dw_dlq_parts *p, size_t limit, unsigned shed, unsigned *out)
{
  unsigned s = shed & DW_DLQ_ALL;
  for (size_t i = 0; i < DW_ARRAY_SIZE(shed_order) && dw_dlq_size(p, s) > limit; i++)
    s |= shed_order[i];
  if (dw_dlq_size(p, s) > limit)
    return DW_ERANGE;
  /* A part given up on the way may fit again once a later, larger one is out. */
  for (size_t i = DW_ARRAY_SIZE(shed_order); i-- > 0;) {
    unsigned bit = shed_order[i];
    if ((s & bit) && !(shed & bit) && dw_dlq_size(p, s & ~bit) <= limit)
      s &= ~bit;
  }
  *out = s;
  return 0;
}

unsigned dw_dlq_shed_more(const struct dw_dlq_parts *p, unsigned shed)
{
  for (size_t i = 0; i < DW_ARRAY_SIZE(shed_order); i++) {
    unsigned bit = shed_order[i];
    size_t len = bit == DW_DLQ_KEY ? p->key : bit == DW_DLQ_VALUE ? p->value : p->headers;
    if (!(shed & bit) && len > 0)
      return shed | bit;
  }
  return shed;
}

int dw_dlq_reserved(const char *name)
{
  return strncmp(name, "dlq.", 4) == 0;
}

size_t dw_dlq_rename_bytes(const struct dw_header *h, size_t n)
{
  size_t total = 0;
  for (size_t i = 0; i < n; i++)
    if (dw_dlq_reserved(h[i].name))
      total += sizeof(DW_DLQ_ORIG_PREFIX) - 1 + strlen(h[i].name) + 1;
  return total;
}

void dw_dlq_rename(const struct dw_header *h, size_t n, struct dw_header *out, char *names)
{
  for (size_t i = 0; i < n; i++) {
    out[i] = h[i];
    if (!dw_dlq_reserved(h[i].name))
      continue;
    size_t plen = sizeof(DW_DLQ_ORIG_PREFIX) - 1, len = strlen(h[i].name);
    memcpy(names, DW_DLQ_ORIG_PREFIX, plen);
    memcpy(names + plen, h[i].name, len + 1);
    out[i].name = names;
    names += plen + len + 1;
  }
}

int64_t dw_dlq_producer_limit(int64_t broker, int64_t dlq_topic, int64_t fallback)
{
  int64_t best = dlq_topic >= 0 ? dlq_topic : broker;
  if (best < 0)
    return fallback;
  return DW_MIN(DW_MAX(best, 1000), 1000000000);
}
