# Sourced by scripts/testenv.sh: the signing tests' parts.
#  - the real `cosign` v2, built from its Go module (cached per version under $STATE/tools);
#  - a registry with the OCI 1.1 referrers API (go-containerregistry's pkg/registry with
#    referrers support; scripts/testenv/referrers-registry), plain HTTP on
#    127.0.0.1:$REFERRERS_PORT, built once per source hash and (re)started when it does not
#    answer (its content is in memory: a restart empties it, which the tests do not rely on).
# Uses testenv.sh's helpers (start_bg, wait_for, pid_of, RESULT, FAIL_LOG) and variables.

COSIGN_VERSION=v2.6.5
COSIGN_BIN=$STATE/tools/cosign-$COSIGN_VERSION/cosign
REFERRERS_PORT=5610
REFERRERS_REGISTRY=127.0.0.1:$REFERRERS_PORT
REFERRERS_SRC=$HERE/testenv/referrers-registry

step_cosign() {
  if [[ -x $COSIGN_BIN ]]; then
    RESULT="cached ($COSIGN_VERSION)"
    return
  fi
  # ~5 minutes on 2 cores the first time; niced, the machine is shared.
  GOBIN=$(dirname "$COSIGN_BIN") nice -n 10 go install "github.com/sigstore/cosign/v2/cmd/cosign@$COSIGN_VERSION"
  [[ -x $COSIGN_BIN ]]
  RESULT="built $COSIGN_VERSION"
}

referrers_bin() {
  local h
  h=$(cat "$REFERRERS_SRC/main.go" "$REFERRERS_SRC/go.mod" "$REFERRERS_SRC/go.sum" | sha256sum | cut -c1-12)
  echo "$STATE/tools/referrers-registry-$h/referrers-registry"
}
# The referrers API answers an index (200) for any digest of an existing repository; a fresh
# registry answers 404 for an unknown repository, so /v2/ is the liveness probe.
referrers_up() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$REFERRERS_REGISTRY/v2/") == 200 ]]; }

step_referrers_registry() {
  FAIL_LOG=$LOGS/registry-referrers.log
  local bin made=()
  bin=$(referrers_bin)
  if [[ ! -x $bin ]]; then
    mkdir -p "$(dirname "$bin")"
    (cd "$REFERRERS_SRC" && nice -n 10 go build -o "$bin" .)
    made+=(built)
  fi
  local old
  old=$(pid_of registry-referrers)
  if referrers_up; then
    # Running an older build (the source changed): replaced, its content is throwaway.
    if [[ -n $old && $(readlink "/proc/$old/exe" 2>/dev/null) != "$bin" ]] && kill -0 "$old" 2>/dev/null; then
      kill -TERM "$old"
      for ((i = 0; i < 50; i++)); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
      made+=(replaced)
    else
      RESULT="${made[*]:+${made[*]}; }already running"
      return
    fi
  fi
  start_bg registry-referrers "$LOGS/registry-referrers.log" "$bin" "$REFERRERS_REGISTRY"
  wait_for 30 registry-referrers referrers_up
  RESULT="${made[*]:+${made[*]}; }started on $REFERRERS_REGISTRY (OCI 1.1 referrers API)"
}

signing_env() {
  echo "COSIGN=$COSIGN_BIN"
  echo "REFERRERS_REGISTRY=$REFERRERS_REGISTRY"
  echo "REFERRERS_REGISTRY_LOG=$LOGS/registry-referrers.log"
}
