/* Kafka client properties as Kafka users write them, without I/O: the Java-style properties
 * file (as kcat -F and Kafka's clients read it) and librdkafka's scope of a property (consumer,
 * producer or both) read from the table rd_kafka_conf_properties_show prints. The config module
 * reads the file and calls the parser; the Kafka module produces the table. */
#ifndef DW_PROPERTIES_H
#define DW_PROPERTIES_H

#include <stddef.h>

/* Bounds of a properties file: its size, and one logical line (continuations joined). */
#define DW_PROPERTIES_FILE_MAX (1 << 20)
#define DW_PROPERTIES_LINE_MAX 70000

/* Called once per entry in file order with NUL-terminated name and value (both unescaped) and
 * the line the entry starts on. A non-zero return stops the parse and is returned. */
typedef int (*dw_properties_cb)(void *ctx, int line, const char *name, const char *value);

/* Parses len bytes of text: one `name=value` or `name: value` per line; the first unescaped
 * '=' or ':' separates; spaces and tabs around name and value are trimmed; lines whose first
 * non-blank character is '#' or '!' are comments; a line ending in an odd number of
 * backslashes continues on the next (leading blanks there dropped); escapes \t \n \r \f \\ and
 * \uXXXX (as UTF-8) are decoded, any other escaped character stands for itself (\= \: \# \!
 * \ ). Returns 0, the callback's non-zero return, or DW_EINVAL (DW_ENOMEM) with what is
 * wrong in err and its line in *at (a NUL byte, a line above DW_PROPERTIES_LINE_MAX, no
 * separator, an empty name, a bad \u); at may be NULL. */
int dw_properties_parse(const char *text, size_t len, dw_properties_cb cb, void *ctx, int *at,
                        char *err, size_t errlen);

enum dw_properties_scope {
  DW_PROPERTIES_UNKNOWN = 0, /* not in the table: librdkafka will refuse it */
  DW_PROPERTIES_BOTH,        /* '*': consumer and producer */
  DW_PROPERTIES_CONSUMER,    /* 'C' */
  DW_PROPERTIES_PRODUCER,    /* 'P' */
};

/* The scope of property name in table, the text of rd_kafka_conf_properties_show (rows
 * "name | C/P | ..."; both the global and the topic table). */
enum dw_properties_scope dw_properties_scope(const char *table, const char *name);

#endif
