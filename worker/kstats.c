/* The consumer's statistics, reduced to what the lag metrics need. librdkafka's statistics are
 * one JSON object: topics -> <name> -> partitions -> <id> -> offsets (as librdkafka documents
 * its statistics); the partition "-1" is the internal unassigned one, and partitions the
 * application did not assign (desired false) are the client's own bookkeeping. Offsets it does
 * not know are negative (-1001, OFFSET_INVALID). */
#include "dw/kstats.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"

static int64_t offset_of(const cJSON *p, const char *name)
{
  const cJSON *v = cJSON_GetObjectItemCaseSensitive(p, name);
  return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9.2e18
             ? (int64_t)v->valuedouble
             : -1;
}

static int64_t lag(int64_t end, int64_t from)
{
  if (end < 0 || from < 0)
    return -1;
  return end > from ? end - from : 0;
}

static int by_partition(const void *a, const void *b)
{
  const struct dw_kstats_lag *x = a, *y = b;
  return (x->partition > y->partition) - (x->partition < y->partition);
}

int dw_kstats_lags(const char *json, size_t len, const char *topic, int read_committed,
                   struct dw_kstats_lag *out, size_t max, size_t *n)
{
  cJSON *root = NULL;
  int rc = DW_EINVAL;
  *n = 0;
  if (len > DW_KSTATS_MAX_BYTES)
    return DW_ERANGE;
  root = cJSON_ParseWithLength(json, len);
  if (!root || !cJSON_IsObject(root))
    goto out;
  const cJSON *topics = cJSON_GetObjectItemCaseSensitive(root, "topics");
  if (topics && !cJSON_IsObject(topics))
    goto out;
  rc = 0;
  const cJSON *t = cJSON_GetObjectItemCaseSensitive(topics, topic);
  const cJSON *parts = cJSON_GetObjectItemCaseSensitive(t, "partitions");
  const cJSON *p;
  cJSON_ArrayForEach(p, parts)
  {
    const cJSON *id = cJSON_GetObjectItemCaseSensitive(p, "partition");
    if (*n >= max || *n >= DW_KSTATS_MAX_PARTITIONS)
      break;
    if (!cJSON_IsNumber(id) || id->valuedouble < 0 || id->valuedouble > INT32_MAX ||
        !cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(p, "desired")))
      continue;
    int64_t end = offset_of(p, read_committed ? "ls_offset" : "hi_offset");
    int64_t committed = offset_of(p, "committed_offset");
    struct dw_kstats_lag *l = &out[(*n)++];
    l->partition = (int32_t)id->valuedouble;
    l->committed = lag(end, committed >= 0 ? committed : offset_of(p, "lo_offset"));
    l->fetched = lag(end, offset_of(p, "next_offset"));
  }
  if (*n > 1)
    qsort(out, *n, sizeof(*out), by_partition);
out:
  cJSON_Delete(root);
  return rc;
}
