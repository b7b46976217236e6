"""Keeps third-party libraries inside the modules that wrap them.

  layering.py ROOT     checks worker/ and include/dw/ of the tree at ROOT; each violation is
                       printed as FILE:LINE: what, and the exit status is 1 if there is any
  layering.py --self   checks a small tree with known violations, then exits

Two rules, from docs/design.md ("Layering"):

  1. A library's header is included only by the modules that wrap it (INCLUDES below), and by
     no header in include/dw/.
  2. No public header (include/dw/*.h) names a library's type, except the headers of the
     modules allowed to include that library (TYPES below): the rest of the worker sees the
     project's own types.

Comments and string literals are ignored, so a header may still say which library call it
mirrors."""
import os
import re
import sys
import tempfile

# Library header -> the files (by name, anywhere under worker/) allowed to include it.
KAFKA = ("kafka.c", "consumer.c", "producer.c")
OFFLINE = ("ops.c", "replay.c", "redrive.c", "preflight.c")
INCLUDES = {
    # The Kafka modules; oidc.c hooks the token refresh into librdkafka; the offline commands
    # (replay, redrive, preflight and what they share) talk to the cluster once and exit, off any loop.
    "librdkafka/rdkafka.h": KAFKA + ("oidc.c",) + OFFLINE,
    # The HTTP client; oidc.c fetches Kafka's OAUTHBEARER token with one easy transfer on
    # librdkafka's background thread, never on the loop; healthcheck.c is its own short-lived
    # process with one easy transfer and no loop.
    "curl/curl.h": ("http.c", "oidc.c", "healthcheck.c"),
    # The JSON codec (events, answers, results, token answers, the JSON helpers) and the reader
    # of librdkafka's statistics.
    "cjson/cJSON.h": ("json.c", "event.c", "answer.c", "result.c", "auth.c", "kstats.c"),
    # The shared budget store's client.
    "hiredis/hiredis.h": ("store.c",),
    "hiredis/async.h": ("store.c",),
    "hiredis/adapters/libuv.h": ("store.c",),
}
# Type pattern -> the public headers (in include/dw/) allowed to name such types.
TYPES = {
    r"\b(?:struct\s+rd_kafka_\w+|rd_kafka_\w+_t)\b": ("kafka.h", "oidc.h", "ops.h"),
    r"\b(?:CURL\w*|struct\s+curl_\w+)\b": ("http.h",),
}
INCLUDE_RE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')


def strip(text):
    """The text with comments and string and character literals blanked, lines kept."""
    def blank(m):
        return re.sub(r"[^\n]", " ", m.group(0))
    return re.sub(r'/\*.*?\*/|//[^\n]*|"(?:\\.|[^"\\\n])*"|\'(?:\\.|[^\'\\\n])*\'', blank, text,
                  flags=re.S)


def sources(root):
    """worker/ and its folders (.c, .h), then include/dw/ (.h), as paths relative to root."""
    for top, exts in (("worker", (".c", ".h")), (os.path.join("include", "dw"), (".h",))):
        for folder, dirs, names in sorted(os.walk(os.path.join(root, top))):
            dirs.sort()
            for name in sorted(names):
                if name.endswith(exts):
                    yield os.path.relpath(os.path.join(folder, name), root).replace(os.sep, "/")


def check(root):
    found = []
    for rel in sources(root):
        with open(os.path.join(root, rel), encoding="utf-8") as f:
            raw = f.read()
        header = rel.startswith("include/")
        name = os.path.basename(rel)
        for n, line in enumerate(raw.split("\n"), 1):
            m = INCLUDE_RE.match(line)
            if m and m.group(1) in INCLUDES and (header or name not in INCLUDES[m.group(1)]):
                found.append("%s:%d: includes <%s>, which only %s may include"
                             % (rel, n, m.group(1), ", ".join(INCLUDES[m.group(1)])))
        if not header:
            continue
        for n, line in enumerate(strip(raw).split("\n"), 1):
            for pattern, allowed in TYPES.items():
                m = re.search(pattern, line)
                if m and name not in allowed:
                    found.append("%s:%d: names %s in a public header (allowed only in %s)"
                                 % (rel, n, m.group(0), ", ".join(allowed)))
    return found


def self_test():
    with tempfile.TemporaryDirectory() as root:
        nested = "/".join(("worker", "group"))  # a module folder inside worker/
        os.makedirs(os.path.join(root, nested))
        os.makedirs(os.path.join(root, "include", "dw"))
        files = {
            "worker/poller.c": '#include "dw/poller.h"\n#include <curl/curl.h>\n',
            "worker/http.c": "#include <curl/curl.h>\n",
            nested + "/replay.c": "#include <librdkafka/rdkafka.h>\n",
            nested + "/plan.c": "\n#include <librdkafka/rdkafka.h>\n",
            "include/dw/poller.h": "/* like rd_kafka_t, CURL */\nstruct rd_kafka_s *rk;\n"
                                   'const char *s = "CURLM";\n',
            "include/dw/http.h": "#include <curl/curl.h>\nCURLM *multi;\n",
            "include/dw/kafka.h": "struct rd_kafka_conf_s *conf;\n",
        }
        for rel, text in files.items():
            with open(os.path.join(root, rel), "w", encoding="utf-8") as f:
                f.write(text)
        got = [v.split(": ")[0] for v in check(root)]
        want = ["include/dw/http.h:1", "include/dw/poller.h:2", nested + "/plan.c:2",
                "worker/poller.c:2"]
        if sorted(got) != want:
            raise SystemExit("FAIL: self-test found %s, expected %s" % (got, want))


def main(argv):
    self_test()
    if argv[1:] == ["--self"]:
        print("layering: self-test passed")
        return 0
    if len(argv) != 2:
        raise SystemExit(__doc__)
    found = check(argv[1])
    for v in found:
        print(v)
    if found:
        print("FAIL: %d layering violation(s); see docs/design.md#layering" % len(found))
        return 1
    print("layering: third-party headers and types stay in their modules")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
