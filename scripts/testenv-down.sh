#!/usr/bin/env bash
# Stops what scripts/testenv.sh started (and nothing else): the processes recorded in
# "$STATE/pids", newest first, each only if it is still the same program. Installed
# packages, certificates, /etc/hosts and registry data stay, so testenv.sh restarts fast.
set -euo pipefail

STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
PIDS=$STATE/pids

say() { printf '[testenv-down] %s\n' "$*"; }

if [[ ! -s $PIDS ]]; then
  say "nothing recorded in $PIDS"
  exit 0
fi

# exe_matches PID EXE: the process is alive and still runs EXE (guards against PID reuse).
exe_matches() {
  local pid=$1 exe=$2 cmd
  [[ -r /proc/$pid/cmdline ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ " $cmd" == *"/$exe "* || " $cmd" == *" $exe "* ]]
}

stop_one() { # NAME PID EXE
  local name=$1 pid=$2 exe=$3 i
  if ! exe_matches "$pid" "$exe"; then
    say "$name (pid $pid): not running"
    return
  fi
  kill -TERM "$pid" 2>/dev/null || true
  # dockerd stops its containers first; give it time before escalating.
  for ((i = 0; i < 150; i++)); do
    exe_matches "$pid" "$exe" || break
    sleep 0.2
  done
  if exe_matches "$pid" "$exe"; then
    kill -KILL "$pid" 2>/dev/null || true
    say "$name (pid $pid): killed after 30s"
  else
    say "$name (pid $pid): stopped"
  fi
}

# The buildkitd pool nodes keep their pids in their own pidfiles (tests restart them).
for d in "$STATE"/buildkitd-pool/node*; do
  [[ -f $d/buildkitd.toml ]] || continue
  n=${d##*/node}
  bash "$(dirname "${BASH_SOURCE[0]}")/testenv/buildkitd-pool-ctl.sh" stop "$n" | sed 's/^/[testenv-down] /'
done

# Dependents first: moto and the registries, buildkitd, the second Engine, then the first
# Engine, then containerd (which both Engines use).
order=(moto registry-ecr registry-plain buildkitd sshd docker-tcp docker3-tcp dockerd3 dockerd2 dockerd containerd)
for want in "${order[@]}" '*'; do
  while read -r name pid exe; do
    [[ -n ${name:-} && -n ${pid:-} && -n ${exe:-} ]] || continue
    if [[ $want == '*' ]]; then
      [[ " ${order[*]} " == *" $name "* ]] && continue
    elif [[ $name != "$want" ]]; then
      continue
    fi
    stop_one "$name" "$pid" "$exe"
  done <"$PIDS"
done
: >"$PIDS"
