/* The scrubber of text from outside. Upstream answers are free text: a token endpoint that
 * quotes the request it refused puts the app secret in its msg, a gateway may echo the
 * Authorization header, a hostile answer may carry terminal escapes or newlines that forge log
 * lines. The token manager and the poller pass every such text through dw_text_scrub where they
 * store it, so everything downstream (logs, dead-letter headers, /readyz, metrics) is clean. One
 * pass over the input, never more output than the buffer. The small helpers at the end serve
 * the parsers of the JSON formats (event.c, answer.c, auth.c). */
#include "dw/text.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "dw/common.h"

#define SECRET_PREFIX_MIN 4 /* a text ending in this much of a secret was cut inside it */
#define TOKEN_BODY_MIN 16   /* t-/a-/u- tokens: shorter runs are words ("t-shirt") */
#define JWT_BODY_MIN 20

struct out {
  char *dst;
  size_t size, len;
  int full;
};

static void put(struct out *o, const char *s, size_t n)
{
  if (o->full)
    return;
  size_t room = o->size - 1 - o->len;
  if (n > room) {
    n = room;
    o->full = 1;
  }
  memcpy(o->dst + o->len, s, n);
  o->len += n;
}

static int is_token_char(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_' || c == '.' || c == '~' || c == '+' || c == '/' || c == '=';
}

static int is_word_char(unsigned char c)
{
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

static size_t token_run(const char *s)
{
  size_t n = 0;
  while (is_token_char((unsigned char)s[n]))
    n++;
  return n;
}

static int lower(int c)
{
  return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static int starts_with_nocase(const char *s, const char *prefix)
{
  for (; *prefix; s++, prefix++)
    if (lower((unsigned char)*s) != *prefix)
      return 0;
  return 1;
}

static int contains_nocase(const char *s, size_t n, const char *needle)
{
  size_t k = strlen(needle);
  for (size_t i = 0; i + k <= n; i++) {
    size_t j = 0;
    while (j < k && lower((unsigned char)s[i + j]) == needle[j])
      j++;
    if (j == k)
      return 1;
  }
  return 0;
}

/* The length of the secret that starts at s, 0 if none; *tail set when the text ends with the
 * start of one instead. */
static size_t secret_at(const char *s, size_t left, const char *const *secrets, size_t n,
                        int *tail)
{
  *tail = 0;
  for (size_t i = 0; i < n; i++) {
    const char *sec = secrets[i];
    /* Both matches below start with the first byte: comparing it first spares a strlen of
     * every secret at every byte of the text (this runs for each byte scrubbed). */
    if (!sec || sec[0] == '\0' || sec[0] != s[0])
      continue;
    size_t k = strlen(sec);
    if (k <= left && memcmp(s, sec, k) == 0)
      return k;
    if (left < k && left >= SECRET_PREFIX_MIN && memcmp(s, sec, left) == 0) {
      *tail = 1;
      return left;
    }
  }
  return 0;
}

/* A key naming a credential followed by its value, at s (a word start): "key": "v", \"key\":
 * \"v\" or key=v. Returns the bytes of the key and separator (kept), *value the bytes of the
 * value (redacted); 0 when s is no such key. */
static size_t credential_key(const char *s, int quoted, size_t *value)
{
  size_t k = 0, i;
  while (is_word_char((unsigned char)s[k]) || s[k] == '-')
    k++;
  if (k == 0 || !(contains_nocase(s, k, "secret") || contains_nocase(s, k, "token") ||
                  contains_nocase(s, k, "ticket") || contains_nocase(s, k, "password")))
    return 0;
  i = k;
  if (quoted) {
    while (s[i] == '"' || s[i] == '\'' || s[i] == '\\')
      i++;
    if (i == k)
      return 0;
    while (s[i] == ' ')
      i++;
    if (s[i] != ':')
      return 0;
  } else if (s[i] != '=') {
    return 0;
  }
  i++;
  while (s[i] == ' ' || s[i] == '"' || s[i] == '\'' || s[i] == '\\')
    i++;
  size_t v = 0;
  while (s[i + v] && !strchr("\"'\\,;&}] \t\r\n", s[i + v]))
    v++;
  *value = v;
  return v ? i : 0;
}

/* Backs the output off to a character boundary with room for the cut mark. */
static void end_cut(struct out *o)
{
  size_t mark = sizeof(DW_TEXT_CUT) - 1;
  size_t n = o->len;
  if (o->size - 1 < mark) { /* no room for the mark: just a whole character */
    n = o->size - 1;
    mark = 0;
  } else if (n > o->size - 1 - mark) {
    n = o->size - 1 - mark;
  }
  /* n may split a character: drop the incomplete one. */
  size_t j = n;
  while (j > 0 && ((unsigned char)o->dst[j - 1] & 0xC0) == 0x80)
    j--;
  if (j > 0) {
    unsigned char lead = (unsigned char)o->dst[j - 1];
    size_t need = lead >= 0xF0 ? 4 : lead >= 0xE0 ? 3 : lead >= 0xC0 ? 2 : 1;
    if (n - (j - 1) < need)
      n = j - 1;
  }
  o->len = n;
  o->full = 0;
  put(o, DW_TEXT_CUT, mark);
}

size_t dw_text_scrub(char *dst, size_t size, const char *src, const char *const *secrets,
                     size_t nsecrets)
{
  struct out o = {.dst = dst, .size = size};
  size_t n, i = 0;

  if (!dst || size == 0)
    return 0;
  if (!src)
    src = "";
  n = strlen(src);
  while (i < n && !o.full) {
    const char *s = src + i;
    unsigned char c = (unsigned char)*s;
    int start = i == 0 || !is_word_char((unsigned char)s[-1]);
    int tail;
    size_t k = secret_at(s, n - i, secrets, nsecrets, &tail), v;
    if (k) {
      put(&o, DW_TEXT_REDACTED, sizeof(DW_TEXT_REDACTED) - 1);
      i += k;
      continue;
    }
    if (start && (k = credential_key(s, i > 0 && strchr("\"'", s[-1]) != NULL, &v))) {
      put(&o, s, k);
      put(&o, DW_TEXT_REDACTED, sizeof(DW_TEXT_REDACTED) - 1);
      i += k + v;
      continue;
    }
    if (start && starts_with_nocase(s, "bearer ")) {
      k = 7;
      while (s[k] == ' ')
        k++;
      if ((v = token_run(s + k)) > 0) {
        put(&o, s, k);
        put(&o, DW_TEXT_REDACTED, sizeof(DW_TEXT_REDACTED) - 1);
        i += k + v;
        continue;
      }
    }
    if (start && (c == 't' || c == 'a' || c == 'u') && s[1] == '-' &&
        (v = token_run(s + 2)) >= TOKEN_BODY_MIN) {
      put(&o, s, 2);
      put(&o, DW_TEXT_REDACTED, sizeof(DW_TEXT_REDACTED) - 1);
      i += 2 + v;
      continue;
    }
    if (start && strncmp(s, "eyJ", 3) == 0 && (v = token_run(s)) >= JWT_BODY_MIN) {
      put(&o, DW_TEXT_REDACTED, sizeof(DW_TEXT_REDACTED) - 1);
      i += v;
      continue;
    }
    if (c < 0x20 || c == 0x7F) {
      put(&o, " ", 1);
      i++;
      continue;
    }
    if (c == 0xC2 && (unsigned char)s[1] >= 0x80 && (unsigned char)s[1] <= 0x9F) {
      put(&o, " ", 1); /* a C1 control (U+0080..U+009F), e.g. the one-byte CSI */
      i += 2;
      continue;
    }
    if (c >= 0x80) { /* a whole character, or U+FFFD for a byte that starts none */
      size_t len = dw_utf8_seq_len((const unsigned char *)s, n - i);
      if (len == 0) {
        put(&o, "\xEF\xBF\xBD", 3);
        i++;
      } else {
        put(&o, s, len);
        i += len;
      }
      continue;
    }
    put(&o, s, 1);
    i++;
  }
  if (o.full) /* something did not fit */
    end_cut(&o);
  dst[o.len] = '\0';
  return o.len;
}

int dw_text_copy(char *dst, size_t size, const char *src)
{
  struct out o = {.dst = dst, .size = size};
  size_t n;
  if (!dst || size == 0)
    return DW_ERANGE;
  if (!src)
    src = "";
  n = strlen(src);
  put(&o, src, n);
  if (o.full)
    end_cut(&o);
  dst[o.len] = '\0';
  return n < size ? 0 : DW_ERANGE;
}

int dw_text_format(char *dst, size_t size, const char *fmt, ...)
{
  va_list ap;
  int n;
  if (!dst || size == 0)
    return DW_ERANGE;
  va_start(ap, fmt);
  n = vsnprintf(dst, size, fmt, ap);
  va_end(ap);
  if (n < 0) {
    dst[0] = '\0';
    return DW_EINVAL;
  }
  if ((size_t)n < size)
    return 0;
  struct out o = {.dst = dst, .size = size, .len = size - 1};
  end_cut(&o);
  dst[o.len] = '\0';
  return DW_ERANGE;
}

void dw_text_reason(char *buf, size_t size, const char *fmt, ...)
{
  va_list ap;

  if (!buf || size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(buf, size, fmt, ap);
  va_end(ap);
}

static int is_ascii_space(unsigned char c)
{
  return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

/* The bytes of s without leading and trailing ASCII whitespace. */
void dw_text_trim(const char *s, const char **start, size_t *n)
{
  size_t len = strlen(s);
  while (len > 0 && is_ascii_space((unsigned char)*s)) {
    s++;
    len--;
  }
  while (len > 0 && is_ascii_space((unsigned char)s[len - 1]))
    len--;
  *start = s;
  *n = len;
}

/* Printable ASCII other than space: safe in a header, a log line and a cache key. */
int dw_text_graphic_ascii(const char *s)
{
  for (; *s; s++)
    if ((unsigned char)*s < 0x21 || (unsigned char)*s > 0x7E)
      return 0;
  return 1;
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
