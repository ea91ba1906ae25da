#!/usr/bin/env bash
# Stops or starts one node of the test world's buildkitd pool (scripts/testenv/buildkitd-pool.sh):
#   buildkitd-pool-ctl.sh stop N    SIGKILL node N (as a crashed machine would go), wait until gone
#   buildkitd-pool-ctl.sh start N   start node N on its config if it is not answering; wait until it does
#   buildkitd-pool-ctl.sh status N  exit 0 when node N answers
# Tests stop a node mid-run and start it again in a `finally`; other nodes are not touched.
set -euo pipefail
STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
BUILDKIT_BIN=${BUILDKIT_BIN:-$STATE/buildkit/v${BUILDKIT_VERSION:-0.34.2}/bin}
cmd=${1:?stop|start|status N}
n=${2:?node number}
d=$STATE/buildkitd-pool/node$n
pidfile=$d/buildkitd.pid
log=$STATE/logs/buildkitd-pool$n.log
[[ -f $d/buildkitd.toml ]] || { echo "no pool node $n ($d/buildkitd.toml)" >&2; exit 2; }

up() { timeout 10 "$BUILDKIT_BIN/buildctl" --addr "unix://$d/buildkitd.sock" debug workers >/dev/null 2>&1; }
ours() { # the pid in the pidfile, if it is a live buildkitd
  local pid
  [[ -s $pidfile ]] || return 1
  pid=$(cat "$pidfile")
  kill -0 "$pid" 2>/dev/null && [[ $(cat "/proc/$pid/comm" 2>/dev/null) == buildkitd ]] && echo "$pid"
}

case $cmd in
stop)
  if pid=$(ours); then
    kill -KILL "$pid"
    for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    echo "stopped pool node $n (pid $pid)"
  fi
  rm -f "$pidfile"
  ;;
start)
  if up; then exit 0; fi
  if pid=$(ours); then kill -KILL "$pid"; sleep 0.2; fi
  # A killed buildkitd leaves its socket and lock behind.
  rm -f "$d/buildkitd.sock" "$d/root/buildkitd.lock"
  printf '\n=== %s starting\n' "$(date -Is)" >>"$log"
  setsid "$BUILDKIT_BIN/buildkitd" --config "$d/buildkitd.toml" </dev/null >>"$log" 2>&1 &
  echo $! >"$pidfile"
  for ((i = 0; i < 300; i++)); do
    up && { echo "started pool node $n (pid $(cat "$pidfile"))"; exit 0; }
    kill -0 "$(cat "$pidfile")" 2>/dev/null || { echo "pool node $n exited; tail of $log:" >&2; tail -n 20 "$log" >&2; exit 1; }
    sleep 0.2
  done
  echo "pool node $n did not answer within 60 s" >&2
  exit 1
  ;;
status) up ;;
*) echo "usage: $0 stop|start|status N" >&2; exit 2 ;;
esac
