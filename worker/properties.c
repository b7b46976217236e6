/* Kafka client properties as Kafka users write them: the Java-style properties file that kcat
 * -F and Kafka's own clients read, parsed here without I/O (config.c reads the file and
 * applies the entries), and the scope of a property in librdkafka's own table (kafka.c prints
 * the table), so that shared properties reach only the client they apply to. */
#include "dw/properties.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dw/common.h"

static int is_blank(char c)
{
  return c == ' ' || c == '\t' || c == '\f';
}

static int hex_value(char c)
{
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Appends code point cp as UTF-8 (4 bytes beyond U+FFFF: a surrogate pair's). */
static size_t put_utf8(char *out, unsigned cp)
{
  if (cp >= 0x10000) {
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
  }
  if (cp < 0x80) {
    out[0] = (char)cp;
    return 1;
  }
  if (cp < 0x800) {
    out[0] = (char)(0xc0 | (cp >> 6));
    out[1] = (char)(0x80 | (cp & 0x3f));
    return 2;
  }
  out[0] = (char)(0xe0 | (cp >> 12));
  out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
  out[2] = (char)(0x80 | (cp & 0x3f));
  return 3;
}

/* The four hex digits at *pp (advanced past them), or -1. */
static long hex4(const char **pp, const char *end)
{
  long v = 0;
  for (int i = 0; i < 4; i++) {
    int d = *pp < end ? hex_value(**pp) : -1;
    if (d < 0)
      return -1;
    v = v * 16 + d;
    (*pp)++;
  }
  return v;
}

/* Unescapes [*pp, end) into out until an unescaped stop character (when stop is non-NULL) or
 * the end; trailing unescaped blanks are dropped. *pp is left on the stop character. Returns
 * the length written, or -1 for a bad \u escape. out holds end - *pp + 1 bytes. */
static long unescape(const char **pp, const char *end, const char *stop, char *out)
{
  const char *p = *pp;
  size_t n = 0, keep = 0;
  while (p < end) {
    char c = *p;
    if (stop && strchr(stop, c)) {
      break;
    } else if (c == '\\' && p + 1 < end) {
      c = p[1];
      p += 2;
      if (c == 'u') {
        long cp = hex4(&p, end);
        if (cp <= 0)
          return -1; /* \u0000 would end the string early */
        if (cp >= 0xdc00 && cp <= 0xdfff)
          return -1; /* a low surrogate alone */
        if (cp >= 0xd800 && cp <= 0xdbff) { /* UTF-16's pair, as Java writes U+10000 on */
          long lo = end - p >= 2 && p[0] == '\\' && p[1] == 'u' ? (p += 2, hex4(&p, end)) : -1;
          if (lo < 0xdc00 || lo > 0xdfff)
            return -1;
          cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        n += put_utf8(out + n, (unsigned)cp);
      } else {
        out[n++] = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c == 'f' ? '\f' : c;
      }
      keep = n;
      continue;
    } else {
      out[n++] = c;
      p++;
      if (!is_blank(c))
        keep = n;
      continue;
    }
  }
  *pp = p;
  out[keep] = '\0';
  return (long)keep;
}

/* The error of the entry on line: what is wrong in err, the line in *at. */
struct perr {
  char *err;
  size_t errlen;
  int *at;
};

static int fail(const struct perr *e, int line, const char *what)
{
  if (e->err && e->errlen)
    snprintf(e->err, e->errlen, "%s", what);
  if (e->at)
    *e->at = line;
  return DW_EINVAL;
}

/* One logical line [s, end) starting on line. */
static int parse_entry(const char *s, const char *end, int line, char *name, char *value,
                       dw_properties_cb cb, void *ctx, const struct perr *e)
{
  const char *p = s;
  long n = unescape(&p, end, "=:", name);
  if (n < 0)
    return fail(e, line, "a \\u escape needs four hex digits (not \\u0000; a surrogate only "
                         "in a pair)");
  if (p == end)
    return fail(e, line,
                "expected name=value or name: value (write \\= or \\: for one inside a name)");
  if (n == 0)
    return fail(e, line, "the name before the separator is empty");
  p++;
  while (p < end && is_blank(*p))
    p++;
  if (unescape(&p, end, NULL, value) < 0)
    return fail(e, line, "a \\u escape needs four hex digits (not \\u0000; a surrogate only "
                         "in a pair)");
  return cb(ctx, line, name, value);
}

int dw_properties_parse(const char *text, size_t len, dw_properties_cb cb, void *ctx, int *at,
                        char *err, size_t errlen)
{
  const struct perr pe = {err, errlen, at}, *e = &pe;
  const char *nul = memchr(text, '\0', len);
  const char *p = text, *end = text + len;
  char *buf = NULL, *name = NULL, *value = NULL;
  size_t n = 0;
  int line = 0, start = 0, rc = 0;
  if (nul) {
    int nl = 1;
    for (const char *q = text; q < nul; q++)
      nl += *q == '\n';
    return fail(e, nl, "holds a NUL byte (not a text file?)");
  }
  buf = malloc(DW_PROPERTIES_LINE_MAX + 1);
  name = malloc(DW_PROPERTIES_LINE_MAX + 1);
  value = malloc(DW_PROPERTIES_LINE_MAX + 1);
  if (!buf || !name || !value) {
    rc = fail(e, 0, "out of memory");
    rc = DW_ENOMEM;
    goto out;
  }
  while (p < end) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *next = eol ? eol + 1 : end;
    size_t slashes = 0;
    if (!eol)
      eol = end;
    if (eol > p && eol[-1] == '\r')
      eol--;
    line++;
    while (p < eol && is_blank(*p))
      p++;
    if (n == 0) {
      if (p == eol || *p == '#' || *p == '!') {
        p = next;
        continue;
      }
      start = line;
    }
    if ((size_t)(eol - p) > DW_PROPERTIES_LINE_MAX - n) {
      char what[96];
      snprintf(what, sizeof(what), "longer than %d bytes", DW_PROPERTIES_LINE_MAX);
      rc = fail(e, start, what);
      goto out;
    }
    memcpy(buf + n, p, (size_t)(eol - p));
    n += (size_t)(eol - p);
    while (slashes < n && buf[n - 1 - slashes] == '\\')
      slashes++;
    p = next;
    if (slashes % 2 == 1 && p < end) {
      n--; /* continued: the next line's leading blanks are dropped */
      continue;
    }
    if (slashes % 2 == 1)
      n--; /* a backslash at the very end continues nothing */
    rc = parse_entry(buf, buf + n, start, name, value, cb, ctx, e);
    n = 0;
    if (rc)
      goto out;
  }
out:
  free(buf);
  free(name);
  free(value);
  return rc;
}

enum dw_properties_scope dw_properties_scope(const char *table, const char *name)
{
  size_t len = strlen(name);
  const char *p = table;
  if (len == 0)
    return DW_PROPERTIES_UNKNOWN;
  while (p && *p) {
    if (strncmp(p, name, len) == 0 && (p[len] == ' ' || p[len] == '|')) {
      const char *q = p + len;
      while (*q == ' ')
        q++;
      if (*q == '|') {
        const char *r;
        for (q++; *q == ' '; q++)
          ;
        for (r = q + 1; *r == ' '; r++)
          ;
        if (*r != '|') /* the header row: "C/P |" */
          ;
        else if (*q == '*')
          return DW_PROPERTIES_BOTH;
        else if (*q == 'C')
          return DW_PROPERTIES_CONSUMER;
        else if (*q == 'P')
          return DW_PROPERTIES_PRODUCER;
      }
    }
    p = strchr(p, '\n');
    if (p)
      p++;
  }
  return DW_PROPERTIES_UNKNOWN;
}
