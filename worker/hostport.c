#include "dw/hostport.h"

#include <string.h>

/* A name, an IPv4 address, or in brackets an IPv6 address with its zone ("fe80::1%eth0"). Every
 * other character is refused, so that no host can change the meaning of a URL it is put in. */
static int host_char_ok(unsigned char c, int bracketed)
{
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
      c == '-' || c == '_')
    return 1;
  return bracketed && (c == ':' || c == '%');
}

enum dw_hostport_error dw_hostport_parse(const char *text, struct dw_hostport *out)
{
  const char *host, *colon;
  size_t len;
  if (!text)
    return DW_HOSTPORT_FORM;
  memset(out, 0, sizeof(*out));
  if (text[0] == '[') {
    const char *close = strchr(text, ']');
    if (!close || close == text + 1 || close[1] != ':')
      return DW_HOSTPORT_FORM;
    host = text + 1;
    len = (size_t)(close - host);
    colon = close + 1;
    out->bracketed = 1;
  } else {
    colon = strrchr(text, ':');
    if (!colon)
      return DW_HOSTPORT_FORM;
    host = text;
    len = (size_t)(colon - text);
  }
  if (len >= sizeof(out->host))
    return DW_HOSTPORT_FORM;
  if (!out->bracketed && memchr(host, ':', len))
    return DW_HOSTPORT_V6;
  for (size_t i = 0; i < len; i++)
    if (!host_char_ok((unsigned char)host[i], out->bracketed))
      return DW_HOSTPORT_FORM;
  const char *p = colon + 1;
  unsigned long port = 0;
  if (!*p)
    return DW_HOSTPORT_PORT;
  for (; *p; p++) {
    if (*p < '0' || *p > '9')
      return DW_HOSTPORT_PORT;
    port = port * 10 + (unsigned long)(*p - '0');
    if (port > 65535)
      return DW_HOSTPORT_PORT;
  }
  memcpy(out->host, host, len);
  out->host[len] = '\0';
  out->port = (uint16_t)port;
  return DW_HOSTPORT_OK;
}
