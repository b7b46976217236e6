/* Text from outside (the API's and the token endpoint's msg, response headers, transport
 * errors) made safe to keep: the one scrubber every such text passes through where it enters
 * the worker, so that what later reaches a log line, a dead-letter header, /readyz or a metric
 * carries no secret, no control character and no more than its buffer; and the small text
 * helpers the parsers share (visible cuts, reasons, trimming, character classes, the one UTF-8
 * validator). Pure. */
#ifndef DW_TEXT_H
#define DW_TEXT_H

#include <stddef.h>

/* What replaces a secret or a token. */
#define DW_TEXT_REDACTED "[redacted]"
/* What ends a text cut to fit (U+2026). */
#define DW_TEXT_CUT "\xE2\x80\xA6"

/* Copies the NUL-terminated src into dst (size bytes, always NUL-terminated when size > 0;
 * dst and src must not overlap) with:
 *  - every occurrence of each of the nsecrets strings (the app secret, the tokens the worker
 *    holds; NULL or "" entries are skipped) replaced by DW_TEXT_REDACTED, and a text that ends
 *    with the first 4 or more bytes of one (cut by an earlier bound) too;
 *  - anything that looks like a credential replaced as well: "Bearer <x>", Feishu tokens
 *    (t-, a-, u- followed by 16 or more token characters), JWTs ("eyJ..."), and the value of a
 *    quoted JSON key or a key= whose name holds "secret", "token", "ticket" or "password";
 *  - control characters (C0, DEL, C1) turned into spaces, so a text stays on one line;
 *  - a byte that starts no valid UTF-8 character replaced by U+FFFD, so the text is valid
 *    UTF-8 wherever it goes (a JSON log line, a header, /readyz's text/plain; charset=utf-8);
 *  - a text longer than dst cut at a UTF-8 character boundary and ended with DW_TEXT_CUT.
 * Returns the length written. */
size_t dw_text_scrub(char *dst, size_t size, const char *src, const char *const *secrets,
                     size_t nsecrets);

/* Copies the NUL-terminated src (NULL: "") into dst (size bytes, always NUL-terminated when
 * size > 0) as it is; a text longer than dst is cut at a UTF-8 character boundary and ends with
 * DW_TEXT_CUT, so a cut is always visible. Returns 0, or DW_ERANGE when the text was cut. For
 * texts only: an identifier that does not fit is an error, never cut. */
int dw_text_copy(char *dst, size_t size, const char *src);

/* snprintf into dst with the same visible cut as dw_text_copy. Returns 0, DW_ERANGE when the
 * text was cut, DW_EINVAL on a formatting error (dst is then ""). */
__attribute__((format(printf, 3, 4))) int dw_text_format(char *dst, size_t size,
                                                         const char *fmt, ...);

/* snprintf for the reasons a parser gives its caller ("why", "msg"): nothing when buf is NULL
 * or size is 0; a reason is a short fixed text, cut like snprintf's, without a mark. */
__attribute__((format(printf, 3, 4))) void dw_text_reason(char *buf, size_t size,
                                                          const char *fmt, ...);

/* The bytes of the NUL-terminated s without leading and trailing ASCII whitespace: *start and
 * *n. */
void dw_text_trim(const char *s, const char **start, size_t *n);

/* 1 when every byte of s is printable ASCII other than space (0x21-0x7E): safe in a header, a
 * log line and a cache key. */
int dw_text_graphic_ascii(const char *s);

/* UTF-8 as RFC 3629 defines it: no overlong forms, no UTF-16 surrogates, nothing above
 * U+10FFFF. dw_utf8_seq_len is the length of the valid sequence at s (n >= 1 bytes there), 0
 * if none starts there; dw_utf8_valid is 1 when all len bytes are valid UTF-8 (NUL included). */
size_t dw_utf8_seq_len(const unsigned char *s, size_t n);
int dw_utf8_valid(const void *buf, size_t len);

#endif
