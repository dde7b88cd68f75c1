#!/usr/bin/env bash
# Span-log throughput (#10): spoor-loadgen against 2 collectors -> NATS JetStream (1 node,
# R1) -> 2 ingesters (sled), against one all-in-one on sled with the same acknowledgement
# (durability sync) and with the default (periodic). Prints one JSON line per setup.
# Usage: benches/spanlog.sh [debug|release] [seconds]   (needs nats-server; builds nothing)
set -euo pipefail
PROFILE=${1:-debug}
SECS=${2:-15}
BIN=target/$PROFILE/spoor
LG=target/$PROFILE/spoor-loadgen
TMP=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$TMP"; }
trap cleanup EXIT
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { curl -s "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1==n {print $2}'; }
ports() { # every listener of one daemon on a free port; $1 = admin port
  echo --admin.http.host-port 127.0.0.1:$1 --otlp.grpc.host-port 127.0.0.1:$2 --otlp.http.host-port 127.0.0.1:$(port) \
    --query.http.host-port 127.0.0.1:$3 --jaeger.thrift-compact.host-port 127.0.0.1:$(port) \
    --jaeger.thrift-binary.host-port 127.0.0.1:$(port) --jaeger.thrift-http.host-port 127.0.0.1:$(port) \
    --jaeger.grpc.host-port 127.0.0.1:$(port) --zipkin.http.host-port 127.0.0.1:$(port) \
    --sampling.http.host-port 127.0.0.1:$(port) --log.level warn
}
ready() { for _ in $(seq 300); do curl -sf "http://127.0.0.1:$1/" >/dev/null && return; sleep 0.1; done; echo "not ready: $1" >&2; exit 1; }
load() { # $1 = grpc port, $2 = connections
  $LG --protocol otlp-grpc --endpoint http://127.0.0.1:$1 --connections $2 --batch-spans 500 \
    --spans-per-trace 20 --duration ${SECS}s --pool-spans 200000 --json
}
accepted() { python3 -c 'import json,sys; t=sum(json.loads(l)["spans_accepted"] for l in sys.stdin if l.strip()); print(t)'; }
# loadgen's own rate (its pool is built before its clock starts), summed over concurrent loadgens
rate() { python3 -c 'import json,sys; print(round(sum(json.loads(l)["accepted_spans_per_sec"] for l in sys.stdin if l.strip())))'; }

# 1. cluster
NP=$(port)
nats-server -js -sd $TMP/nats -a 127.0.0.1 -p $NP >$TMP/nats.log 2>&1 & PIDS+=($!)
sleep 0.5
LOGARGS="--span-log nats://127.0.0.1:$NP"
declare -a CA CG
for i in 0 1; do
  CA[$i]=$(port); CG[$i]=$(port)
  $BIN collector $LOGARGS $(ports ${CA[$i]} ${CG[$i]} $(port)) >$TMP/c$i.log 2>&1 & PIDS+=($!)
done
declare -a IA
for i in 0 1; do
  IA[$i]=$(port)
  $BIN ingester $LOGARGS --ingester.partitions $([ $i = 0 ] && echo 0-3 || echo 4-7) --storage sled \
    --data-dir $TMP/ing$i --retention 100000d $(ports ${IA[$i]} $(port) $(port)) >$TMP/i$i.log 2>&1 & PIDS+=($!)
done
for p in ${CA[@]} ${IA[@]}; do ready $p; done
START=$(date +%s.%N)
load ${CG[0]} 8 >$TMP/cluster0.json & L0=$!
load ${CG[1]} 8 >$TMP/cluster1.json & L1=$!
wait $L0 $L1
cat $TMP/cluster0.json $TMP/cluster1.json >$TMP/cluster.json
SENT_END=$(date +%s.%N)
ACC=$(accepted <$TMP/cluster.json)
# end to end: until the ingesters stored everything the collectors published
PUB=$(( $(metric ${CA[0]} spoor_spanlog_published_spans_total) + $(metric ${CA[1]} spoor_spanlog_published_spans_total) ))
for _ in $(seq 600); do
  CONS=$(( $(metric ${IA[0]} spoor_spanlog_consumed_spans_total) + $(metric ${IA[1]} spoor_spanlog_consumed_spans_total) ))
  [ "$CONS" -ge "$PUB" ] && break; sleep 0.5
done
STORED_END=$(date +%s.%N)
RATE=$(rate <$TMP/cluster.json)
python3 -c "import json; print(json.dumps({'setup':'2 collectors + 2 ingesters, nats R1','profile':'$PROFILE','accepted_spans':$ACC,'accepted_spans_per_s':$RATE,'published':$PUB,'stored':$CONS,'stored_backlog_drained_s_after_load':round($STORED_END-$SENT_END,1)}))"
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()

# 2. all-in-one, sync and periodic
for D in sync periodic; do
  A=$(port); G=$(port)
  $BIN all-in-one --storage sled --data-dir $TMP/aio-$D --durability $D --retention 100000d $(ports $A $G $(port)) >$TMP/aio-$D.log 2>&1 & PIDS+=($!)
  ready $A
  load $G 16 >$TMP/aio-$D.json
  ACC=$(accepted <$TMP/aio-$D.json)
  RATE=$(rate <$TMP/aio-$D.json)
  python3 -c "import json; print(json.dumps({'setup':'all-in-one sled, durability $D','profile':'$PROFILE','accepted_spans':$ACC,'accepted_spans_per_s':$RATE}))"
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=()
done
