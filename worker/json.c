/* JSON as the worker reads it from outside and writes it: the checks every text passes
 * before cJSON sees it (no NUL, no escaped NUL, bounded nesting, since cJSON recurses and keeps
 * NUL-terminated strings), parsing of an exact byte range, integers that are exact, and text
 * copied out whole-character. The modules of the formats (event.c, answer.c, result.c, auth.c)
 * build on these. */
#include "dw/json.h"

#include "dw/common.h"
#include "dw/text.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* Looks at JSON text without parsing it: raw NUL bytes, the escape \u0000 (cJSON decodes it
 * into its NUL-terminated strings, so "a\u0000b" would silently read as "a"), and the deepest
 * nesting of objects and arrays outside strings. Strings are skipped by the same rule JSON uses
 * (a quote ends one unless escaped), so for valid JSON the depth is exact; invalid JSON is
 * rejected by cJSON anyway, within its own CJSON_NESTING_LIMIT. */
enum dw_json_verdict dw_json_scan(const char *p, size_t len)
{
  size_t depth = 0;
  int in_string = 0;

  if (memchr(p, '\0', len))
    return DW_JSON_NUL;
  for (size_t i = 0; i < len; i++) {
    char c = p[i];
    if (in_string) {
      if (c == '\\') {
        if (len - i > 5 && p[i + 1] == 'u' && p[i + 2] == '0' && p[i + 3] == '0' &&
            p[i + 4] == '0' && p[i + 5] == '0')
          return DW_JSON_ESCAPED_NUL;
        i++; /* the escaped character cannot end the string */
      } else if (c == '"') {
        in_string = 0;
      }
      continue;
    }
    if (c == '"') {
      in_string = 1;
    } else if (c == '{' || c == '[') {
      if (++depth > DW_JSON_MAX_DEPTH)
        return DW_JSON_TOO_DEEP;
    } else if (c == '}' || c == ']') {
      if (depth > 0)
        depth--;
    }
  }
  return DW_JSON_OK;
}

static int is_json_space(char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* Parses exactly len bytes as one JSON value. cJSON 1.7.15's require_null_terminated demands a
 * NUL byte inside the given length (it fails when the value ends exactly at len), so it is
 * off, and the end pointer is checked here instead: only whitespace may follow the value. */
cJSON *dw_json_parse(const char *p, size_t len, int *trailing)
{
  const char *end = NULL;
  cJSON *root;

  *trailing = 0;
  root = cJSON_ParseWithLengthOpts(p, len, &end, 0);
  if (!root)
    return NULL;
  if (!end || end < p || end > p + len) {
    cJSON_Delete(root);
    return NULL;
  }
  while (end < p + len && is_json_space(*end))
    end++;
  if (end != p + len) {
    *trailing = 1;
    cJSON_Delete(root);
    return NULL;
  }
  return root;
}

/* cJSON keeps numbers as doubles (its strtod has already read the text). An integer here is a
 * number with no fraction strictly inside +-2^53, where every integer is exact; 2^53 itself is
 * excluded because 2^53 + 1 rounds to it. So 1e300, 1.5 and 9007199254740993 are not integers.
 * The comparisons are written so that NaN fails them. */
int dw_json_int(const cJSON *item, int64_t *out)
{
  const double limit = 9007199254740992.0; /* 2^53 */
  double d;
  int64_t v;

  if (!cJSON_IsNumber(item))
    return 0;
  d = item->valuedouble;
  if (!(d > -limit && d < limit))
    return 0;
  v = (int64_t)d;
  if ((double)v != d)
    return 0;
  *out = v;
  return 1;
}

/* Copies text (a message, not an ID), trimmed, cut to fit and never in the middle of a UTF-8
 * sequence so the copy stays valid UTF-8 if the source was. dst is "" for a non-string. */
void dw_json_copy_text(char *dst, size_t size, const cJSON *item)
{
  const char *s;
  size_t n;

  if (size == 0)
    return;
  dst[0] = '\0';
  if (!cJSON_IsString(item) || !item->valuestring)
    return;
  dw_text_trim(item->valuestring, &s, &n);
  if (n >= size) {
    n = size - 1;
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
      n--;
  }
  memcpy(dst, s, n);
  dst[n] = '\0';
}

/* Prints root unformatted into a malloc'd string for the caller. */
int dw_json_print(const cJSON *root, char **out, size_t *len)
{
  char *text = cJSON_PrintUnformatted(root);
  if (!text)
    return DW_ENOMEM;
  *out = text;
  if (len)
    *len = strlen(text);
  return 0;
}
