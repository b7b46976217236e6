/* The verdicts of `delivery-worker preflight`, without I/O: from what the probes found (the
 * cluster's metadata, the broker's offset.metadata.max.bytes, its ACLs, the token and scope
 * answers of the API) and the configuration, the checklist lines (ok, FAIL or skip; what;
 * detail; the fix of a failure) and which ACLs the chosen mode needs. worker/offline/preflight.c
 * runs the probes and prints the lines. */
#ifndef DW_CHECKLIST_H
#define DW_CHECKLIST_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dw/config.h"

enum dw_check_status { DW_CHECK_OK, DW_CHECK_FAIL, DW_CHECK_SKIP };

struct dw_check {
  enum dw_check_status status;
  char what[160];
  char detail[512];
  char fix[768]; /* failures only */
};

/* ---- ACLs ---- */

enum dw_acl_resource { DW_ACL_TOPIC, DW_ACL_GROUP, DW_ACL_TRANSACTIONAL_ID, DW_ACL_CLUSTER };
enum dw_acl_operation {
  DW_ACL_OP_ALL,
  DW_ACL_OP_READ,
  DW_ACL_OP_WRITE,
  DW_ACL_OP_DESCRIBE,
  DW_ACL_OP_OTHER, /* create, delete, alter, ...: never one the worker needs */
};

/* One ACL binding as the broker lists it (DescribeAcls). */
struct dw_acl {
  enum dw_acl_resource resource;
  const char *name;
  int prefixed; /* pattern type PREFIXED, else LITERAL */
  const char *principal; /* "User:alice", "User:*" */
  enum dw_acl_operation operation;
  int deny; /* permission DENY, else ALLOW */
};

/* One ACL the worker needs. */
struct dw_acl_need {
  enum dw_acl_resource resource;
  char name[512];
  int prefixed; /* any name starting with name (derived transactional ids) */
  enum dw_acl_operation operation;
};

#define DW_ACL_NEEDS_MAX 8

/* The ACLs cfg's mode needs: Read on the input topic (and the app_ticket topic), Write on the
 * results and dead-letter topics, Read on the group, and in exactly-once Write on the
 * transactional id (prefixed "<group_id>." when it is derived from host and pid). */
size_t dw_checklist_acl_needs(const struct dw_config *cfg, struct dw_acl_need *out, size_t max);

/* Is need granted to principal by acls (an ALLOW binding of that principal or User:*, of the
 * operation or ALL, on the name, "*" or a matching prefix; and no such DENY)? */
int dw_checklist_acl_granted(const struct dw_acl_need *need, const char *principal,
                             const struct dw_acl *acls, size_t n);

/* The principal the brokers see for cfg, "User:<sasl.username>" for SASL PLAIN and SCRAM,
 * written into buf; "" when it cannot be known from the configuration (SSL certificates,
 * OAUTHBEARER, GSSAPI, PLAINTEXT). */
void dw_checklist_principal(const struct dw_config *cfg, char *buf, size_t size);

/* ---- what the probes found ---- */

enum dw_probe_acl_state {
  DW_PROBE_ACL_LISTED,        /* acls holds the cluster's bindings */
  DW_PROBE_ACL_NO_AUTHORIZER, /* the brokers have none: everything is allowed */
  DW_PROBE_ACL_DENIED,        /* not allowed to describe ACLs */
  DW_PROBE_ACL_ERROR,         /* another error (error says) */
  DW_PROBE_ACL_NOT_RUN,
};

struct dw_probe_topic {
  int partitions; /* > 0 when it exists */
  int missing;    /* the broker says it does not exist */
  char error[256]; /* another error ("" when none) */
};

struct dw_probe {
  /* Metadata of the cluster. */
  int brokers_ok;
  int broker_count;
  char brokers_error[512];
  struct dw_probe_topic topics[4]; /* input, results, dead letters, app_ticket topic */
  /* DescribeConfigs of a broker: offset.metadata.max.bytes, -1 when not known. */
  int64_t metadata_max_bytes;
  char metadata_max_error[256];
  /* DescribeAcls. */
  enum dw_probe_acl_state acl_state;
  char acl_error[256];
  const struct dw_acl *acls;
  size_t acl_count;
  /* The token endpoint: token_ok, else the answer (http status 0: no answer). */
  int token_ran; /* 0: not tried (store apps) */
  int token_ok;
  long token_http;
  long token_code;
  char token_msg[256];
  /* The delivery-task endpoint for a task that cannot exist. */
  int scope_ran;
  long scope_http;
  long scope_code;
  char scope_msg[256];
};

#define DW_CHECKLIST_MAX 24

/* The checklist lines for cfg and what the probes found, in order: brokers, topics, ACLs,
 * offset.metadata.max.bytes, token, scope. Returns how many were written (at most max). */
size_t dw_checklist_build(const struct dw_config *cfg, const struct dw_probe *p,
                          struct dw_check *out, size_t max);

/* Prints the lines, one per check ("ok    what: detail", "FAIL  what: detail" and its fix
 * on the next line, "skip  what: detail"), and returns how many failed. */
size_t dw_checklist_print(FILE *out, const struct dw_check *c, size_t n);

#endif
