#!/usr/bin/env bash
# The README's first command: installs the Debian packages (idempotent), builds, generates
# the offline demo model (random weights, all four GPTQ branch layouts, its own trained
# tokenizer) into ./demo/model, serves it from a loopback hub as repo
# local/llama2-demo-gptq, and starts llamad (CPU backend) in the background; it fetches
# and loads the four branches (default: main). Returns once health is SERVING.
#
#   deploy/run.sh          start (or report the running server)
#   deploy/run.sh stop     drain and stop llamad, stop the hub
#   deploy/run.sh status   health + variants
#
# Environment: LLAMA_LISTEN (127.0.0.1:50051), LLAMA_METRICS_LISTEN (127.0.0.1:9090),
# BUILD_DIR (build), LLAMA_DEMO_DIR (./demo), LLAMA_BACKEND (cpu), SKIP_BUILD=1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_DIR=${BUILD_DIR:-build}
DEMO=${LLAMA_DEMO_DIR:-$ROOT/demo}
RUN=$DEMO/run
LISTEN=${LLAMA_LISTEN:-127.0.0.1:50051}
METRICS=${LLAMA_METRICS_LISTEN:-127.0.0.1:9090}
BACKEND=${LLAMA_BACKEND:-cpu}
REPO=local/llama2-demo-gptq
BRANCHES=(main gptq-4bit-32g-actorder_True gptq-4bit-64g-actorder_True
          gptq-4bit-128g-actorder_True)
LLAMAD=$BUILD_DIR/services/llamad
LLAMACTL=$BUILD_DIR/services/llamactl

running() {  # running NAME -> pid is alive
  local f=$RUN/$1.pid
  [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null
}

stop_one() {  # stop_one NAME SECONDS
  local f=$RUN/$1.pid
  if running "$1"; then
    local pid; pid=$(cat "$f")
    kill -TERM "$pid"
    for _ in $(seq 1 $(( $2 * 10 ))); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    echo "stopped $1 (pid $pid)"
  fi
  rm -f "$f"
}

health() {
  "$LLAMACTL" --server="$LISTEN" status --output json 2>/dev/null | grep -q '"health": "SERVING"'
}

case "${1:-start}" in
  stop)
    stop_one llamad 35
    stop_one hub 5
    exit 0 ;;
  status)
    exec "$LLAMACTL" --server="$LISTEN" status ;;
  start) ;;
  *) echo "usage: $0 [start|stop|status]" >&2; exit 2 ;;
esac

if running llamad && health; then
  echo "llamad is already running (pid $(cat "$RUN/llamad.pid")) on $LISTEN"
  "$LLAMACTL" --server="$LISTEN" list
  exit 0
fi

if [ -z "${SKIP_BUILD:-}" ]; then  # SKIP_BUILD=1: use what $BUILD_DIR already has
  bash deploy/install-deps.sh
  BUILD_DIR=$BUILD_DIR bash deploy/build.sh
fi

# The demo model: generated once.
if [ ! -f "$DEMO/model/main/config.json" ]; then
  echo "generating the demo model into $DEMO/model"
  rm -rf "$DEMO/model.tmp"
  "$BUILD_DIR/engine/make_checkpoint" --preset tiny --layout all --out "$DEMO/model.tmp"
  rm -rf "$DEMO/model"
  mv "$DEMO/model.tmp" "$DEMO/model"
fi

mkdir -p "$RUN" "$DEMO/cache"
stop_one llamad 35
stop_one hub 5

# The local hub: the demo branches as $REPO on loopback.
spec="$REPO="
for b in "${BRANCHES[@]}"; do spec+="$b:$DEMO/model/$b,"; done
rm -f "$RUN/hub.json"
setsid nohup /usr/bin/python3 tests/hub/hub.py --repo "${spec%,}" --port-file "$RUN/hub.json" \
  > "$RUN/hub.log" 2>&1 < /dev/null &
echo $! > "$RUN/hub.pid"
for _ in $(seq 1 100); do [ -f "$RUN/hub.json" ] && break; sleep 0.1; done
if [ ! -f "$RUN/hub.json" ]; then
  echo "the hub did not start; see $RUN/hub.log" >&2
  exit 1
fi
ENDPOINT=$(/usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["endpoint"])' \
  "$RUN/hub.json")

variants=$(IFS=,; echo "${BRANCHES[*]}")
setsid nohup "$LLAMAD" --listen="$LISTEN" --metrics_listen="$METRICS" \
  --cache_dir="$DEMO/cache" --hub_endpoint="$ENDPOINT" --repo="$REPO" \
  --variants="$variants" --default_variant=main --backend="$BACKEND" \
  > "$RUN/llamad.log" 2>&1 < /dev/null &
echo $! > "$RUN/llamad.pid"

echo "waiting for llamad on $LISTEN (log: $RUN/llamad.log)"
for _ in $(seq 1 600); do
  if ! running llamad; then
    echo "llamad exited; last log lines:" >&2
    tail -20 "$RUN/llamad.log" >&2
    exit 1
  fi
  health && break
  sleep 0.2
done
if ! health; then
  echo "llamad did not become SERVING in time; see $RUN/llamad.log" >&2
  exit 1
fi

CTL=$LLAMACTL
[ "$LISTEN" = "127.0.0.1:50051" ] || CTL="$LLAMACTL --server=$LISTEN"
cat <<MSG

llamad is SERVING on $LISTEN (pid $(cat "$RUN/llamad.pid")); metrics on http://$METRICS/metrics
demo repo $REPO (random weights: the text is gibberish) served from $ENDPOINT

  $CTL generate "Once upon a time"
  $CTL --variant gptq-4bit-32g-actorder_True generate "Once upon a time"
  $CTL chat "Tell me a story"
  $CTL list
  deploy/run.sh stop
MSG
"$LLAMACTL" --server="$LISTEN" list
