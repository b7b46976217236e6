/* JSON reading and writing shared by the modules that hold one format each (event, answer,
 * result, auth): bounds checked before cJSON sees a text, exact-length parsing, integers that
 * are exact, text copied out whole-character. Pure. The JSON modules are the only ones that
 * include cJSON.h; this header names cJSON's struct without including it. */
#ifndef DW_JSON_H
#define DW_JSON_H

#include <stddef.h>
#include <stdint.h>

struct cJSON;

/* The deepest nesting of objects and arrays accepted from outside (cJSON recurses). */
#define DW_JSON_MAX_DEPTH 16

enum dw_json_verdict { DW_JSON_OK = 0, DW_JSON_NUL, DW_JSON_ESCAPED_NUL, DW_JSON_TOO_DEEP };

/* Looks at len bytes of JSON text without parsing them: a raw NUL byte, the escape \u0000 and
 * nesting deeper than DW_JSON_MAX_DEPTH outside strings are refused. */
enum dw_json_verdict dw_json_scan(const char *p, size_t len);

/* Parses exactly len bytes (not NUL-terminated) as one JSON value; only whitespace may follow
 * it. Returns the tree (the caller frees it with cJSON_Delete), or NULL with *trailing set when
 * a value was followed by something else. */
struct cJSON *dw_json_parse(const char *p, size_t len, int *trailing);

/* 1 with *out set when item is a number with no fraction strictly inside +-2^53, else 0. */
int dw_json_int(const struct cJSON *item, int64_t *out);

/* Copies a text (a message, not an ID) trimmed of ASCII whitespace, cut to fit (size > 0)
 * never inside a UTF-8 sequence; dst is "" when item is not a string. */
void dw_json_copy_text(char *dst, size_t size, const struct cJSON *item);

/* Prints root unformatted into a string the caller frees with free(); *len (when not NULL) is
 * its length. 0 or DW_ENOMEM. */
int dw_json_print(const struct cJSON *root, char **out, size_t *len);

#endif
