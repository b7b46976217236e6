#!/usr/bin/env bash
# Run a real single-node Apache Kafka 3.9.x broker (KRaft combined mode) for tests.
#
#   kafka.sh fetch                              resolve the broker jars into the cache (mvn)
#   kafka.sh start  [--port 9092|0] [--dir DIR] start a fresh broker, wait until it serves
#                                               metadata, print KAFKA_BOOTSTRAP= and KAFKA_DIR=
#   kafka.sh stop   [--port P] [--dir DIR]      SIGTERM (SIGKILL after 30 s), remove DIR
#   kafka.sh status [--port P] [--dir DIR]      exit 0 and print KAFKA_BOOTSTRAP= if running
#
# --port 0 picks a free port. DIR defaults to ${TMPDIR:-/tmp}/dw-kafka-<port>.
# start --sasl-ssl also opens a SASL_SSL listener on a free port, with a CA and a broker
# certificate (for 127.0.0.1 and localhost) generated with openssl into DIR/tls, and the
# mechanisms SCRAM-SHA-512 (user dwscram, credential stored at format time), PLAIN (user
# dwplain) and OAUTHBEARER (the broker's unsecured JWS validator: any principal, alg "none",
# for tests only). It also prints KAFKA_SASL_SSL_BOOTSTRAP=, KAFKA_CA_FILE= (the CA's PEM) and
# KAFKA_SASL_USERS= (a file of "MECHANISM USER PASSWORD" lines; random passwords, mode 600).
# start --sasl-ssl --oidc-jwks URL [--oidc-issuer ISS] [--oidc-audience AUD] makes that listener's
# OAUTHBEARER validate real JWTs instead (Kafka's OAuthBearerValidatorCallbackHandler: signature
# against the JWKS at URL, and iss/aud when given); the JVM runs with
# -Dorg.apache.kafka.sasl.oauthbearer.allowed.urls=URL, so the broker fetches no other URL. The
# OAUTHBEARER line of KAFKA_SASL_USERS is then left out (a token comes from the OIDC provider).
# tests/tools/oidc_provider.py is such a provider; --oidc-jwks implies --sasl-ssl.
# Only the KAFKA_*= lines go to stdout (so `eval "$(kafka.sh start --port 0)"` works);
# progress and errors go to stderr.
#
# Environment:
#   DW_KAFKA_CACHE     jar cache (default $HOME/.cache/delivery-worker/kafka-3.9.x); jars in ./libs
#   DW_KAFKA_VERSION   Kafka version to resolve (default 3.9.1)
#   DW_KAFKA_HEAP_OPTS JVM heap options (default "-Xms128m -Xmx512m")
#   DW_KAFKA_JVM_OPTS  extra JVM options (default "-XX:+UseSerialGC")
#   DW_KAFKA_START_TIMEOUT seconds to wait for readiness (default 90)
#   DW_KAFKA_EXTRA_PROPS   extra server.properties lines, newline separated
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
POM="$SCRIPT_DIR/pom.xml"
KAFKA_VERSION=${DW_KAFKA_VERSION:-3.9.1}
CACHE=${DW_KAFKA_CACHE:-$HOME/.cache/delivery-worker/kafka-3.9.x}
LIBS="$CACHE/libs"
STAMP="$LIBS/.dw-fetch-complete"
START_TIMEOUT=${DW_KAFKA_START_TIMEOUT:-90}
STOP_TIMEOUT=30
MARKER=.dw-kafka  # present in every directory this script created; nothing else is ever removed

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
die() { printf 'kafka.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# ---------------------------------------------------------------- prerequisites

need_java() {
    command -v java >/dev/null 2>&1 ||
        die "java not found; install Java 17: apt-get install openjdk-17-jre-headless"
    local v major
    v=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
    major=${v%%.*}
    [[ $major == 1 ]] && major=$(echo "$v" | cut -d. -f2)
    [[ $major =~ ^[0-9]+$ ]] || die "cannot parse java version from: $(java -version 2>&1 | head -n1)"
    ((major >= 11)) ||
        die "java $v is too old for Kafka $KAFKA_VERSION (need 11+, 17 recommended): apt-get install openjdk-17-jre-headless"
}

need_mvn() {
    command -v mvn >/dev/null 2>&1 ||
        die "mvn not found (needed once to fetch the Kafka jars into $LIBS): apt-get install maven openjdk-17-jre-headless"
}

need_openssl() {
    command -v openssl >/dev/null 2>&1 ||
        die "openssl not found (needed by --sasl-ssl to make the CA and certificate): apt-get install openssl"
}

need_kcat() {
    command -v kcat >/dev/null 2>&1 ||
        die "kcat not found (used to check that the broker is ready): apt-get install kcat"
}

# ---------------------------------------------------------------- jar cache

stamp_value() {
    printf 'kafka=%s pom=%s\n' "$KAFKA_VERSION" "$(sha256sum "$POM" | cut -d' ' -f1)"
}

libs_ok() {
    [[ -f $STAMP ]] && [[ $(cat "$STAMP") == "$(stamp_value)" ]] &&
        [[ -f $LIBS/kafka_2.13-$KAFKA_VERSION.jar ]]
}

fetch() {
    if libs_ok; then
        log "jars for Kafka $KAFKA_VERSION already in $LIBS"
        return 0
    fi
    need_mvn
    need_java
    mkdir -p "$CACHE"
    local tmp
    tmp=$(mktemp -d "$CACHE/libs.tmp.XXXXXX")
    chmod 755 "$tmp"
    log "resolving Kafka $KAFKA_VERSION jars with mvn into $LIBS (first run only)"
    local t0=$SECONDS
    if ! mvn -q -B -f "$POM" -Dkafka.version="$KAFKA_VERSION" \
        dependency:copy-dependencies -DoutputDirectory="$tmp" >"$tmp.mvn.log" 2>&1; then
        tail -n 40 "$tmp.mvn.log" >&2
        rm -rf "$tmp" "$tmp.mvn.log"
        die "mvn could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION (is Maven Central reachable? does the version exist?)"
    fi
    rm -f "$tmp.mvn.log"
    [[ -f $tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || { rm -rf "$tmp"; die "mvn finished but kafka_2.13-$KAFKA_VERSION.jar is missing"; }
    stamp_value >"$tmp/.dw-fetch-complete"
    if libs_ok; then # someone else finished first
        rm -rf "$tmp"
    else
        rm -rf "$LIBS"
        mv "$tmp" "$LIBS" || { rm -rf "$tmp"; libs_ok || die "could not move jars into $LIBS"; }
    fi
    log "fetched $(find "$LIBS" -name '*.jar' | wc -l) jars ($(du -sh "$LIBS" | cut -f1)) in $((SECONDS - t0)) s"
}

# ---------------------------------------------------------------- ports and processes

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

free_port() {
    if command -v python3 >/dev/null 2>&1 &&
        python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()' 2>/dev/null; then
        return 0
    fi
    local p i
    for i in $(seq 1 200); do
        p=$((20000 + RANDOM % 40000))
        port_in_use "$p" || { echo "$p"; return 0; }
    done
    die "no free TCP port found"
}

# pid of the broker running on DIR, or nothing
running_pid() {
    local dir=$1 pid
    [[ -f $dir/kafka.pid ]] || return 1
    pid=$(cat "$dir/kafka.pid" 2>/dev/null) || return 1
    [[ $pid =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # guard against a recycled pid: the process must be our java with this dir's config
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -qF "$dir/server.properties" || return 1
    echo "$pid"
}

metadata_ready() {
    # The broker lists itself in a Metadata response only once it is registered and unfenced.
    local port=$1 out
    out=$(timeout 10 kcat -b "127.0.0.1:$port" -L -m 3 -X topic.metadata.refresh.interval.ms=-1 2>/dev/null) || return 1
    grep -q "broker 1 at 127.0.0.1:$port" <<<"$out"
}

# ---------------------------------------------------------------- arguments

PORT=9092
PORT_GIVEN=0
DIR=
SASL_SSL=0
OIDC_JWKS=
OIDC_ISSUER=
OIDC_AUDIENCE=
parse_args() {
    while (($#)); do
        case $1 in
        --port) [[ $# -ge 2 ]] || usage; PORT=$2; PORT_GIVEN=1; shift 2 ;;
        --port=*) PORT=${1#*=}; PORT_GIVEN=1; shift ;;
        --dir) [[ $# -ge 2 ]] || usage; DIR=$2; shift 2 ;;
        --dir=*) DIR=${1#*=}; shift ;;
        --sasl-ssl) SASL_SSL=1; shift ;;
        --oidc-jwks) [[ $# -ge 2 ]] || usage; OIDC_JWKS=$2; SASL_SSL=1; shift 2 ;;
        --oidc-jwks=*) OIDC_JWKS=${1#*=}; SASL_SSL=1; shift ;;
        --oidc-issuer) [[ $# -ge 2 ]] || usage; OIDC_ISSUER=$2; shift 2 ;;
        --oidc-issuer=*) OIDC_ISSUER=${1#*=}; shift ;;
        --oidc-audience) [[ $# -ge 2 ]] || usage; OIDC_AUDIENCE=$2; shift 2 ;;
        --oidc-audience=*) OIDC_AUDIENCE=${1#*=}; shift ;;
        -h | --help) usage ;;
        *) log "unknown argument: $1"; usage ;;
        esac
    done
    [[ $PORT =~ ^[0-9]+$ ]] && ((PORT < 65536)) || die "bad --port: $PORT"
    if [[ -n $OIDC_JWKS ]]; then
        [[ $OIDC_JWKS =~ ^https?://[^[:space:],]+$ ]] || die "bad --oidc-jwks (an http:// or https:// URL): $OIDC_JWKS"
    elif [[ -n $OIDC_ISSUER$OIDC_AUDIENCE ]]; then
        die "--oidc-issuer and --oidc-audience need --oidc-jwks"
    fi
}

resolve_dir() {
    if [[ -z $DIR ]]; then
        DIR="${TMPDIR:-/tmp}/dw-kafka-$PORT"
    fi
    mkdir -p "$(dirname "$DIR")"
    DIR="$(cd "$(dirname "$DIR")" && pwd)/$(basename "$DIR")"
}

# serialize start/stop on one DIR (the lock file lives next to DIR, which gets removed)
lock_dir() {
    command -v flock >/dev/null 2>&1 || return 0
    exec 9>"$DIR.lock"
    flock -w 120 9 || die "timed out waiting for the lock $DIR.lock"
}

# port recorded in an existing DIR (for stop/status with --dir only)
dir_port() { cat "$DIR/port" 2>/dev/null || true; }

print_env() {
    echo "KAFKA_BOOTSTRAP=127.0.0.1:$1"
    echo "KAFKA_DIR=$DIR"
    if [[ -f $DIR/sasl_ssl_port ]]; then
        echo "KAFKA_SASL_SSL_BOOTSTRAP=127.0.0.1:$(cat "$DIR/sasl_ssl_port")"
        echo "KAFKA_CA_FILE=$DIR/tls/ca.pem"
        echo "KAFKA_SASL_USERS=$DIR/sasl-users"
    fi
}

# ---------------------------------------------------------------- SASL_SSL (--sasl-ssl)

random_word() { head -c 48 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24; }

# A CA, a broker key and certificate signed by it (SAN 127.0.0.1 and localhost: librdkafka
# checks the broker's name by default), and the PKCS#12 keystore the broker reads.
make_tls() {
    local tls=$DIR/tls
    mkdir -p "$tls"
    (
        umask 077
        cd "$tls"
        openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 2 \
            -subj "/CN=delivery-worker test CA" -addext "basicConstraints=critical,CA:TRUE" \
            -addext "keyUsage=critical,keyCertSign,cRLSign"
        openssl req -newkey rsa:2048 -nodes -keyout broker.key -out broker.csr -subj "/CN=localhost"
        printf '%s\n' "subjectAltName=IP:127.0.0.1,DNS:localhost" "extendedKeyUsage=serverAuth" \
            "keyUsage=critical,digitalSignature,keyEncipherment" >broker.ext
        openssl x509 -req -in broker.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
            -extfile broker.ext -out broker.pem
        openssl pkcs12 -export -in broker.pem -inkey broker.key -certfile ca.pem -name broker \
            -passout "pass:$1" -out broker.p12
        chmod 644 ca.pem broker.pem
    ) >"$DIR/tls.log" 2>&1 || { cat "$DIR/tls.log" >&2; die "openssl could not make the test CA and broker certificate"; }
}

# server.properties lines of the SASL_SSL listener.
sasl_ssl_props() {
    local storepass=$1 plainpass=$2 jaas=org.apache.kafka.common.security
    printf '%s\n' \
        "# --sasl-ssl: a SASL_SSL listener for security tests" \
        "listener.name.sasl_ssl.ssl.keystore.location=$DIR/tls/broker.p12" \
        "listener.name.sasl_ssl.ssl.keystore.type=PKCS12" \
        "listener.name.sasl_ssl.ssl.keystore.password=$storepass" \
        "listener.name.sasl_ssl.ssl.key.password=$storepass" \
        "listener.name.sasl_ssl.ssl.client.auth=none" \
        "sasl.enabled.mechanisms=SCRAM-SHA-512,PLAIN,OAUTHBEARER" \
        "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=$jaas.scram.ScramLoginModule required;" \
        "listener.name.sasl_ssl.plain.sasl.jaas.config=$jaas.plain.PlainLoginModule required user_dwplain=\"$plainpass\";"
    if [[ -z $OIDC_JWKS ]]; then
        printf '%s\n' \
            "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=$jaas.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"broker\";" \
            "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=$jaas.oauthbearer.internals.unsecured.OAuthBearerUnsecuredValidatorCallbackHandler"
        return
    fi
    # --oidc-jwks: signed JWTs, checked against the provider's keys (KIP-768)
    printf '%s\n' \
        "listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=$jaas.oauthbearer.OAuthBearerLoginModule required;" \
        "listener.name.sasl_ssl.oauthbearer.sasl.server.callback.handler.class=$jaas.oauthbearer.OAuthBearerValidatorCallbackHandler" \
        "listener.name.sasl_ssl.sasl.oauthbearer.jwks.endpoint.url=$OIDC_JWKS"
    if [[ -n $OIDC_ISSUER ]]; then echo "listener.name.sasl_ssl.sasl.oauthbearer.expected.issuer=$OIDC_ISSUER"; fi
    if [[ -n $OIDC_AUDIENCE ]]; then echo "listener.name.sasl_ssl.sasl.oauthbearer.expected.audience=$OIDC_AUDIENCE"; fi
}

# ---------------------------------------------------------------- commands

cmd_start() {
    need_java
    need_kcat
    fetch

    if [[ $PORT == 0 ]]; then
        PORT=$(free_port)
    fi
    resolve_dir
    lock_dir

    local pid
    if pid=$(running_pid "$DIR"); then
        local p
        p=$(dir_port)
        log "already running on $DIR (pid $pid)"
        print_env "${p:-$PORT}"
        return 0
    fi
    if [[ -e $DIR ]]; then
        if [[ -f $DIR/$MARKER ]]; then
            rm -rf "$DIR"
        elif [[ -d $DIR && -z $(ls -A "$DIR") ]]; then
            rmdir "$DIR"
        else
            die "$DIR exists and was not created by kafka.sh; refusing to reuse it (use --dir)"
        fi
    fi
    if port_in_use "$PORT"; then
        die "port $PORT is already in use by another process; use --port 0 to pick a free port"
    fi
    local cport
    cport=$(free_port)
    while [[ $cport == "$PORT" ]]; do cport=$(free_port); done

    mkdir -p "$DIR/data"
    : >"$DIR/$MARKER"
    echo "$PORT" >"$DIR/port"

    local sport= sasl_listener= sasl_map= storepass= scrampass= plainpass= scram_args=()
    if ((SASL_SSL)); then
        need_openssl
        sport=$(free_port)
        while [[ $sport == "$PORT" || $sport == "$cport" ]]; do sport=$(free_port); done
        sasl_listener=",SASL_SSL://127.0.0.1:$sport"
        sasl_map=",SASL_SSL:SASL_SSL"
        storepass=$(random_word)
        scrampass=$(random_word)
        plainpass=$(random_word)
        make_tls "$storepass"
        local oauth_user=("OAUTHBEARER dwoauth -")
        if [[ -n $OIDC_JWKS ]]; then oauth_user=(); fi
        (umask 077; printf '%s\n' "SCRAM-SHA-512 dwscram $scrampass" "PLAIN dwplain $plainpass" \
            "${oauth_user[@]}" >"$DIR/sasl-users")
        # KRaft keeps SCRAM credentials in the metadata log: written when the log is formatted
        scram_args=(--add-scram "SCRAM-SHA-512=[name=dwscram,password=$scrampass]")
    fi

    cat >"$DIR/server.properties" <<EOF
# written by tests/kafka/kafka.sh: single-node KRaft (combined broker+controller) for tests
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$cport$sasl_listener
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT$sasl_listener
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT$sasl_map
log.dirs=$DIR/data
num.partitions=4
default.replication.factor=1
auto.create.topics.enable=true
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
min.insync.replicas=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=2
num.recovery.threads.per.data.dir=1
log.retention.hours=-1
EOF
    if ((SASL_SSL)); then
        sasl_ssl_props "$storepass" "$plainpass" >>"$DIR/server.properties"
    fi
    if [[ -n ${DW_KAFKA_EXTRA_PROPS:-} ]]; then
        printf '%s\n' "$DW_KAFKA_EXTRA_PROPS" >>"$DIR/server.properties"
    fi

    cat >"$DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$DIR/server.log
log4j.appender.file.Append=true
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.org.apache.zookeeper=WARN
EOF

    # shellcheck disable=SC2206
    local jvm=(${DW_KAFKA_HEAP_OPTS:--Xms128m -Xmx512m} ${DW_KAFKA_JVM_OPTS:--XX:+UseSerialGC}
        -Djava.awt.headless=true -Dlog4j.configuration="file:$DIR/log4j.properties"
        -Dkafka.logs.dir="$DIR" -cp "$LIBS/*")
    # Kafka 3.9.1 fetches OAuth URLs only from this list when it is set (CVE-2025-27817)
    if [[ -n $OIDC_JWKS ]]; then jvm+=(-Dorg.apache.kafka.sasl.oauthbearer.allowed.urls="$OIDC_JWKS"); fi

    local t0=${EPOCHREALTIME//[!0-9]/} cluster_id
    # a KRaft cluster id is 16 random bytes, base64url without padding; avoid a leading '-'
    cluster_id=-
    while [[ $cluster_id == -* ]]; do
        cluster_id=$(head -c16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=')
    done
    if ! java "${jvm[@]}" kafka.tools.StorageTool format -t "$cluster_id" \
        -c "$DIR/server.properties" "${scram_args[@]}" </dev/null >"$DIR/format.log" 2>&1 9>&-; then
        tail -n 30 "$DIR/format.log" >&2
        die "kafka.tools.StorageTool format failed: $(grep -m1 -E 'Exception|Error|rror:' "$DIR/format.log" || head -n1 "$DIR/format.log") (dir $DIR kept; 'kafka.sh stop --dir $DIR' removes it)"
    fi

    log "starting Kafka $KAFKA_VERSION on 127.0.0.1:$PORT (controller $cport, dir $DIR)"
    local launcher=()
    command -v setsid >/dev/null 2>&1 && launcher=(setsid)
    # all fds redirected: the broker must not keep a caller's stdout pipe (or the lock) open
    "${launcher[@]}" java "${jvm[@]}" kafka.Kafka "$DIR/server.properties" \
        </dev/null >"$DIR/kafka.out" 2>&1 9>&- &
    pid=$!
    echo "$pid" >"$DIR/kafka.pid"

    local deadline=$((SECONDS + START_TIMEOUT))
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            start_failed "the broker process (pid $pid) exited during startup"
        fi
        if metadata_ready "$PORT"; then
            break
        fi
        if ((SECONDS >= deadline)); then
            kill -KILL "$pid" 2>/dev/null || true
            start_failed "the broker did not serve metadata on 127.0.0.1:$PORT within $START_TIMEOUT s"
        fi
        sleep 0.3
    done
    if ((SASL_SSL)); then echo "$sport" >"$DIR/sasl_ssl_port"; fi
    log "ready in $(( (${EPOCHREALTIME//[!0-9]/} - t0) / 1000 )) ms (pid $pid)${sport:+; SASL_SSL on 127.0.0.1:$sport}"
    print_env "$PORT"
}

start_failed() {
    local why=$1 cause
    {
        echo "----- last 50 lines of $DIR/server.log -----"
        tail -n 50 "$DIR/server.log" 2>/dev/null || echo "(no server.log)"
        if [[ -s $DIR/kafka.out ]]; then
            echo "----- $DIR/kafka.out -----"
            tail -n 20 "$DIR/kafka.out"
        fi
        echo "-----"
    } >&2
    # the first ERROR line, and the first exception line (usually the real cause) after it
    cause=$(cat "$DIR/server.log" "$DIR/kafka.out" 2>/dev/null | awk '
        !e && /(ERROR|FATAL)/ { sub(/^\[[^]]*\] /, ""); e = $0; next }
        !x && /^([A-Za-z_$][A-Za-z0-9_$]*\.)+[A-Za-z0-9_$]*(Exception|Error)(: |$)/ { x = $0 }
        END { if (e != "") printf "%s", e; if (x != "") printf "%s%s", (e != "" ? " -- " : ""), x }' || true)
    [[ -n $cause ]] && why="$why; cause: $cause"
    rm -f "$DIR/kafka.pid"
    die "$why (dir $DIR kept for inspection; 'kafka.sh stop --dir $DIR' removes it)"
}

stop_resolve() {
    resolve_dir
}

cmd_stop() {
    stop_resolve
    if [[ ! -e $DIR ]]; then
        rm -f "$DIR.lock"
        log "nothing to stop: $DIR does not exist"
        return 0
    fi
    lock_dir
    [[ -f $DIR/$MARKER ]] || die "$DIR was not created by kafka.sh; not touching it"
    local pid
    if pid=$(running_pid "$DIR"); then
        log "stopping broker pid $pid"
        kill -TERM "$pid" 2>/dev/null || true
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while kill -0 "$pid" 2>/dev/null; do
            if ((SECONDS >= deadline)); then
                log "broker did not exit within $STOP_TIMEOUT s; sending SIGKILL"
                kill -KILL "$pid" 2>/dev/null || true
                sleep 0.2
                break
            fi
            sleep 0.2
        done
    else
        log "broker on $DIR is not running"
    fi
    rm -rf "$DIR"
    rm -f "$DIR.lock"
    log "removed $DIR"
}

cmd_status() {
    stop_resolve
    local pid p
    if pid=$(running_pid "$DIR"); then
        p=$(dir_port)
        log "running: pid $pid, dir $DIR"
        print_env "${p:-$PORT}"
        return 0
    fi
    log "not running ($DIR)"
    return 3
}

(($#)) || usage
cmd=$1
shift
parse_args "$@"
case $cmd in
fetch) fetch ;;
start) cmd_start ;;
stop) cmd_stop ;;
status) cmd_status ;;
help | -h | --help) usage ;;
*) log "unknown command: $cmd"; usage ;;
esac
