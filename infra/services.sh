#!/usr/bin/env bash
# Starts/stops the local services the tests and the distributed quick start use, on loopback:
#   Apache Kafka (single-node KRaft)   127.0.0.1:9092   (controller 127.0.0.1:9093)
#   ClickHouse server (Debian)         127.0.0.1:9000 native, 127.0.0.1:8123 HTTP
# Data and logs live under .local/ (git-ignored). Usage: infra/services.sh up|down|status
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
LOCAL="$top/.local"
say() { printf 'services: %s\n' "$*"; }
die() { printf 'services: ERROR: %s\n' "$*" >&2; exit 1; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
wait_port() {  # wait_port PORT NAME LOG SECONDS
  local i
  for ((i = 0; i < $4 * 5; i++)); do port_open "$1" && return 0; sleep 0.2; done
  tail -n 30 "$3" >&2 || true
  die "$2 did not open 127.0.0.1:$1 within $4 s (log: $3)"
}
pid_alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }
stop_pid() {  # stop_pid PIDFILE NAME: TERM, wait up to 20 s, then KILL
  pid_alive "$1" || { rm -f "$1"; return 0; }
  local pid i; pid=$(cat "$1"); kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"; say "stopped $2"
}

kafka_up() {
  local dir="$LOCAL/kafka" libs="$LOCAL/kafka/libs"
  [ -f "$libs/.complete" ] || die "Kafka jars missing: run 'make setup' first"
  if pid_alive "$dir/kafka.pid"; then say "kafka already running"; return 0; fi
  port_open 9092 && die "something else listens on 127.0.0.1:9092; stop it or run 'make services-down'"
  mkdir -p "$dir/data"
  sed "s#@DATA@#$dir/data#" "$top/infra/kafka/server.properties" > "$dir/server.properties"
  local cp="$libs/*" java_opts=(-Xms256m -Xmx768m -XX:+UseG1GC -Djava.awt.headless=true
        "-Dlog4j.configuration=file:$top/infra/kafka/log4j.properties" "-Dkafka.logs.dir=$dir")
  if [ ! -f "$dir/data/meta.properties" ]; then
    local cluster; cluster=$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null | tail -n1)
    java "${java_opts[@]}" -cp "$cp" kafka.tools.StorageTool format -t "$cluster" -c "$dir/server.properties" >"$dir/format.log" 2>&1 \
      || { cat "$dir/format.log" >&2; die "formatting Kafka storage failed"; }
  fi
  nohup java "${java_opts[@]}" -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/kafka.out" 2>&1 &
  echo $! > "$dir/kafka.pid"
  wait_port 9092 kafka "$dir/kafka.out" 90
  say "kafka up on 127.0.0.1:9092 (pid $(cat "$dir/kafka.pid"))"
}

clickhouse_up() {
  local dir="$LOCAL/clickhouse"
  command -v clickhouse-server >/dev/null || die "clickhouse-server missing: run 'make setup' first"
  if pid_alive "$dir/clickhouse.pid"; then say "clickhouse already running"; return 0; fi
  port_open 9000 && die "something else listens on 127.0.0.1:9000; stop it (e.g. 'service clickhouse-server stop')"
  mkdir -p "$dir/data" "$dir/tmp" "$dir/user_files" "$dir/format_schemas"
  sed "s#@DIR@#$dir#g" "$top/infra/clickhouse/config.xml" > "$dir/config.xml"
  cp "$top/infra/clickhouse/users.xml" "$dir/users.xml"
  nohup clickhouse-server --config-file="$dir/config.xml" --pid-file="$dir/clickhouse.pid.server" >"$dir/clickhouse.out" 2>&1 &
  echo $! > "$dir/clickhouse.pid"
  wait_port 9000 clickhouse "$dir/clickhouse-server.err.log" 60
  say "clickhouse up on 127.0.0.1:9000/8123 (pid $(cat "$dir/clickhouse.pid"))"
}

case "${1:-}" in
  up) kafka_up; clickhouse_up ;;
  down) stop_pid "$LOCAL/kafka/kafka.pid" kafka; stop_pid "$LOCAL/clickhouse/clickhouse.pid" clickhouse ;;
  kafka-up) kafka_up ;;          # single services, for outage tests
  kafka-down) stop_pid "$LOCAL/kafka/kafka.pid" kafka ;;
  clickhouse-up) clickhouse_up ;;
  clickhouse-down) stop_pid "$LOCAL/clickhouse/clickhouse.pid" clickhouse ;;
  status)
    pid_alive "$LOCAL/kafka/kafka.pid" && say "kafka running" || say "kafka stopped"
    pid_alive "$LOCAL/clickhouse/clickhouse.pid" && say "clickhouse running" || say "clickhouse stopped" ;;
  *) die "usage: infra/services.sh up|down|status|kafka-up|kafka-down|clickhouse-up|clickhouse-down" ;;
esac
