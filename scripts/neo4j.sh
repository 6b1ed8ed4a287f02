#!/usr/bin/env bash
# Local Neo4j Community 5.26 (embedded DBMS + Bolt on 127.0.0.1) for ctxrec development and CI.
#
#   scripts/neo4j.sh start|stop|status|restart|build [--port N] [--data DIR] [--password PW]
#
# Environment: NEO4J_PORT (7687), NEO4J_PASSWORD (ctxrec-test-password), NEO4J_DATA
# (tools/neo4j/data), NEO4J_START_TIMEOUT (120 s), NEO4J_STOP_TIMEOUT (60 s),
# NEO4J_JAVA_OPTS (replaces the default JVM flags), NEO4J_PAGECACHE_MB (256),
# NEO4J_PYTHON (interpreter with the neo4j driver for the readiness check; default .venv/bin/python).
# The server is built from Maven Central (tools/neo4j/pom.xml) on first use; later starts
# skip the build unless tools/neo4j/pom.xml or its sources changed.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TOOL="$ROOT/tools/neo4j"
TARGET="$TOOL/target"
STAMP="$TARGET/lib/.ctxrec-build-stamp"
MAIN_CLASS="org.ctxrec.tools.LocalNeo4j"
NEO4J_USER="neo4j"

usage() {
    sed -n '2,11p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
port_arg=""
data_arg=""
password_arg=""
while [[ $# -gt 0 ]]; do
    case "$1" in
        --port) port_arg="${2:?--port needs a value}"; shift 2 ;;
        --port=*) port_arg="${1#*=}"; shift ;;
        --data) data_arg="${2:?--data needs a value}"; shift 2 ;;
        --data=*) data_arg="${1#*=}"; shift ;;
        --password) password_arg="${2:?--password needs a value}"; shift 2 ;;
        --password=*) password_arg="${1#*=}"; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "neo4j.sh: unknown argument: $1" >&2; usage >&2; exit 2 ;;
    esac
done

DATA="${data_arg:-${NEO4J_DATA:-$TOOL/data}}"
mkdir -p "$DATA"
DATA="$(cd "$DATA" && pwd)"
PIDFILE="$DATA/neo4j.pid"
STATEFILE="$DATA/neo4j.state"   # port and password of the latest start (the data folder is git-ignored)
LOG="$DATA/neo4j.log"
BUILD_LOG="$DATA/build.log"
# Port/password: flag > env > what this data folder was last started with (not for 'start',
# which sets them) > defaults.
state_get() { [[ -r "$STATEFILE" ]] && sed -n "s/^$1=//p" "$STATEFILE" | head -n 1; }
if [[ "$cmd" != start ]]; then
    saved_port="$(state_get port || true)"
    saved_password="$(state_get password || true)"
fi
PORT="${port_arg:-${NEO4J_PORT:-${saved_port:-7687}}}"
PASSWORD="${password_arg:-${NEO4J_PASSWORD:-${saved_password:-ctxrec-test-password}}}"
[[ "$PORT" =~ ^[0-9]+$ ]] || { echo "neo4j.sh: bad port: $PORT" >&2; exit 2; }
START_TIMEOUT="${NEO4J_START_TIMEOUT:-120}"
STOP_TIMEOUT="${NEO4J_STOP_TIMEOUT:-60}"
# Serial GC: ~120 MB less RSS than G1 on this heap size and no extra GC threads on a 2-core box.
# (-XX:TieredStopAtLevel=1 halves start-up CPU but makes heavy Cypher ~4x slower: not default.)
DEFAULT_JAVA_OPTS=(
    -Xms256m -Xmx1g
    -XX:+UseSerialGC -XX:+ExitOnOutOfMemoryError -XX:-OmitStackTraceInFastThrow
    -XX:+UnlockExperimentalVMOptions -XX:+TrustFinalNonStaticFields -XX:+DisableExplicitGC
    -Djdk.nio.maxCachedBufferSize=1024 -Dio.netty.tryReflectionSetAccessible=true
    -Dlog4j2.disable.jmx=true
    --add-opens=java.base/java.nio=ALL-UNNAMED --add-opens=java.base/java.io=ALL-UNNAMED
    --add-opens=java.base/sun.nio.ch=ALL-UNNAMED --add-opens=java.base/java.lang=ALL-UNNAMED
)
if [[ -n "${NEO4J_JAVA_OPTS:-}" ]]; then
    read -r -a JAVA_OPTS <<<"$NEO4J_JAVA_OPTS"
else
    JAVA_OPTS=("${DEFAULT_JAVA_OPTS[@]}")
fi
if [[ -n "${JAVA_HOME:-}" && -x "$JAVA_HOME/bin/java" ]]; then JAVA="$JAVA_HOME/bin/java"; else JAVA=java; fi
if [[ -n "${NEO4J_PYTHON:-}" ]]; then PY="$NEO4J_PYTHON"
elif [[ -x "$ROOT/.venv/bin/python" ]]; then PY="$ROOT/.venv/bin/python"; else PY=python3; fi

say() { echo "neo4j.sh: $*"; }
die() { echo "neo4j.sh: $*" >&2; exit 1; }

env_line() {
    echo "NEO4J_URI=bolt://127.0.0.1:$PORT NEO4J_USER=$NEO4J_USER NEO4J_PASSWORD=$PASSWORD"
}

# --- build ------------------------------------------------------------------------------
build_needed() {
    [[ -f "$STAMP" && -f "$TARGET/classes/org/ctxrec/tools/LocalNeo4j.class" ]] || return 0
    [[ -n "$(find "$TOOL/pom.xml" "$TOOL/src" -newer "$STAMP" -print -quit)" ]]
}

# Pids of LocalNeo4j processes that run from this build (any --data); pure bash, no pgrep.
servers_from_target() {
    local f cmdline pids=()
    for f in /proc/[0-9]*/cmdline; do
        cmdline="$(tr '\0' ' ' <"$f" 2>/dev/null)" || continue
        if [[ "$cmdline" == *"$TARGET/classes:"*"$MAIN_CLASS"* ]]; then
            f="${f#/proc/}"
            pids+=("${f%/cmdline}")
        fi
    done
    echo "${pids[*]}"
}

build() {
    command -v mvn >/dev/null || die "mvn (Maven 3) not found; it is needed once to build tools/neo4j"
    local t0=$SECONDS
    local running
    running="$(servers_from_target)"
    if [[ -n "$running" ]]; then
        die "server(s) built from $TARGET still running (pid $running); stop them before rebuilding"
    fi
    rm -rf "$TARGET/lib"   # copy-dependencies never removes jars of an older version
    say "building tools/neo4j (Neo4j Community from Maven Central; log: $BUILD_LOG)"
    # Offline first (everything is usually in ~/.m2 already), then online.
    if ! mvn -o -q -B -f "$TOOL/pom.xml" package >"$BUILD_LOG" 2>&1; then
        if ! mvn -q -B -f "$TOOL/pom.xml" package >>"$BUILD_LOG" 2>&1; then
            tail -n 40 "$BUILD_LOG" >&2
            die "build failed (see $BUILD_LOG)"
        fi
    fi
    touch "$STAMP"
    say "built in $((SECONDS - t0)) s"
}

# --- process state ----------------------------------------------------------------------
read_pid() {
    [[ -s "$PIDFILE" ]] || return 1
    local pid
    pid="$(cat "$PIDFILE")"
    [[ "$pid" =~ ^[0-9]+$ ]] || return 1
    # Guard against a recycled pid: the process must be our Java main.
    kill -0 "$pid" 2>/dev/null || return 1
    tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q "$MAIN_CLASS" || return 1
    echo "$pid"
}

port_open() {
    (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

# The server printed its readiness line after the latest start marker in the log.
logged_ready() {
    awk -v want="ready on bolt://127.0.0.1:$PORT" \
        '/^===== / {f = 0} index($0, want) {f = 1} END {exit !f}' "$LOG" 2>/dev/null
}

# A real Bolt round trip: authenticate and run RETURN 1.
bolt_ok() {
    if "$PY" -c 'import neo4j' 2>/dev/null; then
        NEO4J_CHECK_URI="bolt://127.0.0.1:$PORT" NEO4J_CHECK_USER="$NEO4J_USER" NEO4J_CHECK_PASSWORD="$PASSWORD" \
        timeout 30 "$PY" - <<'PY' 2>/dev/null
import os, sys
import neo4j
from neo4j import GraphDatabase
with GraphDatabase.driver(os.environ["NEO4J_CHECK_URI"],
                          auth=(os.environ["NEO4J_CHECK_USER"], os.environ["NEO4J_CHECK_PASSWORD"]),
                          connection_timeout=5) as d:
    try:
        records, _, _ = d.execute_query("RETURN 1 AS ok")
    except neo4j.exceptions.AuthError:
        sys.exit(2)
    sys.exit(0 if records and records[0]["ok"] == 1 else 1)
PY
    else
        # No Python driver available: fall back to the server's own readiness line + open port.
        port_open && logged_ready
    fi
}

# --- commands ---------------------------------------------------------------------------
do_start() {
    local pid
    if pid="$(read_pid)"; then
        # Already running: talk to it on the port/password it was started with, unless given.
        if [[ -z "$port_arg" && -z "${NEO4J_PORT:-}" ]]; then PORT="$(state_get port || echo "$PORT")"; fi
        if [[ -z "$password_arg" && -z "${NEO4J_PASSWORD:-}" ]]; then
            PASSWORD="$(state_get password || echo "$PASSWORD")"
        fi
        local rc=0
        bolt_ok || rc=$?
        if (( rc == 2 )); then
            die "already running (pid $pid) but the password is not accepted: set NEO4J_PASSWORD, or restart to apply a new one"
        elif (( rc == 0 )); then
            say "already running (pid $pid, data $DATA)"
            env_line
            return 0
        fi
        say "process $pid exists but Bolt does not answer yet; waiting"
    else
        rm -f "$PIDFILE"
        if port_open; then
            die "port $PORT on 127.0.0.1 is already in use by another process (try --port N or NEO4J_PORT)"
        fi
        if build_needed; then build; fi
        command -v "$JAVA" >/dev/null || die "java (17+) not found"
        {
            echo "===== $(date -u '+%Y-%m-%dT%H:%M:%SZ') start: port $PORT, data $DATA"
        } >>"$LOG"
        (umask 077; printf 'port=%s\npassword=%s\n' "$PORT" "$PASSWORD" >"$STATEFILE")
        # setsid: own session, so the shell's or CI's job-control signals don't reach it.
        NEO4J_PASSWORD="$PASSWORD" NEO4J_PORT="$PORT" NEO4J_DATA="$DATA" \
            setsid nohup "$JAVA" "${JAVA_OPTS[@]}" -cp "$TARGET/classes:$TARGET/lib/*" "$MAIN_CLASS" \
            --port "$PORT" --data "$DATA" </dev/null >>"$LOG" 2>&1 9>&- &
        pid=$!
        echo "$pid" >"$PIDFILE"
        say "starting (pid $pid, data $DATA, log $LOG)"
    fi

    local t0=$SECONDS
    while :; do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PIDFILE"
            echo "----- last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2
            die "server exited during startup"
        fi
        # Cheap checks first (the server logs "ready" only after the password is set);
        # then one real Bolt round trip through the driver.
        if logged_ready && port_open && bolt_ok; then
            break
        fi
        if (( SECONDS - t0 >= START_TIMEOUT )); then
            echo "----- last lines of $LOG:" >&2
            tail -n 40 "$LOG" >&2
            die "Bolt did not answer within ${START_TIMEOUT} s (pid $pid left running; run '$0 stop')"
        fi
        sleep 0.5
    done
    say "ready on bolt://127.0.0.1:$PORT after $((SECONDS - t0)) s"
    env_line
}

do_stop() {
    local pid
    if ! pid="$(read_pid)"; then
        rm -f "$PIDFILE"
        say "not running"
        return 0
    fi
    say "stopping pid $pid"
    kill -TERM "$pid" 2>/dev/null || true
    local t0=$SECONDS
    while kill -0 "$pid" 2>/dev/null; do
        if (( SECONDS - t0 >= STOP_TIMEOUT )); then
            say "no exit after ${STOP_TIMEOUT} s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            sleep 1
            break
        fi
        sleep 0.2
    done
    rm -f "$PIDFILE"
    say "stopped after $((SECONDS - t0)) s"
}

do_status() {
    local pid
    if ! pid="$(read_pid)"; then
        say "not running"
        return 3
    fi
    local rc=0
    bolt_ok || rc=$?
    if (( rc == 0 )); then
        say "running (pid $pid, data $DATA) and answering on bolt://127.0.0.1:$PORT"
        env_line
        return 0
    elif (( rc == 2 )); then
        say "running (pid $pid) but Bolt on 127.0.0.1:$PORT rejects the password (set NEO4J_PASSWORD)"
    else
        say "process $pid is running but Bolt on 127.0.0.1:$PORT does not answer"
    fi
    return 1
}

# One start/stop at a time per data folder (fd 9 is closed for the server itself).
lock() {
    exec 9>"$DATA/.neo4j.lock"
    flock -w "$((START_TIMEOUT + STOP_TIMEOUT + 600))" 9 || die "could not lock $DATA/.neo4j.lock"
}

case "$cmd" in
    start) lock; do_start ;;
    stop) lock; do_stop ;;
    status) do_status ;;
    restart) lock; do_stop; do_start ;;
    build) lock; build ;;
    env) env_line ;;
    ""|-h|--help|help) usage ;;
    *) echo "neo4j.sh: unknown command: $cmd" >&2; usage >&2; exit 2 ;;
esac
