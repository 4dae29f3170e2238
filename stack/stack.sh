#!/usr/bin/env bash
# stack.sh - local, docker-free stack for tow-and-go-sink:
#   kafka     Apache Kafka (KRaft, broker+controller in one JVM)   127.0.0.1:9092 PLAINTEXT
#             + secured listeners (ACLs apply there): 127.0.0.1:9094 SASL_SSL (SCRAM-SHA-256/512,
#             PLAIN, OAUTHBEARER unsecured JWT), 127.0.0.1:9095 SSL with client certificates (mTLS)
#   s3proxy   S3Proxy, filesystem backend, SigV4 auth              http://127.0.0.1:9000
#   registry  Apicurio Registry, KafkaSQL storage, ccompat API     http://127.0.0.1:8081/apis/ccompat/v7
#
# Usage:
#   stack/stack.sh up                     install if needed, start all, wait healthy, create topics+bucket
#   stack/stack.sh down                   stop all (SIGTERM, then SIGKILL after a bound); data kept
#   stack/stack.sh status                 one line per service; exit 0 if all healthy, else 3
#   stack/stack.sh start|stop|restart SVC SVC = kafka | registry | s3proxy (fault-injection tests)
#   stack/stack.sh install                only fetch/unpack what is missing, make certificates (no start)
#   stack/stack.sh clean [--all]          down + delete data/logs; --all also drops the install cache
#
# Latency injection (S3Proxy latency middleware, applied per S3 call, read at start):
#   S3PROXY_LATENCY_MS=2000 stack/stack.sh restart s3proxy     # every operation +2 s
#   S3PROXY_LATENCY_MS=2000 S3PROXY_LATENCY_OPS=put,get stack/stack.sh restart s3proxy
#   stack/stack.sh restart s3proxy                             # back to normal speed
#
# Everything lives under <project root>/.stack (git-ignored): install/ (resolved artifacts,
# reused across runs), kafka/ s3/ (data), security/ (certificates, client configs),
# logs/<svc>.log, run/<svc>.pid, tmp/. Nothing outside it is written except Maven's ~/.m2 cache.
# A second, private stack: STACK_HOME=/tmp/x STACK_KAFKA_PORT=19092 ... (see the variables below).
# Needs: bash, java 17+ (the registry needs 21+, found under /usr/lib/jvm if the default is
# older, or set REGISTRY_JAVA_HOME), mvn (first install only), curl (with --aws-sigv4), flock, openssl.

set -Eeuo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$SCRIPT_DIR/.." && pwd)"
# Directory and ports can be overridden from the environment, to run a second stack next to
# the default one (e.g. to try a config change without restarting the shared broker).
STACK="${STACK_HOME:-$ROOT/.stack}"

HOST=127.0.0.1   # loopback only, for every listener
KAFKA_PORT=${STACK_KAFKA_PORT:-9092}                     # PLAINTEXT, no auth, super user
KAFKA_CONTROLLER_PORT=${STACK_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_SASL_SSL_PORT=${STACK_KAFKA_SASL_SSL_PORT:-9094}   # SASL_SSL, ACLs
KAFKA_MTLS_PORT=${STACK_KAFKA_MTLS_PORT:-9095}           # SSL + required client cert, ACLs
REGISTRY_PORT=${STACK_REGISTRY_PORT:-8081}
# Quarkus serves health/metrics on a separate "management" port whose default (9000)
# collides with S3Proxy, so it is moved.
REGISTRY_MGMT_PORT=${STACK_REGISTRY_MGMT_PORT:-9081}
S3_PORT=${STACK_S3_PORT:-9000}
S3_ACCESS_KEY=local-access-key
S3_SECRET_KEY=local-secret-key
S3_REGION=us-east-1
S3_BUCKET=tow-and-go
TOPIC_PARTITIONS=6
# name|partitions|topic configs (comma-separated), created if missing on every kafka start.
TOPICS=(
  "tow-and-go.updates|$TOPIC_PARTITIONS|"
  "tow-and-go.updates.dlq|$TOPIC_PARTITIONS|"
)
# Fixed KRaft cluster id: the data dir is formatted once and must match on every restart;
# a constant avoids an extra JVM launch (StorageTool random-uuid) on first start.
KAFKA_CLUSTER_ID=973qMuqvQoWE3OyJycXyfg

# Secured listeners (stack/README.md): certificates, stores and client configs in $SECURITY.
# These are fixed local test identities, not secrets.
SECURITY="$STACK/security"
STORE_PASS=tow-and-go-store        # password of every PKCS12 store in $SECURITY
# user|password: SCRAM-SHA-256 and SCRAM-SHA-512 credentials (kafka-configs, after start) and
# PLAIN (the listener's JAAS config). no-read has no READ ACL on any topic.
KAFKA_USERS=("tow-and-go|tow-and-go-secret" "no-read|no-read-secret")
MTLS_CN=tow-and-go-mtls            # CN of client.pem = principal on the mTLS listener
OAUTH_SUB=tow-and-go               # sub of the token in client-oauthbearer.properties
# ACLs for the secured listeners, one kafka-acls run each, all PREFIXED patterns (tests use
# it-<name>-<random> topics, groups and <topic>.dlq). The PLAINTEXT and controller listeners
# are User:ANONYMOUS, a super user, so nothing that uses 9092 needs an ACL.
ACL_RULES=(
  # consume: topic READ+DESCRIBE, group READ
  "--allow-principal User:tow-and-go --allow-principal User:$MTLS_CN --operation Read --operation Describe --topic tow-and-go. --topic it- --group tow-and-go --group it-"
  # dead-letter: WRITE, and DESCRIBE_CONFIGS for the start-up max.message.bytes check
  "--allow-principal User:tow-and-go --allow-principal User:$MTLS_CN --allow-principal User:no-read --operation Write --operation Describe --operation DescribeConfigs --topic tow-and-go.updates.dlq --topic it-"
  # no-read: sees the topics and may join its group, but never READs a topic
  "--allow-principal User:no-read --operation Describe --topic tow-and-go."
  "--allow-principal User:no-read --operation Read --group tow-and-go --group it-"
)

SERVICES=(kafka s3proxy registry)
# Bounds for startup health and for graceful shutdown before SIGKILL (seconds).
declare -A START_TIMEOUT=([kafka]=90 [s3proxy]=60 [registry]=180)
declare -A STOP_TIMEOUT=([kafka]=30 [s3proxy]=10 [registry]=10)

# ---------------------------------------------------------------------------- helpers

say() { echo "stack: $*" >&2; }
die() { echo "stack: error: $*" >&2; exit 1; }

rel() { echo "${1#"$ROOT"/}"; }   # shorter paths in messages

is_service() { [[ " ${SERVICES[*]} " == *" $1 "* ]]; }

# Serialise mutating commands: two test processes calling `restart` at once must not race.
take_lock() {
  mkdir -p "$STACK"
  exec 9>"$STACK/.lock"
  if ! flock -n 9; then
    say "waiting for another stack.sh command to finish ..."
    flock -w 900 9 || die "another stack.sh is still running (lock $(rel "$STACK/.lock"))"
  fi
}

port_open() {  # TCP connect to 127.0.0.1:$1 succeeds
  timeout 2 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

java_major() {  # prints the feature version of a java binary (17, 21, 25...)
  "$1" -XshowSettings:properties -version 2>&1 | sed -n 's/^ *java\.specification\.version = //p' | head -n1
}

# Prints the first java with feature version >= $1: $2 (explicit override), JAVA_HOME,
# java on PATH, then any JDK under /usr/lib/jvm (the registry needs 21+ while the
# machine default may be 17).
pick_java() {
  local min=$1 override=${2:-} c v
  local -a cands=()
  [[ -n $override ]] && cands+=("$override/bin/java")
  [[ -n ${JAVA_HOME:-} ]] && cands+=("$JAVA_HOME/bin/java")
  c=$(command -v java || true)
  [[ -n $c ]] && cands+=("$c")
  cands+=(/usr/lib/jvm/*/bin/java)
  for c in "${cands[@]}"; do
    [[ -x $c ]] || continue
    v=$(java_major "$c")
    if [[ $v =~ ^[0-9]+$ ]] && (( v >= min )); then echo "$c"; return 0; fi
  done
  return 1
}

JAVA17=""
java17() {
  if [[ -z $JAVA17 ]]; then
    JAVA17=$(pick_java 17) || die "no Java 17+ found (set JAVA_HOME)"
  fi
  echo "$JAVA17"
}

# -------------------------------------------------------------------------- install

# Each service's artifacts are resolved by stack/<svc>/pom.xml into .stack/install.
# A stamp (checksum of the poms) makes warm runs skip Maven entirely; a pom change
# (version bump) or a missing artifact triggers a reinstall of that service only.

pom_sum() { cat "$SCRIPT_DIR/pom.xml" "$SCRIPT_DIR/$1/pom.xml" | sha256sum | cut -d' ' -f1; }

installed() {
  local svc=$1 stamp="$STACK/install/$1.stamp"
  [[ -f $stamp && "$(cat "$stamp")" == "$(pom_sum "$svc")" ]] || return 1
  case $svc in
    kafka)
      local cp="$STACK/install/kafka.classpath" jar
      local -a jars
      [[ -s $cp ]] || return 1
      # The classpath points into ~/.m2: if that cache was wiped, resolve again.
      IFS=: read -r -a jars <"$cp"
      for jar in "${jars[@]}"; do [[ -f $jar ]] || return 1; done ;;
    registry) [[ -f $STACK/install/registry/quarkus-run.jar ]] ;;
    s3proxy) [[ -f $STACK/install/s3proxy/s3proxy.jar ]] ;;
  esac
}

ensure_installed() {
  local -a missing=()
  local svc
  for svc in "$@"; do installed "$svc" || missing+=("$svc"); done
  (( ${#missing[@]} )) || return 0
  command -v mvn >/dev/null || die "mvn not found; it is needed once to fetch ${missing[*]}"
  mkdir -p "$STACK/install" "$STACK/logs"
  for svc in "${missing[@]}"; do
    # A version bump while the old one runs: stop it rather than swap jars under a live JVM.
    if svc_pid "$svc" >/dev/null; then
      say "$svc install changed; stopping the running one first"
      stop_services "$svc"
    fi
    rm -f "$STACK/install/$svc.stamp"
    # Never mix two versions' files (the registry's lib/ in particular).
    case $svc in
      kafka) rm -f "$STACK/install/kafka.classpath" ;;
      registry) rm -rf "$STACK/install/registry" "$STACK/build/registry" ;;
      s3proxy) rm -rf "$STACK/install/s3proxy" "$STACK/build/s3proxy" ;;
    esac
  done
  local list; list=$(IFS=,; echo "${missing[*]}")
  say "installing ${missing[*]} (Maven; first time only) ..."
  local t0=$SECONDS log="$STACK/logs/install.log"
  echo "==== $(date -Is) mvn package -pl $list" >>"$log"
  # One Maven JVM for everything that is missing; -T builds the modules in parallel.
  if ! mvn -B -q -ntp -Dstyle.color=never -f "$SCRIPT_DIR/pom.xml" -T "${#missing[@]}" \
      -pl "$list" package "-Dstack.home=$STACK" >>"$log" 2>&1; then
    tail -n 15 "$log" >&2
    die "install of ${missing[*]} failed; see $(rel "$log")"
  fi
  for svc in "${missing[@]}"; do
    pom_sum "$svc" >"$STACK/install/$svc.stamp"
    installed "$svc" || die "install of $svc produced no usable artifact; see $(rel "$log")"
  done
  say "installed ${missing[*]} in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------- processes

# Every JVM we start carries these two -D markers. A pid from a pid file only counts
# if its command line still has them, so a stale pid file from a crashed run (pid
# reused by something else) is never mistaken for our service, and never killed.
marker() { echo "-Dstack.svc=$1"; }

pid_is_ours() {  # $1 pid, $2 svc
  local cmd
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  cmd=$(tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline") || return 1
  [[ $cmd == *"$(marker "$2") "* && $cmd == *"-Dstack.home=$STACK "* ]]
}

svc_pid() {  # prints the pid of our running $1, or fails (and drops a stale pid file)
  local svc=$1 pf="$STACK/run/$1.pid" pid p
  if [[ -f $pf ]]; then
    pid=$(cat "$pf" 2>/dev/null || true)
    if pid_is_ours "$pid" "$svc"; then echo "$pid"; return 0; fi
    rm -f "$pf"
  fi
  # Pid file lost (e.g. .stack/run deleted) but the JVM lives on: find it by its markers.
  for p in /proc/[0-9]*; do
    p=${p#/proc/}
    if pid_is_ours "$p" "$svc"; then echo "$p" >"$pf"; echo "$p"; return 0; fi
  done
  return 1
}

# Start "$@" detached from this shell: setsid = own session, no controlling terminal,
# so it survives the caller (and its SIGHUP/SIGINT); stdio goes to the service log.
# Working dir is .stack (not the caller's cwd, which may be a test's temp dir).
# setsid does not fork here (we are not a group leader), so $! is the JVM's own pid.
launch() {
  local svc=$1; shift
  local log="$STACK/logs/$svc.log"
  mkdir -p "$STACK/logs" "$STACK/run" "$STACK/tmp"
  echo "==== $(date -Is) starting $svc" >>"$log"
  # 9>&- : the service must not inherit the stack.sh lock fd, or it would hold the lock
  # for its whole life and block every later stack.sh command.
  (cd "$STACK" && exec setsid "$@" >>"$log" 2>&1 </dev/null 9>&-) &
  echo $! >"$STACK/run/$svc.pid"
}

ensure_ports_free() {  # $1 svc, rest: ports that must not be taken by a foreign process
  local svc=$1 p; shift
  for p in "$@"; do
    port_open "$p" && die "$svc: port $HOST:$p is already in use by a process this stack did not start"
  done
  return 0
}

# Wait until health_$svc passes; fail fast if the JVM dies.
await_healthy() {
  local svc=$1 deadline=$((SECONDS + START_TIMEOUT[$1])) log="$STACK/logs/$1.log"
  while :; do
    if ! svc_pid "$svc" >/dev/null; then
      tail -n 20 "$log" >&2 || true
      die "$svc exited during startup; see $(rel "$log")"
    fi
    "health_$svc" && return 0
    (( SECONDS < deadline )) || die "$svc not healthy after ${START_TIMEOUT[$svc]}s; see $(rel "$log")"
    sleep 1
  done
}

# SIGTERM the given services together, wait up to each one's bound, then SIGKILL.
stop_services() {
  local svc pid
  local -A pids=()
  for svc in "$@"; do
    if pid=$(svc_pid "$svc"); then
      say "stopping $svc (pid $pid)"
      kill -TERM "$pid" 2>/dev/null || true
      pids[$svc]=$pid
    else
      say "$svc already stopped"
    fi
  done
  for svc in "${!pids[@]}"; do
    pid=${pids[$svc]}
    local bound=${STOP_TIMEOUT[$svc]}
    # The registry keeps no local state (all of it is in Kafka); with the broker gone its
    # shutdown only hangs on flushing its producer, so do not wait long for it.
    [[ $svc == registry ]] && ! port_open "$KAFKA_PORT" && bound=3
    local deadline=$((SECONDS + bound))
    while kill -0 "$pid" 2>/dev/null && (( SECONDS < deadline )); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      say "$svc did not stop within ${bound}s; sending SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
      while kill -0 "$pid" 2>/dev/null; do sleep 0.1; done
    fi
    rm -f "$STACK/run/$svc.pid"
    echo "==== $(date -Is) stopped $svc" >>"$STACK/logs/$svc.log"
  done
}

# -------------------------------------------------------------------------- kafka

kafka_tool() {  # run a Kafka CLI class (TopicCommand, StorageTool) on the broker's classpath
  # Short-lived JVM: C1 only + serial GC start noticeably faster.
  "$(java17)" -Xmx256m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -Djava.awt.headless=true \
    -Djava.io.tmpdir="$STACK/tmp" -Dstack.log.level=WARN \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
    -cp "$(cat "$STACK/install/kafka.classpath")" "$@"
}

kafka_topics() {  # a real metadata request against the broker; prints topic names
  kafka_tool org.apache.kafka.tools.TopicCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
    --command-config "$STACK/kafka/client.properties" "$@"
}

write_kafka_config() {
  mkdir -p "$STACK/kafka/data" "$STACK/logs" "$STACK/tmp"
  cat >"$STACK/kafka/server.properties" <<EOF
# Generated by stack/stack.sh on every start; edit the script, not this file.
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,MTLS://$HOST:$KAFKA_MTLS_PORT
advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT,SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,MTLS://$HOST:$KAFKA_MTLS_PORT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL,MTLS:SSL
log.dirs=$STACK/kafka/data
num.partitions=$TOPIC_PARTITIONS
default.replication.factor=1
# Topics are created explicitly (stack.sh, the registry's own journal topics), so a
# typo'd topic name fails loudly instead of silently creating a new topic.
auto.create.topics.enable=false
# Single node: every internal topic must live with one replica.
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
# Consumers join immediately instead of waiting 3 s for more members (faster tests).
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4

# ---- Authorization. PLAINTEXT (and the controller and inter-broker traffic on it) has no
# authentication: every client there is User:ANONYMOUS, a super user, so the registry, the
# demo, the tests and this script work as before. ACLs only bind the secured listeners.
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:ANONYMOUS
allow.everyone.if.no.acl.found=false

# ---- TLS, shared by SASL_SSL ($KAFKA_SASL_SSL_PORT) and MTLS ($KAFKA_MTLS_PORT).
# broker.p12: key + certificate with SAN DNS:localhost, IP:127.0.0.1 only, signed by ca.pem.
ssl.keystore.type=PKCS12
ssl.keystore.location=$SECURITY/broker.p12
ssl.keystore.password=$STORE_PASS
ssl.key.password=$STORE_PASS
ssl.truststore.type=PKCS12
ssl.truststore.location=$SECURITY/truststore.p12
ssl.truststore.password=$STORE_PASS
# MTLS: a client certificate signed by ca.pem is required; the principal is its CN
# (CN=$MTLS_CN,O=... -> User:$MTLS_CN).
listener.name.mtls.ssl.client.auth=required
ssl.principal.mapping.rules=RULE:^CN=([^,]+)(,.*)?\$/\$1/,DEFAULT

# ---- SASL on SASL_SSL. SCRAM credentials live in the cluster metadata (kafka-configs);
# PLAIN users are listed here; OAUTHBEARER uses Kafka's default server callback handler for
# it, OAuthBearerUnsecuredValidatorCallbackHandler: unsigned JWTs (alg none), principal =
# the sub claim, exp required. For testing only.
listener.name.sasl_ssl.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512,PLAIN,OAUTHBEARER
listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required$(plain_users);
listener.name.sasl_ssl.oauthbearer.sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub="kafka-broker";
EOF
  cat >"$STACK/kafka/client.properties" <<EOF
# Used by stack.sh's TopicCommand calls: fail fast when the broker is not up yet.
request.timeout.ms=5000
default.api.timeout.ms=8000
EOF
}

launch_kafka() {
  ensure_ports_free kafka "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_MTLS_PORT"
  ensure_security
  write_kafka_config
  # KRaft needs its log dir formatted once (writes meta.properties); later starts reuse it.
  if [[ ! -f $STACK/kafka/data/meta.properties ]]; then
    say "formatting kafka storage (first start)"
    kafka_tool kafka.tools.StorageTool format -t "$KAFKA_CLUSTER_ID" \
      -c "$STACK/kafka/server.properties" >>"$STACK/logs/kafka.log" 2>&1 \
      || die "kafka storage format failed; see $(rel "$STACK/logs/kafka.log")"
  fi
  say "starting kafka"
  launch kafka "$(java17)" -Xms512m -Xmx512m -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:InitiatingHeapOccupancyPercent=35 -XX:+ExplicitGCInvokesConcurrent \
    -Djava.awt.headless=true "$(marker kafka)" "-Dstack.home=$STACK" \
    -Djava.io.tmpdir="$STACK/tmp" -Dstack.log.level=INFO \
    -Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" \
    -cp "$(cat "$STACK/install/kafka.classpath")" kafka.Kafka "$STACK/kafka/server.properties"
}

KAFKA_TOPIC_LIST=""
health_kafka() {
  port_open "$KAFKA_PORT" || return 1
  KAFKA_TOPIC_LIST=$(kafka_topics --list 2>/dev/null) || return 1
}

ensure_topics() {  # uses the list fetched by the last successful health_kafka
  local spec name parts conf c
  local -a args
  local -A jobs=()
  for spec in "${TOPICS[@]}"; do
    IFS='|' read -r name parts conf <<<"$spec"
    grep -qxF "$name" <<<"$KAFKA_TOPIC_LIST" && continue
    say "creating topic $name ($parts partitions)"
    args=(--create --if-not-exists --topic "$name" --partitions "$parts" --replication-factor 1)
    for c in ${conf//,/ }; do args+=(--config "$c"); done
    # One JVM per topic (TopicCommand takes one topic); run them side by side.
    kafka_topics "${args[@]}" >>"$STACK/logs/kafka-tools.log" 2>&1 &
    jobs[$name]=$!
  done
  for name in "${!jobs[@]}"; do
    wait "${jobs[$name]}" || die "could not create topic $name; see $(rel "$STACK/logs/kafka-tools.log")"
  done
}

# ------------------------------------------------------------------ kafka security

plain_users() {  # the PLAIN login module's user_<name>="<password>" options
  local u
  for u in "${KAFKA_USERS[@]}"; do printf ' user_%s="%s"' "${u%%|*}" "${u#*|}"; done
}

keytool_bin() {  # the keytool of the JDK that runs Kafka
  local k
  k="$(dirname "$(readlink -f "$(java17)")")/keytool"
  [[ -x $k ]] || k=$(command -v keytool) || die "keytool not found (it comes with the JDK)"
  echo "$k"
}

SECURITY_FILES=(ca.pem ca-key.pem broker.pem broker-key.pem broker.p12 truststore.p12
  client.pem client-key.pem client.p12 other-ca.pem other-ca-key.pem other-truststore.p12
  other-client.pem other-client-key.pem)

security_complete() {  # every file present, and the CA and leaf certificates valid for 30 more days
  local f
  for f in "${SECURITY_FILES[@]}"; do [[ -s $SECURITY/$f ]] || return 1; done
  for f in ca.pem broker.pem client.pem other-ca.pem; do
    openssl x509 -checkend 2592000 -noout -in "$SECURITY/$f" >/dev/null 2>&1 || return 1
  done
}

# openssl config for one certificate: $1 = ca | server | client, $2 = CN.
cert_conf() {
  local kind=$1 cn=$2
  printf '[req]\ndistinguished_name = dn\nprompt = no\n[dn]\nO = tow-and-go local stack\nCN = %s\n[ext]\n' "$cn"
  case $kind in
    ca) printf 'basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n' ;;
    server) printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = serverAuth\nsubjectAltName = DNS:localhost, IP:127.0.0.1\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n' ;;
    client) printf 'basicConstraints = critical, CA:FALSE\nkeyUsage = critical, digitalSignature, keyEncipherment\nextendedKeyUsage = clientAuth\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n' ;;
  esac
}

# $1 dir, $2 name, $3 kind, $4 CN, $5 signing CA name (omitted for a self-signed CA).
# Writes <name>.pem (certificate) and <name>-key.pem (unencrypted PKCS#8 RSA key).
make_cert() {
  local d=$1 name=$2 kind=$3 cn=$4 ca=${5:-}
  cert_conf "$kind" "$cn" >"$d/$name.cnf"
  if [[ -z $ca ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 -config "$d/$name.cnf" -extensions ext \
      -keyout "$d/$name-key.pem" -out "$d/$name.pem" 2>>"$d/openssl.log"
  else
    openssl req -new -newkey rsa:2048 -nodes -config "$d/$name.cnf" \
      -keyout "$d/$name-key.pem" -out "$d/$name.csr" 2>>"$d/openssl.log"
    openssl x509 -req -sha256 -days 3650 -in "$d/$name.csr" -CA "$d/$ca.pem" -CAkey "$d/$ca-key.pem" \
      -set_serial "0x$(openssl rand -hex 16)" -extfile "$d/$name.cnf" -extensions ext \
      -out "$d/$name.pem" 2>>"$d/openssl.log"
  fi
}

# Certificates and stores for the secured listeners, made once (again only if a file is
# missing or a certificate expires within 30 days; then all of them, so the chain stays one).
ensure_certs() {
  security_complete && return 0
  command -v openssl >/dev/null || die "openssl not found; it makes the certificates of the secured listeners"
  local keytool d
  keytool=$(keytool_bin)
  mkdir -p "$STACK"
  d=$(mktemp -d "$STACK/security.new.XXXXXX")
  say "making certificates for the secured kafka listeners in $(rel "$SECURITY")"
  {
    make_cert "$d" ca ca "tow-and-go local CA" &&
    make_cert "$d" broker server tow-and-go-broker ca &&
    make_cert "$d" client client "$MTLS_CN" ca &&
    # An unrelated CA (and a client certificate it signed), for "unknown CA" tests.
    make_cert "$d" other-ca ca "tow-and-go unrelated CA" &&
    make_cert "$d" other-client client "$MTLS_CN" other-ca &&
    openssl pkcs12 -export -name broker -in "$d/broker.pem" -inkey "$d/broker-key.pem" -certfile "$d/ca.pem" \
      -passout "pass:$STORE_PASS" -out "$d/broker.p12" &&
    openssl pkcs12 -export -name client -in "$d/client.pem" -inkey "$d/client-key.pem" -certfile "$d/ca.pem" \
      -passout "pass:$STORE_PASS" -out "$d/client.p12" &&
    # Trust stores need keytool: a PKCS12 made by OpenSSL 3.0 holds no trusted-certificate entry Java reads.
    "$keytool" -importcert -noprompt -alias ca -file "$d/ca.pem" -storetype PKCS12 \
      -keystore "$d/truststore.p12" -storepass "$STORE_PASS" &&
    "$keytool" -importcert -noprompt -alias other-ca -file "$d/other-ca.pem" -storetype PKCS12 \
      -keystore "$d/other-truststore.p12" -storepass "$STORE_PASS"
  } >>"$d/openssl.log" 2>&1 || { tail -n 5 "$d/openssl.log" >&2; die "could not make certificates; see $(rel "$d/openssl.log")"; }
  rm -f "$d"/*.csr "$d"/*.cnf "$d/openssl.log"
  chmod 600 "$d"/*-key.pem
  chmod 755 "$d"
  rm -rf "$SECURITY"
  mv "$d" "$SECURITY"
  if svc_pid kafka >/dev/null && kafka_secured; then
    say "new certificates: the running kafka still serves the old ones until 'stack.sh restart kafka'"
  fi
}

# $1 file name, then the SASL/SSL lines of a Java client configuration.
write_client_config() {
  local f="$SECURITY/$1" port=$2; shift 2
  {
    echo "# Generated by stack/stack.sh; Kafka's tools: --command-config / --producer.config / --consumer.config $f"
    echo "bootstrap.servers=$HOST:$port"
    printf '%s\n' "$@"
    # The broker certificate is checked against ca.pem and its SAN (localhost, 127.0.0.1):
    # ssl.endpoint.identification.algorithm keeps its default, https.
    echo "ssl.truststore.type=PKCS12"
    echo "ssl.truststore.location=$SECURITY/truststore.p12"
    echo "ssl.truststore.password=$STORE_PASS"
  } >"$f"
}

# Ready client configurations in the Java client's properties format, one per way in.
write_client_configs() {
  local scram=org.apache.kafka.common.security.scram.ScramLoginModule
  write_client_config client-scram-sha-512.properties "$KAFKA_SASL_SSL_PORT" security.protocol=SASL_SSL \
    sasl.mechanism=SCRAM-SHA-512 "sasl.jaas.config=$scram required username=\"tow-and-go\" password=\"tow-and-go-secret\";"
  write_client_config client-scram-sha-256.properties "$KAFKA_SASL_SSL_PORT" security.protocol=SASL_SSL \
    sasl.mechanism=SCRAM-SHA-256 "sasl.jaas.config=$scram required username=\"tow-and-go\" password=\"tow-and-go-secret\";"
  write_client_config client-plain.properties "$KAFKA_SASL_SSL_PORT" security.protocol=SASL_SSL \
    sasl.mechanism=PLAIN "sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required username=\"tow-and-go\" password=\"tow-and-go-secret\";"
  # The Java client's default OAUTHBEARER login makes an unsigned token itself (sub, iat, exp).
  write_client_config client-oauthbearer.properties "$KAFKA_SASL_SSL_PORT" security.protocol=SASL_SSL \
    sasl.mechanism=OAUTHBEARER "sasl.jaas.config=org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required unsecuredLoginStringClaim_sub=\"$OAUTH_SUB\";"
  write_client_config client-no-read.properties "$KAFKA_SASL_SSL_PORT" security.protocol=SASL_SSL \
    sasl.mechanism=SCRAM-SHA-512 "sasl.jaas.config=$scram required username=\"no-read\" password=\"no-read-secret\";"
  write_client_config client-mtls.properties "$KAFKA_MTLS_PORT" security.protocol=SSL \
    ssl.keystore.type=PKCS12 "ssl.keystore.location=$SECURITY/client.p12" \
    "ssl.keystore.password=$STORE_PASS" "ssl.key.password=$STORE_PASS"
}

ensure_security() {
  ensure_certs
  write_client_configs
}

kafka_secured() {  # the running broker was started with the secured listeners and ACLs
  grep -q '^authorizer.class.name=' "$STACK/kafka/server.properties" 2>/dev/null
}

# SCRAM users and ACLs, with Kafka's own kafka-configs and kafka-acls over PLAINTEXT (a super
# user). Both are stored in the cluster metadata, so they survive restarts: they are applied
# once per data directory (and again when the lists above change), which keeps `up` and
# `restart kafka` as fast as before. Delete $STACK/kafka/access.applied to apply them again.
ensure_kafka_access() {
  if ! kafka_secured; then
    say "kafka runs without the secured listeners (started by an older stack.sh); 'stack.sh restart kafka' adds them"
    return 0
  fi
  local stamp="$STACK/kafka/access.applied" want rule u mech log="$STACK/logs/kafka-tools.log" job
  local -a args=() tool_pids=()
  want="$(sed -n 's/^directory.id=//p' "$STACK/kafka/data/meta.properties") $(printf '%s\n' "${KAFKA_USERS[@]}" "${ACL_RULES[@]}" | sha256sum | cut -d' ' -f1)"
  [[ -f $stamp && "$(cat "$stamp")" == "$want" ]] && return 0
  say "creating SCRAM users and ACLs for the secured listeners"
  for u in "${KAFKA_USERS[@]}"; do
    # One mechanism per run: a KRaft broker refuses two credentials of one user in one request.
    {
      for mech in SCRAM-SHA-256 SCRAM-SHA-512; do
        kafka_tool org.apache.kafka.tools.ConfigCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
          --command-config "$STACK/kafka/client.properties" --alter --entity-type users \
          --entity-name "${u%%|*}" --add-config "$mech=[password=${u#*|}]" || exit 1
      done
    } >>"$log" 2>&1 &
    tool_pids+=("$!")
  done
  for rule in "${ACL_RULES[@]}"; do
    read -r -a args <<<"$rule"
    # Adding an ACL that exists is a no-op, so this is idempotent.
    kafka_tool org.apache.kafka.tools.AclCommand --bootstrap-server "$HOST:$KAFKA_PORT" \
      --command-config "$STACK/kafka/client.properties" --add --force --resource-pattern-type prefixed \
      "${args[@]}" >>"$log" 2>&1 &
    tool_pids+=("$!")
  done
  for job in "${tool_pids[@]}"; do
    wait "$job" || die "could not create the SCRAM users or ACLs; see $(rel "$log")"
  done
  echo "$want" >"$stamp"
}

tls_handshake() {  # $1 port, rest: extra s_client options; verifies the chain against ca.pem
  timeout 3 openssl s_client -connect "$HOST:$1" -servername localhost -CAfile "$SECURITY/ca.pem" \
    -verify_return_error -verify_hostname localhost "${@:2}" </dev/null >/dev/null 2>&1
}

# One status line for the secured listeners; fails when they are configured but do not answer.
secured_status() {
  local state where rc=0
  where="SASL_SSL $HOST:$KAFKA_SASL_SSL_PORT, mTLS $HOST:$KAFKA_MTLS_PORT (client configs: $(rel "$SECURITY")/*.properties)"
  if ! svc_pid kafka >/dev/null; then
    state="stopped"; rc=3
  elif ! kafka_secured; then
    state="not enabled"
    where="kafka was started by an older stack.sh; 'stack.sh restart kafka' adds them"
  elif tls_handshake "$KAFKA_SASL_SSL_PORT" && tls_handshake "$KAFKA_MTLS_PORT" \
      -cert "$SECURITY/client.pem" -key "$SECURITY/client-key.pem"; then
    state="TLS handshakes ok"
  else
    state="NOT answering TLS"; rc=3
  fi
  printf '%-9s %-32s %s\n' kafka-tls "$state" "$where"
  return $rc
}

# ------------------------------------------------------------------------- s3proxy

launch_s3proxy() {
  ensure_ports_free s3proxy "$S3_PORT"
  mkdir -p "$STACK/s3" "$STACK/s3proxy"
  local props="$STACK/s3proxy/s3proxy.properties" op
  # Regenerated on every start so that a plain restart drops a previous latency setting.
  cat >"$props" <<EOF
# Generated by stack/stack.sh on every start.
s3proxy.endpoint=http://$HOST:$S3_PORT
s3proxy.authorization=aws-v4
s3proxy.identity=$S3_ACCESS_KEY
s3proxy.credential=$S3_SECRET_KEY
jclouds.provider=filesystem-nio2
jclouds.identity=$S3_ACCESS_KEY
jclouds.credential=$S3_SECRET_KEY
jclouds.filesystem.basedir=$STACK/s3
EOF
  if [[ -n ${S3PROXY_LATENCY_MS:-} ]]; then
    [[ $S3PROXY_LATENCY_MS =~ ^[0-9]+$ ]] || die "S3PROXY_LATENCY_MS must be a number of milliseconds"
    # LatencyBlobStore middleware: s3proxy.latency-blobstore.<op>.latency=<ms>, op "*" = all.
    # Op names (S3Proxy 4.1): get put copy list metadata blob-exists remove upload-part
    # container-exists create-container delete-container clear-container ... (see its source).
    local -a ops
    IFS=, read -r -a ops <<<"${S3PROXY_LATENCY_OPS:-*}"
    for op in "${ops[@]}"; do
      echo "s3proxy.latency-blobstore.$op.latency=$S3PROXY_LATENCY_MS" >>"$props"
    done
    say "s3proxy latency injection: +${S3PROXY_LATENCY_MS}ms on ${S3PROXY_LATENCY_OPS:-every operation}"
  fi
  say "starting s3proxy"
  # NopStatusListener: drops logback's own config dump from the log.
  launch s3proxy "$(java17)" -Xmx256m -XX:+UseSerialGC "$(marker s3proxy)" "-Dstack.home=$STACK" \
    -Djava.io.tmpdir="$STACK/tmp" \
    -Dlogback.statusListenerClass=ch.qos.logback.core.status.NopStatusListener \
    -jar "$STACK/install/s3proxy/s3proxy.jar" --properties "$props"
}

health_s3proxy() {  # any HTTP answer (anonymous requests get 403) means it serves
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 "http://$HOST:$S3_PORT/" || true)
  [[ $code =~ ^[1-5][0-9][0-9]$ ]]
}

s3_curl() {  # curl with AWS SigV4 using the stack's fixed local credentials
  # curl 7.88 does not send x-amz-content-sha256 itself; S3Proxy requires it.
  curl -s --max-time 60 --aws-sigv4 "aws:amz:$S3_REGION:s3" --user "$S3_ACCESS_KEY:$S3_SECRET_KEY" \
    -H "x-amz-content-sha256: UNSIGNED-PAYLOAD" "$@"
}

ensure_bucket() {  # a real signed CreateBucket; 409 = already exists (ours)
  local code
  code=$(s3_curl -o /dev/null -w '%{http_code}' -X PUT "http://$HOST:$S3_PORT/$S3_BUCKET" || true)
  case $code in
    200) say "created bucket $S3_BUCKET" ;;
    409) ;;
    *) die "could not create bucket $S3_BUCKET (HTTP $code); see $(rel "$STACK/logs/s3proxy.log")" ;;
  esac
}

s3proxy_latency_note() {
  local f="$STACK/s3proxy/s3proxy.properties"
  if [[ -f $f ]] && grep -q '^s3proxy.latency-blobstore' "$f"; then
    echo " [latency: $(grep '^s3proxy.latency-blobstore' "$f" | sed 's/^s3proxy.latency-blobstore\.//; s/\.latency=/=/' | paste -sd, -)ms]"
  fi
}

# ------------------------------------------------------------------------ registry

launch_registry() {
  port_open "$KAFKA_PORT" || die "registry stores its data in kafka; start it first (stack.sh start kafka)"
  ensure_ports_free registry "$REGISTRY_PORT" "$REGISTRY_MGMT_PORT"
  local java
  java=$(pick_java 21 "${REGISTRY_JAVA_HOME:-}") \
    || die "Apicurio Registry needs Java 21+; none found (set REGISTRY_JAVA_HOME)"
  mkdir -p "$STACK/registry/tmp"
  say "starting registry"
  # KafkaSQL: the registry's state is a journal topic on our broker (kafkasql-journal),
  # replayed at startup, so schemas and their ids survive a registry restart. The registry
  # creates its topics itself; topic.partitions=1 keeps the journal on one partition as
  # upstream runs it (otherwise it would inherit the broker's num.partitions=6).
  # poll.timeout: startup probes the journal/snapshot topics with polls of this length;
  # the 5 s default made every start ~10 s slower.
  # C1-only JIT + serial GC: ~35% faster boot on 2 cores; throughput is irrelevant here.
  # No auth is configured (the default), so the ccompat API is open on loopback.
  # Global rule COMPATIBILITY=BACKWARD applies to every subject without its own config.
  launch registry "$java" -Xms128m -Xmx512m -XX:TieredStopAtLevel=1 -XX:+UseSerialGC \
    "$(marker registry)" "-Dstack.home=$STACK" \
    -Djava.io.tmpdir="$STACK/registry/tmp" \
    -Djava.util.logging.manager=org.jboss.logmanager.LogManager \
    "-Dquarkus.http.host=$HOST" "-Dquarkus.http.port=$REGISTRY_PORT" \
    "-Dquarkus.management.host=$HOST" "-Dquarkus.management.port=$REGISTRY_MGMT_PORT" \
    -Dapicurio.storage.kind=kafkasql \
    "-Dapicurio.kafkasql.bootstrap.servers=$HOST:$KAFKA_PORT" \
    -Dapicurio.kafkasql.topic.partitions=1 \
    -Dapicurio.kafkasql.consumer.poll.timeout=500 \
    -Dapicurio.rules.global.compatibility=BACKWARD \
    -Dapicurio.storage.snapshot.location="$STACK/registry/tmp" \
    -Dapicurio.import.work-dir="$STACK/registry/tmp" \
    -Dquarkus.http.access-log.enabled=false \
    -jar "$STACK/install/registry/quarkus-run.jar"
}

health_registry() {
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 3 \
    "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7/subjects" || true)
  [[ $code == 200 ]]
}

# A registry that answers reads may still be joining its KafkaSQL journal: the first write can
# then take longer than a client's timeout. `up` returns only once a write round-trips, by
# registering (idempotently: same schema, same id) a one-field probe schema.
ensure_registry_writable() {
  local deadline=$((SECONDS + 120)) code
  local body='{"schema":"{\"type\":\"record\",\"name\":\"StackProbe\",\"fields\":[{\"name\":\"ok\",\"type\":\"boolean\"}]}"}'
  while :; do
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST \
      -H 'Content-Type: application/vnd.schemaregistry.v1+json' --data "$body" \
      "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7/subjects/_stack-probe-value/versions" || true)
    [[ $code == 200 ]] && return 0
    (( SECONDS < deadline )) || die "registry does not accept writes (last HTTP status $code); see $(rel "$STACK/logs/registry.log")"
    sleep 1
  done
}

# ---------------------------------------------------------------------- commands

url_of() {
  case $1 in
    kafka)
      echo "$HOST:$KAFKA_PORT (bootstrap; controller $HOST:$KAFKA_CONTROLLER_PORT$(kafka_secured \
        && echo "; SASL_SSL $HOST:$KAFKA_SASL_SSL_PORT, mTLS $HOST:$KAFKA_MTLS_PORT"))" ;;
    s3proxy) echo "http://$HOST:$S3_PORT (bucket $S3_BUCKET, key $S3_ACCESS_KEY/$S3_SECRET_KEY, path-style)$(s3proxy_latency_note)" ;;
    registry) echo "http://$HOST:$REGISTRY_PORT/apis/ccompat/v7" ;;
  esac
}

# Bring services up: launch everything that is not running, then wait for health.
# kafka and s3proxy start in parallel; the registry waits for kafka.
start_services() {
  local -A want=() started=()
  local svc
  for svc in "$@"; do want[$svc]=1; done
  ensure_installed "$@"
  for svc in kafka s3proxy; do
    [[ -n ${want[$svc]:-} ]] || continue
    if ! svc_pid "$svc" >/dev/null; then "launch_$svc"; started[$svc]=1; fi
  done
  if [[ -n ${want[kafka]:-} ]]; then
    await_healthy kafka
    # Users and ACLs (JVMs of their own) alongside the topic creation.
    local access_pid
    ensure_kafka_access &
    access_pid=$!
    ensure_topics
    wait "$access_pid" || exit 1
  fi
  if [[ -n ${want[registry]:-} ]] && ! svc_pid registry >/dev/null; then
    launch_registry; started[registry]=1
  fi
  if [[ -n ${want[s3proxy]:-} ]]; then
    await_healthy s3proxy
    ensure_bucket
  fi
  if [[ -n ${want[registry]:-} ]]; then
    await_healthy registry
    ensure_registry_writable
  fi
  for svc in "${SERVICES[@]}"; do
    [[ -n ${want[$svc]:-} ]] || continue
    printf '%-9s %s  %s\n' "$svc" "$([[ -n ${started[$svc]:-} ]] && echo started || echo running)" "$(url_of "$svc")"
  done
}

cmd_status() {
  local svc pid rc=0 state
  for svc in "${SERVICES[@]}"; do
    if pid=$(svc_pid "$svc"); then
      if "health_$svc"; then
        state="running, healthy (pid $pid)"
      else
        state="running, NOT healthy (pid $pid)"; rc=3
      fi
    else
      state="stopped"; rc=3
    fi
    printf '%-9s %-32s %s\n' "$svc" "$state" "$(url_of "$svc")"
  done
  secured_status || rc=3
  return $rc
}

cmd_clean() {
  stop_services registry s3proxy
  stop_services kafka
  if [[ ${1:-} == --all ]]; then
    rm -rf "$STACK"
    say "removed $(rel "$STACK") (including the install cache)"
  else
    rm -rf "$STACK/kafka" "$STACK/s3" "$STACK/s3proxy" "$STACK/registry" "$STACK/logs" \
      "$STACK/run" "$STACK/tmp" "$STACK/build"
    say "removed data and logs under $(rel "$STACK") (install cache kept; clean --all drops it)"
  fi
}

usage() { sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 2; }

check_overrides() {  # the STACK_* environment overrides, before anything uses them
  local p
  [[ $STACK == /* ]] || die "STACK_HOME must be an absolute path (got '$STACK')"
  for p in "$KAFKA_PORT" "$KAFKA_CONTROLLER_PORT" "$KAFKA_SASL_SSL_PORT" "$KAFKA_MTLS_PORT" \
      "$REGISTRY_PORT" "$REGISTRY_MGMT_PORT" "$S3_PORT"; do
    [[ $p =~ ^[0-9]+$ ]] || die "ports must be numbers (got '$p' from a STACK_*_PORT variable)"
  done
}

main() {
  local cmd=${1:-}
  [[ -n $cmd ]] || usage
  shift
  check_overrides
  case $cmd in
    up)
      take_lock
      start_services "${SERVICES[@]}" ;;
    down)
      take_lock
      stop_services registry s3proxy   # registry first: it is a client of kafka
      stop_services kafka
      say "all stopped (data kept in $(rel "$STACK"))" ;;
    status) cmd_status ;;
    start|stop|restart)
      local svc=${1:-}
      is_service "$svc" || die "usage: stack.sh $cmd <kafka|registry|s3proxy>"
      take_lock
      # Check before stopping anything, so a failing `restart registry` leaves it running.
      if [[ $svc == registry && $cmd != stop ]] && ! port_open "$KAFKA_PORT"; then
        die "registry stores its data in kafka; start it first (stack.sh start kafka)"
      fi
      [[ $cmd == start ]] || stop_services "$svc"
      [[ $cmd == stop ]] || start_services "$svc" ;;
    install)
      take_lock
      ensure_installed "${SERVICES[@]}"
      ensure_security ;;
    clean)
      take_lock
      cmd_clean "${1:-}" ;;
    -h|--help|help) usage ;;
    *) die "unknown command '$cmd' (up|down|status|start|stop|restart|install|clean)" ;;
  esac
}

main "$@"
