#!/usr/bin/env bash
# Development/test Apache Kafka broker (single-node KRaft) for triaged.
#
# Usage:
#   scripts/kafka-dev.sh start                      start (or reuse) a broker; prints bootstrap as last stdout line
#   scripts/kafka-dev.sh stop                       stop the broker and remove its state dir
#   scripts/kafka-dev.sh status                     print bootstrap and exit 0 if running, else exit 1
#   scripts/kafka-dev.sh kill                       SIGKILL the broker, keeping its data (fault tests)
#   scripts/kafka-dev.sh resume                     start a killed broker again on its data and ports
#   scripts/kafka-dev.sh sasl-status                print the SASL_PLAINTEXT listener (PLAIN, user
#                                                   "triaged", password $KAFKA_DEV_SASL_PASSWORD)
#   scripts/kafka-dev.sh tls-status                 print the TLS listeners and the CA, one per line:
#                                                     ssl=HOST:PORT       (SSL)
#                                                     sasl_ssl=HOST:PORT  (SASL_SSL, PLAIN, as above)
#                                                     ca=PATH             (CA certificate, PEM, for
#                                                                          ssl.ca.location)
#   scripts/kafka-dev.sh committed GROUP            print GROUP's committed offsets, one
#                                                   "TOPIC PARTITION OFFSET" per line
#   scripts/kafka-dev.sh create-topic NAME PARTITIONS   create a topic (replication factor 1) on the
#                                                   running broker (or KAFKA_BOOTSTRAP); fails if it exists
#
# Typical test usage:
#   BOOTSTRAP="$(scripts/kafka-dev.sh start)"
#   scripts/kafka-dev.sh create-topic events 4
#   ...
#   scripts/kafka-dev.sh stop
#
# The broker is assembled from Maven Central jars (org.apache.kafka:kafka_2.13,
# org.apache.kafka:kafka-tools and their runtime dependencies, plus a reload4j
# logging binding) resolved with Maven, and cached under
#   ${TRIAGED_CACHE:-$HOME/.cache/triaged}/kafka-$KAFKA_DEV_VERSION/libs
# Broker state (config, data, logs, pid) lives in ${KAFKA_DEV_DIR:-/tmp/triaged-kafka-$UID};
# a lock file "$KAFKA_DEV_DIR.lock" next to it serialises start/stop. The broker
# listens on 127.0.0.1 only, on ports chosen at random each start.
#
# TLS: each start makes a throwaway CA and a broker certificate (EC P-256, subjectAltName
# IP:127.0.0.1 and DNS:localhost) with openssl, and the broker's PKCS12 keystore and
# truststore from them with keytool, all in $KAFKA_DEV_DIR/tls; the SSL and SASL_SSL listeners
# use them (no client certificates). Clients trust $KAFKA_DEV_DIR/tls/ca.pem.
#
# Environment:
#   KAFKA_BOOTSTRAP     use this existing broker instead of starting one
#                       (start/status only check that it answers; stop leaves it alone)
#   KAFKA_DEV_DIR       state directory (default /tmp/triaged-kafka-$UID)
#   TRIAGED_CACHE       cache root (default $HOME/.cache/triaged)
#   KAFKA_DEV_VERSION   Kafka version (default 3.9.2)
#   KAFKA_DEV_START_TIMEOUT  seconds to wait for the broker to answer (default 60)
#   KAFKA_DEV_SASL_PASSWORD  password of the SASL/PLAIN user "triaged" on the second listener
#                       (default triaged-dev-secret)
#
# Topic auto-creation is disabled (auto.create.topics.enable=false): tests must
# create their topics explicitly, e.g. with `create-topic`, so that partition
# counts are deterministic (co-partitioned topics).
#
# Requires java (17+, with keytool), openssl, kcat, and mvn (only when the jar cache is cold).
# All progress goes to stderr; only results go to stdout.
set -euo pipefail

KAFKA_VERSION="${KAFKA_DEV_VERSION:-3.9.2}"
SCALA_VERSION="2.13"
SLF4J_VERSION="1.7.36"      # slf4j-api version used by Kafka 3.9
RELOAD4J_VERSION="1.2.25"
MVN_DEP_PLUGIN="org.apache.maven.plugins:maven-dependency-plugin:3.6.1"

CACHE_ROOT="${TRIAGED_CACHE:-$HOME/.cache/triaged}"
KAFKA_HOME="$CACHE_ROOT/kafka-$KAFKA_VERSION"
LIBS="$KAFKA_HOME/libs"
LIBS_MARKER="$LIBS/.complete"
STATE_DIR="${KAFKA_DEV_DIR:-/tmp/triaged-kafka-$UID}"
STATE_MARKER="$STATE_DIR/.triaged-kafka-dev"
PID_FILE="$STATE_DIR/kafka.pid"
BOOTSTRAP_FILE="$STATE_DIR/bootstrap"
SASL_BOOTSTRAP_FILE="$STATE_DIR/sasl_bootstrap"
TLS_DIR="$STATE_DIR/tls"
TLS_STATUS_FILE="$STATE_DIR/tls_status"
TLS_STORE_PASSWORD="triaged-dev-store"   # of the broker's throwaway keystore and truststore
SASL_PASSWORD="${KAFKA_DEV_SASL_PASSWORD:-triaged-dev-secret}"
START_TIMEOUT="${KAFKA_DEV_START_TIMEOUT:-60}"

log() { printf 'kafka-dev: %s\n' "$*" >&2; }
die() { printf 'kafka-dev: error: %s\n' "$*" >&2; exit 1; }

usage() {
    cat >&2 <<EOF
usage: $0 start|stop|status|sasl-status|tls-status|kill|resume
       $0 create-topic NAME PARTITIONS
EOF
    exit 2
}

need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null 2>&1 ||
            die "'$tool' not found in PATH (install it first, e.g. the Debian package providing it)"
    done
}

# ---------------------------------------------------------------- jar cache

ensure_libs() {
    if [[ -f "$LIBS_MARKER" ]]; then
        return 0
    fi
    need mvn
    log "resolving Apache Kafka $KAFKA_VERSION jars from Maven Central into $LIBS"
    mkdir -p "$KAFKA_HOME"
    local pom="$KAFKA_HOME/pom.xml" tmp="$KAFKA_HOME/libs.tmp.$$"
    cat >"$pom" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<!-- Generated by triaged scripts/kafka-dev.sh; only used to resolve jars. -->
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.triaged</groupId>
  <artifactId>kafka-dev</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_$SCALA_VERSION</artifactId>
      <version>$KAFKA_VERSION</version>
    </dependency>
    <!-- command line tools (org.apache.kafka.tools.TopicCommand); Connect is not needed -->
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka-tools</artifactId>
      <version>$KAFKA_VERSION</version>
      <exclusions>
        <exclusion><groupId>org.apache.kafka</groupId><artifactId>connect-runtime</artifactId></exclusion>
        <exclusion><groupId>com.fasterxml.jackson.jaxrs</groupId><artifactId>jackson-jaxrs-json-provider</artifactId></exclusion>
      </exclusions>
    </dependency>
    <dependency>
      <groupId>org.slf4j</groupId>
      <artifactId>slf4j-reload4j</artifactId>
      <version>$SLF4J_VERSION</version>
    </dependency>
    <dependency>
      <groupId>ch.qos.reload4j</groupId>
      <artifactId>reload4j</artifactId>
      <version>$RELOAD4J_VERSION</version>
    </dependency>
  </dependencies>
</project>
EOF
    rm -rf "$tmp"
    if ! mvn -q -B -Dstyle.color=never -f "$pom" \
            "$MVN_DEP_PLUGIN:copy-dependencies" \
            -DoutputDirectory="$tmp" -Dmdep.includeScope=runtime 2>&1 |
            sed -e 's/\x1b\[[0-9;]*m//g' -e '/^[[:space:]]*$/d' >&2; then
        rm -rf "$tmp"
        die "maven failed to resolve Kafka $KAFKA_VERSION (is Maven Central reachable?)"
    fi
    [[ -f "$tmp/kafka_$SCALA_VERSION-$KAFKA_VERSION.jar" ]] ||
        { rm -rf "$tmp"; die "resolution did not produce kafka_$SCALA_VERSION-$KAFKA_VERSION.jar"; }
    rm -rf "$LIBS"
    mv "$tmp" "$LIBS"
    (cd "$LIBS" && ls ./*.jar | wc -l) >"$LIBS_MARKER"
    log "cached $(cat "$LIBS_MARKER") jars in $LIBS"
}

tools_log4j() {
    local f="$KAFKA_HOME/tools-log4j.properties"
    if [[ ! -f "$f" ]]; then
        cat >"$f" <<'EOF'
log4j.rootLogger=WARN, stderr
log4j.appender.stderr=org.apache.log4j.ConsoleAppender
log4j.appender.stderr.Target=System.err
log4j.appender.stderr.layout=org.apache.log4j.PatternLayout
log4j.appender.stderr.layout.ConversionPattern=[%d] %p %m (%c)%n
EOF
    fi
    printf '%s' "$f"
}

# Run a Kafka main class with the cached jars (short-lived tools).
kafka_tool() {
    local cls="$1"; shift
    java -Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
        -Dlog4j.configuration="file:$(tools_log4j)" \
        -cp "$LIBS/*" "$cls" "$@"
}

# ---------------------------------------------------------------- ports

port_in_use() {
    local p="$1"
    if command -v ss >/dev/null 2>&1 && [[ -n "$(ss -Hltn "sport = :$p" 2>/dev/null)" ]]; then
        return 0
    fi
    # a successful connect means something listens there
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null
}

# free_port [EXCLUDE...]: print a free TCP port on 127.0.0.1 (below the Linux ephemeral range)
# that is none of EXCLUDE
free_port() {
    local base p i
    base=$((10000 + RANDOM % 20000))
    for ((i = 0; i < 200; i++)); do
        p=$((base + i))
        [[ " $* " == *" $p "* ]] && continue
        port_in_use "$p" || { printf '%s' "$p"; return 0; }
    done
    die "no free port found near $base"
}

# ---------------------------------------------------------------- broker state

# probe BOOTSTRAP: succeed if a broker answers metadata requests there
probe() {
    local out
    out="$(timeout 10 kcat -b "$1" -L -m 3 2>/dev/null)" || return 1
    grep -q 'brokers:' <<<"$out" && ! grep -q ' 0 brokers:' <<<"$out"
}

running_pid() {
    local pid
    [[ -f "$PID_FILE" ]] || return 1
    pid="$(cat "$PID_FILE" 2>/dev/null)" || return 1
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    kill -0 "$pid" 2>/dev/null || return 1
    # guard against pid reuse: must be our broker
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka' || return 1
    printf '%s' "$pid"
}

remove_state_dir() {
    [[ -e "$STATE_DIR" ]] || return 0
    if [[ -f "$STATE_MARKER" ]]; then
        rm -rf "$STATE_DIR"
    else
        die "refusing to remove $STATE_DIR: not a kafka-dev state dir (no $(basename "$STATE_MARKER"))"
    fi
}

with_lock() {
    # serialise start/stop of the same state dir; flock is util-linux (always on Debian)
    if command -v flock >/dev/null 2>&1; then
        mkdir -p "$(dirname "$STATE_DIR")"
        exec 9>"$STATE_DIR.lock"
        flock -w 180 9 || die "timed out waiting for lock $STATE_DIR.lock"
    fi
}

# make_tls: a throwaway CA and a broker certificate signed by it (openssl), and the broker's
# keystore and truststore made from them (keytool), in $TLS_DIR.
make_tls() {
    local d="$TLS_DIR" pw="$TLS_STORE_PASSWORD"
    mkdir -p "$d"
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
        -subj "/CN=triaged kafka-dev CA" -addext basicConstraints=critical,CA:TRUE \
        -addext keyUsage=critical,keyCertSign,cRLSign \
        -keyout "$d/ca.key" -out "$d/ca.pem" 2>/dev/null || return 1
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
        -subj "/CN=localhost" -keyout "$d/broker.key" -out "$d/broker.csr" 2>/dev/null || return 1
    openssl x509 -req -in "$d/broker.csr" -CA "$d/ca.pem" -CAkey "$d/ca.key" -CAcreateserial \
        -days 30 -out "$d/broker.pem" -extfile <(printf '%s\n' \
            'subjectAltName=IP:127.0.0.1,DNS:localhost' 'extendedKeyUsage=serverAuth' \
            'keyUsage=critical,digitalSignature') 2>/dev/null || return 1
    openssl pkcs12 -export -name broker -in "$d/broker.pem" -inkey "$d/broker.key" \
        -certfile "$d/ca.pem" -passout "pass:$pw" -out "$d/broker.openssl.p12" || return 1
    # The JDK's own stores: the key and chain imported into a keystore, the CA into a truststore
    # (two JVMs, run side by side).
    local kt=(keytool -J-XX:TieredStopAtLevel=1 -J-XX:+UseSerialGC -noprompt)
    "${kt[@]}" -importkeystore -srckeystore "$d/broker.openssl.p12" -srcstoretype PKCS12 \
        -srcstorepass "$pw" -destkeystore "$d/broker.keystore.p12" -deststoretype PKCS12 \
        -deststorepass "$pw" >/dev/null &
    local keystore=$!
    "${kt[@]}" -importcert -alias ca -file "$d/ca.pem" -keystore "$d/broker.truststore.p12" \
        -storetype PKCS12 -storepass "$pw" >/dev/null || return 1
    wait "$keystore" || return 1
    rm -f "$d/broker.openssl.p12" "$d/broker.csr" "$d/ca.key" "$d/ca.srl"
}

write_config() {
    local port="$1" cport="$2" sport="$3" tport="$4" tsport="$5"
    cat >"$STATE_DIR/server.properties" <<EOF
# Generated by triaged scripts/kafka-dev.sh: single-node KRaft broker for development/tests.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sport,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$tsport,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port,SASL_PLAINTEXT://127.0.0.1:$sport,SSL://127.0.0.1:$tport,SASL_SSL://127.0.0.1:$tsport
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL
sasl.enabled.mechanisms=PLAIN
listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="triaged" password="$SASL_PASSWORD" user_triaged="$SASL_PASSWORD";
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username="triaged" password="$SASL_PASSWORD" user_triaged="$SASL_PASSWORD";
ssl.keystore.type=PKCS12
ssl.keystore.location=$TLS_DIR/broker.keystore.p12
ssl.keystore.password=$TLS_STORE_PASSWORD
ssl.key.password=$TLS_STORE_PASSWORD
ssl.truststore.type=PKCS12
ssl.truststore.location=$TLS_DIR/broker.truststore.p12
ssl.truststore.password=$TLS_STORE_PASSWORD
ssl.client.auth=none
log.dirs=$STATE_DIR/data
num.network.threads=2
num.io.threads=4
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
delete.topic.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=8
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
log.retention.hours=24
EOF
    cat >"$STATE_DIR/log4j.properties" <<EOF
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$STATE_DIR/logs/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.org.apache.kafka=INFO
log4j.logger.kafka=INFO
log4j.logger.kafka.request.logger=WARN
log4j.logger.state.change.logger=WARN
log4j.logger.kafka.log.LogCleaner=WARN
log4j.logger.org.apache.kafka.storage.internals.log=WARN
log4j.logger.kafka.log=WARN
EOF
}

# ---------------------------------------------------------------- commands

cmd_start() {
    need kcat
    if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then
        probe "$KAFKA_BOOTSTRAP" || die "KAFKA_BOOTSTRAP=$KAFKA_BOOTSTRAP does not answer"
        log "using existing broker at $KAFKA_BOOTSTRAP"
        printf '%s\n' "$KAFKA_BOOTSTRAP"
        return 0
    fi
    need java keytool openssl timeout
    with_lock

    local pid bootstrap
    if pid="$(running_pid)"; then
        bootstrap="$(cat "$BOOTSTRAP_FILE")"
        if probe "$bootstrap"; then
            log "broker already running (pid $pid)"
            printf '%s\n' "$bootstrap"
            return 0
        fi
        die "broker pid $pid is running but $bootstrap does not answer; run '$0 stop' first"
    fi
    if [[ -e "$STATE_DIR" ]]; then
        log "removing stale state in $STATE_DIR"
        remove_state_dir
    fi

    ensure_libs

    local port cport sport tport tsport cluster_id tls
    port="$(free_port)"
    cport="$(free_port "$port")"
    sport="$(free_port "$port" "$cport")"
    tport="$(free_port "$port" "$cport" "$sport")"
    tsport="$(free_port "$port" "$cport" "$sport" "$tport")"
    bootstrap="127.0.0.1:$port"

    mkdir -p "$STATE_DIR/data" "$STATE_DIR/logs"
    : >"$STATE_MARKER"
    write_config "$port" "$cport" "$sport" "$tport" "$tsport"

    # The certificates are made while the storage is formatted.
    make_tls >"$STATE_DIR/logs/tls.out" 2>&1 &
    tls=$!
    cluster_id="$(kafka_tool kafka.tools.StorageTool random-uuid | tail -n 1)"
    [[ "$cluster_id" =~ ^[A-Za-z0-9_-]{22}$ ]] || die "could not generate a cluster id (got '$cluster_id')"
    log "formatting $STATE_DIR/data (cluster id $cluster_id)"
    kafka_tool kafka.tools.StorageTool format -t "$cluster_id" -c "$STATE_DIR/server.properties" >&2 ||
        die "storage format failed"
    if ! wait "$tls"; then
        cat "$STATE_DIR/logs/tls.out" >&2
        die "could not make the TLS certificates and stores in $TLS_DIR"
    fi

    log "starting Kafka $KAFKA_VERSION on $bootstrap (controller 127.0.0.1:$cport)"
    printf '%s\n' "$bootstrap" >"$BOOTSTRAP_FILE"
    printf '127.0.0.1:%s\n' "$sport" >"$SASL_BOOTSTRAP_FILE"
    printf 'ssl=127.0.0.1:%s\nsasl_ssl=127.0.0.1:%s\nca=%s\n' "$tport" "$tsport" "$TLS_DIR/ca.pem" \
        >"$TLS_STATUS_FILE"
    launch_and_wait "$bootstrap"
}

# launch_and_wait BOOTSTRAP: run the broker on the state dir's config and data; wait until it
# answers; print the bootstrap.
launch_and_wait() {
    local bootstrap="$1" pid
    nohup java -Xmx512m -Xms256m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
        -Djava.awt.headless=true \
        -Dkafka.logs.dir="$STATE_DIR/logs" \
        -Dlog4j.configuration="file:$STATE_DIR/log4j.properties" \
        -cp "$LIBS/*" kafka.Kafka "$STATE_DIR/server.properties" \
        </dev/null >>"$STATE_DIR/logs/kafka.out" 2>&1 9>&- &
    pid=$!
    printf '%s\n' "$pid" >"$PID_FILE"

    local deadline=$((SECONDS + START_TIMEOUT))
    until probe "$bootstrap"; do
        if ! kill -0 "$pid" 2>/dev/null; then
            log "broker exited during startup; last log lines:"
            tail -n 30 "$STATE_DIR/logs/kafka.out" "$STATE_DIR/logs/server.log" >&2 2>/dev/null || true
            die "broker failed to start (logs in $STATE_DIR/logs)"
        fi
        if ((SECONDS >= deadline)); then
            log "broker did not answer within ${START_TIMEOUT}s; last log lines:"
            tail -n 30 "$STATE_DIR/logs/server.log" >&2 2>/dev/null || true
            kill "$pid" 2>/dev/null || true
            die "broker start timed out (logs in $STATE_DIR/logs)"
        fi
        sleep 0.5
    done
    log "broker ready (pid $pid, logs in $STATE_DIR/logs)"
    printf '%s\n' "$bootstrap"
}

# For fault tests: kill -9 the broker, keeping its state; `resume` starts it again on the same
# data and ports.
cmd_kill() {
    [[ -z "${KAFKA_BOOTSTRAP:-}" ]] || die "KAFKA_BOOTSTRAP is set: not killing a broker of yours"
    with_lock
    local pid i
    pid="$(running_pid)" || die "no broker running"
    log "killing broker (pid $pid) with SIGKILL; state kept"
    kill -KILL "$pid"
    for ((i = 0; i < 100; i++)); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    die "broker pid $pid did not die"
}

cmd_resume() {
    [[ -z "${KAFKA_BOOTSTRAP:-}" ]] || die "KAFKA_BOOTSTRAP is set: nothing to resume"
    need java timeout kcat
    with_lock
    [[ -f "$BOOTSTRAP_FILE" && -f "$STATE_DIR/server.properties" ]] || die "no broker state in $STATE_DIR"
    if running_pid >/dev/null; then
        cat "$BOOTSTRAP_FILE"
        return 0
    fi
    log "resuming broker on $(cat "$BOOTSTRAP_FILE") with the state in $STATE_DIR"
    launch_and_wait "$(cat "$BOOTSTRAP_FILE")"
}

cmd_stop() {
    if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then
        log "KAFKA_BOOTSTRAP is set; leaving the external broker at $KAFKA_BOOTSTRAP alone"
        return 0
    fi
    with_lock
    local pid i
    if pid="$(running_pid)"; then
        log "stopping broker (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for ((i = 0; i < 300; i++)); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        if kill -0 "$pid" 2>/dev/null; then
            log "broker still alive after 30s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
        fi
    else
        log "no broker running"
    fi
    remove_state_dir
}

cmd_status() {
    local pid bootstrap
    if [[ -n "${KAFKA_BOOTSTRAP:-}" ]]; then
        need kcat
        probe "$KAFKA_BOOTSTRAP" || return 1
        printf '%s\n' "$KAFKA_BOOTSTRAP"
        return 0
    fi
    if pid="$(running_pid)" && [[ -f "$BOOTSTRAP_FILE" ]]; then
        bootstrap="$(cat "$BOOTSTRAP_FILE")"
        if command -v kcat >/dev/null 2>&1 && ! probe "$bootstrap"; then
            log "broker pid $pid is running but $bootstrap does not answer"
            return 1
        fi
        printf '%s\n' "$bootstrap"
        return 0
    fi
    log "not running"
    return 1
}

cmd_sasl_status() {
    [[ -z "${KAFKA_BOOTSTRAP:-}" ]] || die "KAFKA_BOOTSTRAP is set: no SASL listener is known"
    cmd_status >/dev/null || return 1
    [[ -f "$SASL_BOOTSTRAP_FILE" ]] || die "this broker was started without a SASL listener"
    cat "$SASL_BOOTSTRAP_FILE"
}

cmd_tls_status() {
    # KAFKA_BOOTSTRAP may name this state dir's own broker (the value `start` printed)
    if [[ -n "${KAFKA_BOOTSTRAP:-}" && "$KAFKA_BOOTSTRAP" != "$(cat "$BOOTSTRAP_FILE" 2>/dev/null)" ]]; then
        die "KAFKA_BOOTSTRAP is set to another broker: no TLS listener is known"
    fi
    cmd_status >/dev/null || return 1
    [[ -f "$TLS_STATUS_FILE" ]] || die "this broker was started without TLS listeners"
    cat "$TLS_STATUS_FILE"
}

cmd_create_topic() {
    [[ $# -eq 2 ]] || usage
    local name="$1" partitions="$2" bootstrap
    [[ "$partitions" =~ ^[1-9][0-9]*$ ]] || die "PARTITIONS must be a positive integer (got '$partitions')"
    need java
    bootstrap="$(cmd_status)" || die "no broker running; run '$0 start' first"
    ensure_libs
    log "creating topic $name ($partitions partitions) on $bootstrap"
    kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$bootstrap" \
        --create --topic "$name" --partitions "$partitions" --replication-factor 1 >&2
}

# Prints the committed offsets of consumer group GROUP, one "TOPIC PARTITION OFFSET" per line
# ("-" for a partition without a commit).
cmd_committed() {
    [[ $# -eq 1 ]] || usage
    local group="$1" bootstrap
    need java
    bootstrap="$(cmd_status)" || die "no broker running; run '$0 start' first"
    ensure_libs
    kafka_tool org.apache.kafka.tools.consumer.group.ConsumerGroupCommand \
        --bootstrap-server "$bootstrap" --describe --group "$group" --offsets 2>/dev/null |
        awk 'NF >= 4 && $1 == "'"$group"'" { print $2, $3, $4 }'
}

main() {
    [[ $# -ge 1 ]] || usage
    local cmd="$1"; shift
    case "$cmd" in
        start)        [[ $# -eq 0 ]] || usage; cmd_start ;;
        stop)         [[ $# -eq 0 ]] || usage; cmd_stop ;;
        status)       [[ $# -eq 0 ]] || usage; cmd_status ;;
        kill)         [[ $# -eq 0 ]] || usage; cmd_kill ;;
        resume)       [[ $# -eq 0 ]] || usage; cmd_resume ;;
        sasl-status)  [[ $# -eq 0 ]] || usage; cmd_sasl_status ;;
        tls-status)   [[ $# -eq 0 ]] || usage; cmd_tls_status ;;
        create-topic) cmd_create_topic "$@" ;;
        committed)    cmd_committed "$@" ;;
        -h|--help|help) usage ;;
        *)            usage ;;
    esac
}

main "$@"
