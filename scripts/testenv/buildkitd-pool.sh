# Sourced by scripts/testenv.sh: two more standalone buildkitd processes, a pool of real
# BuildKit nodes for the `builders` pool tests. Same binary as the mTLS buildkitd (built by
# scripts/buildkit.sh), each with its own --root state directory, listening on a unix socket
# under $POOL_DIR/node<N>/buildkitd.sock (loopback only, no TLS), OCI worker with runc and the
# host network, trusting the plain registry (http) and the ECR look-alike (test CA).
# Idempotent: a node already answering is left alone; after a reboot (socket gone, pid dead)
# it is started again.
# A test stops and restarts one node with scripts/testenv/buildkitd-pool-ctl.sh stop|start N
# (exported as BUILDKITD_POOL_CTL); the pid of node N is in $POOL_DIR/node<N>/buildkitd.pid.
# Uses testenv.sh's helpers (wait_for, RESULT, FAIL_LOG) and variables.

POOL_DIR=$STATE/buildkitd-pool
POOL_NODES=(1 2)

pool_sock() { echo "$POOL_DIR/node$1/buildkitd.sock"; }
pool_up() { timeout 10 "$BUILDKIT_BIN/buildctl" --addr "unix://$(pool_sock "$1")" debug workers; }

pool_config() { # N: the node's buildkitd.toml on stdout
  local d=$POOL_DIR/node$1
  cat <<CONF
# written by scripts/testenv/buildkitd-pool.sh
root = "$d/root"
[grpc]
  address = ["unix://$d/buildkitd.sock"]
[cdi]
  disabled = true
[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  networkMode = "host"
  gc = true
  maxUsedSpace = "2GB"
[worker.containerd]
  enabled = false
[history]
  maxAge = 172800
  maxEntries = 500
[registry."$PLAIN"]
  http = true
  insecure = true
[registry."$ECR_HOST"]
  ca = ["$CA_CERT"]
CONF
}

step_buildkitd_pool() {
  FAIL_LOG=$LOGS/buildkitd-pool1.log
  local n out=() conf
  for n in "${POOL_NODES[@]}"; do
    FAIL_LOG=$LOGS/buildkitd-pool$n.log
    mkdir -p "$POOL_DIR/node$n/root"
    conf=$POOL_DIR/node$n/buildkitd.toml
    pool_config "$n" >"$conf.tmp"
    if ! cmp -s "$conf.tmp" "$conf"; then
      mv "$conf.tmp" "$conf"
      # New settings: a node of ours still running on the old ones stops first.
      BUILDKIT_BIN=$BUILDKIT_BIN bash "$HERE/testenv/buildkitd-pool-ctl.sh" stop "$n"
    else
      rm -f "$conf.tmp"
    fi
    if pool_up "$n" >/dev/null 2>&1; then
      out+=("node$n up")
      continue
    fi
    BUILDKIT_BIN=$BUILDKIT_BIN bash "$HERE/testenv/buildkitd-pool-ctl.sh" start "$n"
    out+=("node$n started")
  done
  RESULT="${out[*]} ($POOL_DIR/node{1,2}/buildkitd.sock)"
}

buildkitd_pool_env() {
  printf '%s\n' \
    "BUILDKITD_POOL1_ADDR=unix://$(pool_sock 1)" \
    "BUILDKITD_POOL2_ADDR=unix://$(pool_sock 2)" \
    "BUILDKITD_POOL_CTL=$HERE/testenv/buildkitd-pool-ctl.sh" \
    "BUILDKITD_POOL_DIR=$POOL_DIR"
}
