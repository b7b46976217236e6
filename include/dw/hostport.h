/* HOST:PORT, as the configuration and the command line write an address: a name or an IPv4
 * address, or an IPv6 address in brackets, then a colon and a decimal port. One parser for the
 * addresses the worker itself connects to or listens on (admin.listen, limits.store,
 * healthcheck --address), so they all accept and refuse the same texts; kafka.brokers is
 * librdkafka's to parse. Pure. */
#ifndef DW_HOSTPORT_H
#define DW_HOSTPORT_H

#include <stdint.h>

enum dw_hostport_error {
  DW_HOSTPORT_OK = 0,
  DW_HOSTPORT_FORM, /* no ":PORT", an unmatched bracket, an empty pair of brackets, or a host
                       of 256 characters or more or with a character other than letters,
                       digits, '.', '-', '_' (and in brackets ':' and '%' for a zone) */
  DW_HOSTPORT_V6,   /* an IPv6 address (a colon in the host) without brackets */
  DW_HOSTPORT_PORT, /* the port is not a decimal number from 0 to 65535 */
};

struct dw_hostport {
  char host[256]; /* without the brackets; "" for ":PORT" (callers decide if that may be) */
  uint16_t port;
  int bracketed; /* the host was written in brackets: an IPv6 address */
};

/* Splits text into out. The error says which rule the text breaks; out is then undefined. */
enum dw_hostport_error dw_hostport_parse(const char *text, struct dw_hostport *out);

#endif
