#!/usr/bin/env bash
# Installs and starts the local test world (see shared/test-world.md), idempotently:
#   Docker Engine 26 (containerd image store, BuildKit 0.13), a second independent Engine on
#   /run/multiarch-docker2.sock, a standalone buildkitd on tcp://127.0.0.1:5200 with mutual
#   TLS (built by scripts/buildkit.sh), QEMU binfmt for arm64,
#   a plain registry on 127.0.0.1:5000, a TLS+htpasswd registry posing as ECR on
#   127.0.0.1:443, a second account's ECR look-alike on 127.0.0.2:443, moto's ECR and STS
#   APIs on 127.0.0.1:5100, an ECR Public look-alike (public.ecr.aws on 127.0.0.3:443), a Git
#   server (smart HTTP over TLS, git http-backend) on 127.0.0.1:5480, and busybox base images
#   in both registries. Writes "$STATE/env" (export K=V lines) for the tests.
# Works on a bare Debian 12 machine (root) and when everything is already running.
# Stop what it started with scripts/testenv-down.sh.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
STATE=${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}
LOGS=$STATE/logs
SETUP_LOG=$LOGS/setup.log
PIDS=$STATE/pids

ECR_HOST=123456789012.dkr.ecr.us-east-1.amazonaws.com
ECR_USER=AWS
ECR_PASSWORD=123456789012-auth-token # fixed by moto's GetAuthorizationToken
PLAIN=127.0.0.1:5000
MOTO_PORT=5100
# A second account's ECR host (cross-account tests), on its own loopback address. moto's
# GetAuthorizationToken answers "<account>-auth-token" for the account of the caller's
# access key: only credentials of a role in that account (STS AssumeRole on moto) open it.
ECR_B_ACCOUNT=210987654321
ECR_B_HOST=$ECR_B_ACCOUNT.dkr.ecr.us-east-1.amazonaws.com
ECR_B_IP=127.0.0.2
ECR_B_PASSWORD=$ECR_B_ACCOUNT-auth-token
# An ECR Public look-alike: public.ecr.aws on its own loopback address, nginx in front of a
# plain registry: reads anonymous, writes with Basic AWS:<token> (the token an ecr-public
# GetAuthorizationToken answers in the tests; moto has no ecr-public API).
PUBLIC_HOST=public.ecr.aws
PUBLIC_IP=127.0.0.3
PUBLIC_BACKEND=127.0.0.1:5301
PUBLIC_PASSWORD=ecr-public-auth-token
BASE_REPO=base/busybox

APT_PKGS=(runc tini iptables qemu-user-static binfmt-support docker-registry apache2-utils
  skopeo openssl ca-certificates curl nginx openssh-server openssh-client socat)
TRIXIE_DEBS=(docker.io containerd docker-buildx)

export DEBIAN_FRONTEND=noninteractive
# Keep the caller's PATH first (its python3 is the one moto's venv is made from).
export PATH=$PATH:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
export DOCKER_HOST=unix:///var/run/docker.sock

mkdir -p "$STATE" "$LOGS"
touch "$PIDS"
: >"$SETUP_LOG"
T0=$(date +%s.%N)

say() { printf '[testenv] %s\n' "$*"; }
elapsed() { awk -v a="$1" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1fs", b - a }'; }
log() { printf '\n=== %s\n' "$*" >>"$SETUP_LOG"; }

# The log whose tail is printed when a step fails (set by steps).
FAIL_LOG=
STEP=
on_exit() {
  local rc=$?
  [[ -n ${POLICY_RC_CREATED:-} ]] && rm -f /usr/sbin/policy-rc.d
  if ((rc != 0)); then
    say "FAILED in step '${STEP}' (exit $rc); tail of $SETUP_LOG:"
    tail -n 30 "$SETUP_LOG" | sed 's/^/    /' >&2
    if [[ -n $FAIL_LOG && -f $FAIL_LOG ]]; then
      say "tail of $FAIL_LOG:"
      tail -n 30 "$FAIL_LOG" | sed 's/^/    /' >&2
    fi
  fi
}
trap on_exit EXIT

# step NAME FUNC: runs FUNC with its output in the setup log, prints one line with timing.
step() {
  STEP=$1
  FAIL_LOG=
  local t
  t=$(date +%s.%N)
  log "$1"
  RESULT=ok
  "$2" >>"$SETUP_LOG" 2>&1
  say "$(printf '%-14s %-40s %s' "$1" "$RESULT" "$(elapsed "$t")")"
}

wait_for() { # wait_for SECONDS NAME COMMAND...: NAME is a service start_bg just started
  local secs=$1 name=$2 pid
  shift 2
  pid=$(pid_of "$name")
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! kill -0 "$pid" 2>/dev/null; then
      echo "$name (pid $pid) exited before it answered"
      return 1
    fi
    if ((SECONDS >= end)); then
      echo "timed out after ${secs}s waiting for $name"
      return 1
    fi
    sleep 0.2
  done
}

# ---- PID bookkeeping: "$STATE/pids" holds "name pid exe" lines for what we started.
pid_of() { awk -v n="$1" '$1 == n { print $2 }' "$PIDS" | tail -n 1; }
forget_pid() { local tmp; tmp=$(mktemp "$STATE/.pids.XXXX"); awk -v n="$1" '$1 != n' "$PIDS" >"$tmp"; mv "$tmp" "$PIDS"; }
record_pid() { forget_pid "$1"; echo "$1 $2 $3" >>"$PIDS"; }

# start_bg NAME LOGFILE EXE ARGS...: detached (setsid), stdin from /dev/null, output to LOGFILE.
start_bg() {
  local name=$1 logfile=$2
  shift 2
  printf '\n=== %s starting: %s\n' "$(date -Is)" "$*" >>"$logfile"
  # Non-interactive bash: the child is not a process-group leader, so setsid execs in place
  # and $! is the service's own PID.
  setsid "$@" </dev/null >>"$logfile" 2>&1 &
  local pid=$!
  record_pid "$name" "$pid" "$(basename "$1")"
  echo "started $name pid $pid"
}

# ---- 1. packages -------------------------------------------------------------------------
APT_UPDATED=
apt_update_once() {
  if [[ -z $APT_UPDATED ]]; then
    apt-get update -q -o DPkg::Lock::Timeout=300
    APT_UPDATED=1
  fi
}

ensure_policy_rc() {
  # Keep package postinst scripts from starting services (docker-registry would take :5000).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    POLICY_RC_CREATED=1
  fi
}

missing_pkgs() {
  local p
  for p in "$@"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

step_apt() {
  local missing
  missing=$(missing_pkgs "${APT_PKGS[@]}")
  if [[ -z $missing ]]; then
    RESULT="already installed"
    return
  fi
  ensure_policy_rc
  apt_update_once
  # shellcheck disable=SC2086
  apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends $missing
  RESULT="installed: $(echo $missing | tr '\n' ' ')"
}

PRIV_APT=$STATE/apt-trixie
priv_apt() {
  apt-get -q \
    -o Dir::Etc::sourcelist="$PRIV_APT/sources.list" -o Dir::Etc::sourceparts=- \
    -o Dir::State::Lists="$PRIV_APT/lists" -o Dir::Cache="$PRIV_APT/cache" \
    -o APT::Architectures::=arm64 "$@"
}
PRIV_APT_UPDATED=
priv_apt_update_once() {
  [[ -n $PRIV_APT_UPDATED ]] && return
  mkdir -p "$PRIV_APT/lists/partial" "$PRIV_APT/cache/archives/partial" "$PRIV_APT/debs"
  echo 'deb [arch=amd64,arm64] http://deb.debian.org/debian trixie main' >"$PRIV_APT/sources.list"
  priv_apt update
  PRIV_APT_UPDATED=1
}

docker_installed() {
  [[ -z $(missing_pkgs "${TRIXIE_DEBS[@]}") ]] && dockerd --version | grep -q 'version 2[6-9]\.'
}

step_docker_pkgs() {
  if docker_installed; then
    RESULT="already installed ($(dockerd --version | awk '{print $3}' | tr -d ,))"
    return
  fi
  ensure_policy_rc
  priv_apt_update_once
  (cd "$PRIV_APT/debs" && rm -f ./*.deb && priv_apt download "${TRIXIE_DEBS[@]}")
  dpkg -i "$PRIV_APT"/debs/*.deb
  docker_installed
  RESULT="installed $(dockerd --version | awk '{print $3}' | tr -d ,) from trixie"
}

# ---- 2. docker engine ---------------------------------------------------------------------
CONTAINERD_SOCK=/run/containerd/containerd.sock
containerd_up() { [[ -S $CONTAINERD_SOCK ]] && ctr --connect-timeout 1s --address "$CONTAINERD_SOCK" version; }
docker_up() { docker info --format '{{.ServerVersion}}'; }

step_dockerd() {
  FAIL_LOG=$LOGS/dockerd.log
  # The default bridge without iptables: RUN steps and BuildKit's SBOM generator (which runs
  # on the default network whatever the build's network mode) work without NAT or outside
  # access.
  local want='{ "features": { "containerd-snapshotter": true }, "iptables": false }'
  local current=
  [[ -f /etc/docker/daemon.json ]] && current=$(cat /etc/docker/daemon.json)
  if docker_up >/dev/null 2>&1; then
    local pid
    pid=$(pid_of dockerd)
    if [[ $current == "$want" || -z $pid ]] || ! kill -0 "$pid" 2>/dev/null; then
      RESULT="already running ($(docker_up))"
      return
    fi
    # Ours, with an older configuration: restart it with this one.
    kill -TERM "$pid"
    for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
  fi
  mkdir -p /etc/docker
  if [[ $current != "$want" ]]; then
    echo "$want" >/etc/docker/daemon.json
  fi
  if ! containerd_up >/dev/null 2>&1; then
    FAIL_LOG=$LOGS/containerd.log
    start_bg containerd "$LOGS/containerd.log" "$(command -v containerd)"
    wait_for 30 containerd containerd_up
    FAIL_LOG=$LOGS/dockerd.log
  fi
  start_bg dockerd "$LOGS/dockerd.log" "$(command -v dockerd)" --containerd="$CONTAINERD_SOCK"
  wait_for 60 dockerd docker_up
  RESULT="started ($(docker_up))"
}

# ---- 2b. a second, independent Docker Engine ---------------------------------------------
# Its own data root, exec root, socket, pidfile and containerd namespaces, on the same
# containerd: a second BuildKit with its own build cache and image store. Its default network
# is its own bridge (made here, as dockerd requires for a bridge not named docker0) and it
# writes no iptables rules. Not `--bridge=none`: with it, dockerd deletes the docker0 device at
# start-up (the first Engine's bridge) and BuildKit's RUN steps fail ("network bridge not
# found").
DOCKER2_SOCK=/run/multiarch-docker2.sock
DOCKER2_EXEC=/run/multiarch-docker2
DOCKER2_ROOT=$STATE/docker2
DOCKER2_BRIDGE=docker2br0
DOCKER2_BRIDGE_IP=172.31.250.1/24
docker2_up() { docker -H "unix://$DOCKER2_SOCK" info --format '{{.ServerVersion}}'; }

step_dockerd2() {
  FAIL_LOG=$LOGS/dockerd2.log
  local conf=$DOCKER2_ROOT/daemon.json
  local want='{ "features": { "containerd-snapshotter": true } }'
  mkdir -p "$DOCKER2_ROOT/data"
  if [[ ! -f $conf || $(cat "$conf") != "$want" ]]; then
    echo "$want" >"$conf"
  fi
  if docker2_up >/dev/null 2>&1; then
    RESULT="already running ($(docker2_up))"
    return
  fi
  containerd_up
  if ! ip link show "$DOCKER2_BRIDGE" >/dev/null 2>&1; then
    ip link add "$DOCKER2_BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$DOCKER2_BRIDGE" | grep -q "inet $DOCKER2_BRIDGE_IP "; then
    ip addr add "$DOCKER2_BRIDGE_IP" dev "$DOCKER2_BRIDGE"
  fi
  ip link set "$DOCKER2_BRIDGE" up
  start_bg dockerd2 "$LOGS/dockerd2.log" "$(command -v dockerd)" \
    --config-file "$conf" --data-root "$DOCKER2_ROOT/data" --exec-root "$DOCKER2_EXEC" \
    -H "unix://$DOCKER2_SOCK" --pidfile /run/multiarch-docker2.pid \
    --containerd="$CONTAINERD_SOCK" --containerd-namespace multiarch-docker2 \
    --containerd-plugins-namespace multiarch-docker2-plugins \
    --bridge="$DOCKER2_BRIDGE" --iptables=false --ip6tables=false
  wait_for 60 dockerd2 docker2_up
  RESULT="started on $DOCKER2_SOCK ($(docker2_up))"
}

# ---- 4c. a pool of two more standalone buildkitd (unix sockets), for `builders` pools ------
# shellcheck source=testenv/buildkitd-pool.sh
source "$HERE/testenv/buildkitd-pool.sh"

# ---- 2c. Docker hosts users have: a classic-store Engine, TCP (TLS, plain), ssh ---------
# shellcheck source=testenv/docker-hosts.sh
source "$HERE/testenv/docker-hosts.sh"
# shellcheck source=testenv/signing.sh
source "$HERE/testenv/signing.sh"

# ---- 3. qemu binfmt ---------------------------------------------------------------------
step_binfmt() {
  if [[ ! -e /proc/sys/fs/binfmt_misc/register ]]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [[ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]] && grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64; then
    RESULT="qemu-aarch64 already enabled"
    return
  fi
  update-binfmts --enable
  grep -q '^enabled' /proc/sys/fs/binfmt_misc/qemu-aarch64
  RESULT="enabled qemu-aarch64 ($(ls /proc/sys/fs/binfmt_misc/ | grep -c '^qemu-') qemu interpreters)"
}

# ---- 4. certificates, hosts -----------------------------------------------------------
PKI=$STATE/pki
CA_CERT=$PKI/ca.crt
SYS_CA=/usr/local/share/ca-certificates/multiarch-test-ca.crt
PASSWORD_FILE=$STATE/ecr-password

step_pki() {
  local made=()
  mkdir -p "$PKI"
  chmod 755 "$PKI"
  if [[ ! -s $CA_CERT || ! -s $PKI/ca.key ]]; then
    openssl req -x509 -newkey rsa:2048 -nodes -sha256 -days 3650 \
      -keyout "$PKI/ca.key" -out "$CA_CERT" -subj '/CN=multiarch test CA' \
      -addext 'basicConstraints=critical,CA:TRUE' -addext 'keyUsage=critical,keyCertSign,cRLSign'
    rm -f "$PKI/server.crt"
    made+=(ca)
  fi
  if [[ ! -s $PKI/server.crt ]] || ! openssl verify -CAfile "$CA_CERT" "$PKI/server.crt"; then
    openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$PKI/server.key" \
      -out "$PKI/server.csr" -subj "/CN=$ECR_HOST"
    printf '%s\n' "subjectAltName=DNS:$ECR_HOST,DNS:localhost,IP:127.0.0.1" \
      'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature,keyEncipherment' \
      'extendedKeyUsage=serverAuth' >"$PKI/server.ext"
    openssl x509 -req -in "$PKI/server.csr" -CA "$CA_CERT" -CAkey "$PKI/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$PKI/server.ext" -out "$PKI/server.crt"
    made+=(server-cert)
  fi
  chmod 644 "$CA_CERT"
  chmod 600 "$PKI/ca.key" "$PKI/server.key"
  # Docker Engine trusts the registry through certs.d; everything else through the system store.
  mkdir -p "/etc/docker/certs.d/$ECR_HOST"
  if ! cmp -s "$CA_CERT" "/etc/docker/certs.d/$ECR_HOST/ca.crt"; then
    cp "$CA_CERT" "/etc/docker/certs.d/$ECR_HOST/ca.crt"
    made+=(certs.d)
  fi
  if ! cmp -s "$CA_CERT" "$SYS_CA"; then
    cp "$CA_CERT" "$SYS_CA"
    update-ca-certificates
    made+=(system-store)
  fi
  if ! grep -Eq "^[^#]*[[:space:]]$ECR_HOST([[:space:]]|\$)" /etc/hosts; then
    echo "127.0.0.1 $ECR_HOST" >>/etc/hosts
    made+=(/etc/hosts)
  fi
  if [[ ! -s $PKI/htpasswd ]] || ! htpasswd -vb "$PKI/htpasswd" "$ECR_USER" "$ECR_PASSWORD" 2>/dev/null; then
    htpasswd -bBc "$PKI/htpasswd" "$ECR_USER" "$ECR_PASSWORD" 2>&1 | sed 's/^/htpasswd: /'
    made+=(htpasswd)
  fi
  if [[ ! -s $PASSWORD_FILE ]] || [[ $(cat "$PASSWORD_FILE") != "$ECR_PASSWORD" ]]; then
    (umask 077 && printf '%s' "$ECR_PASSWORD" >"$PASSWORD_FILE")
    made+=(password-file)
  fi
  RESULT=${made[*]:+"made: ${made[*]}"}
  RESULT=${RESULT:-"up to date"}
}

# ---- 4b. a standalone buildkitd: tcp:// with mutual TLS ----------------------------------
# buildkitd and buildctl are built from BuildKit's Go module by scripts/buildkit.sh (cached;
# minutes the first time). The daemon runs its steps with the system's runc (OCI worker, host
# network, QEMU binfmt for arm64), keeps its state under $STATE/buildkitd, listens only on
# tcp://127.0.0.1:$BUILDKITD_PORT and requires a client certificate signed by the test CA.
BUILDKIT_VERSION=0.34.2
BUILDKIT_BIN=$STATE/buildkit/v$BUILDKIT_VERSION/bin
BUILDKITD_PORT=5200
BUILDKITD_DIR=$STATE/buildkitd
BUILDKITD_PKI=$PKI/buildkitd
BUILDKITD_NAME=buildkitd.test
buildkitd_up() { timeout 10 "$BUILDKIT_BIN/buildctl" --addr "tcp://127.0.0.1:$BUILDKITD_PORT" \
  --tlscacert "$CA_CERT" --tlscert "$BUILDKITD_PKI/client.crt" --tlskey "$BUILDKITD_PKI/client.key" \
  --tlsservername "$BUILDKITD_NAME" debug workers; }

buildkitd_cert_ok() { # NAME: a key and a certificate signed by the test CA are there
  [[ -s $BUILDKITD_PKI/$1.crt && -s $BUILDKITD_PKI/$1.key ]] &&
    openssl verify -CAfile "$CA_CERT" "$BUILDKITD_PKI/$1.crt" >/dev/null 2>&1
}
buildkitd_cert() { # NAME CN EXT_USAGE SAN: make them
  local name=$1 cn=$2 usage=$3 san=$4 d=$BUILDKITD_PKI
  openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
    -keyout "$d/$name.key" -out "$d/$name.csr" -subj "/CN=$cn"
  printf '%s\n' "subjectAltName=$san" 'basicConstraints=CA:FALSE' \
    'keyUsage=critical,digitalSignature' "extendedKeyUsage=$usage" >"$d/$name.ext"
  openssl x509 -req -in "$d/$name.csr" -CA "$CA_CERT" -CAkey "$PKI/ca.key" -CAcreateserial \
    -days 3650 -sha256 -extfile "$d/$name.ext" -out "$d/$name.crt"
  chmod 600 "$d/$name.key"
}

step_buildkitd() {
  FAIL_LOG=$LOGS/buildkit-build.log
  local t made=()
  t=$(date +%s)
  MULTIARCH_TESTENV_STATE=$STATE BUILDKIT_VERSION=$BUILDKIT_VERSION \
    bash "$HERE/buildkit.sh" >>"$LOGS/buildkit-build.log" 2>&1
  if (($(date +%s) - t > 5)); then made+=("built v$BUILDKIT_VERSION in $(($(date +%s) - t))s"); fi
  FAIL_LOG=$LOGS/buildkitd.log
  mkdir -p "$BUILDKITD_PKI" "$BUILDKITD_DIR/root"
  if ! buildkitd_cert_ok server; then
    buildkitd_cert server "$BUILDKITD_NAME" serverAuth "DNS:$BUILDKITD_NAME,IP:127.0.0.1"
    made+=(server-cert)
  fi
  if ! buildkitd_cert_ok client; then
    buildkitd_cert client ci-runner clientAuth "DNS:ci-runner"
    made+=(client-cert)
  fi
  local conf=$BUILDKITD_DIR/buildkitd.toml
  cat >"$conf.tmp" <<EOF
# written by scripts/testenv.sh
root = "$BUILDKITD_DIR/root"
[grpc]
  address = ["tcp://127.0.0.1:$BUILDKITD_PORT"]
  [grpc.tls]
    cert = "$BUILDKITD_PKI/server.crt"
    key = "$BUILDKITD_PKI/server.key"
    ca = "$CA_CERT"
[cdi]
  disabled = true
[worker.oci]
  enabled = true
  snapshotter = "overlayfs"
  networkMode = "host"
  gc = true
  maxUsedSpace = "4GB"
[worker.containerd]
  enabled = false
[history]
  maxAge = 172800
  maxEntries = 500
[registry."$PLAIN"]
  http = true
[registry."$ECR_HOST"]
  ca = ["$CA_CERT"]
EOF
  local pid
  pid=$(pid_of buildkitd)
  if ! cmp -s "$conf.tmp" "$conf" || ((${#made[@]} > 0)); then
    # New settings or certificates: a buildkitd of ours still running on the old ones stops.
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for ((i = 0; i < 100; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      made+=(restarted)
    fi
  fi
  mv "$conf.tmp" "$conf"
  if buildkitd_up >/dev/null 2>&1; then
    RESULT="${made[*]:+${made[*]}; }already running on 127.0.0.1:$BUILDKITD_PORT"
    return
  fi
  start_bg buildkitd "$LOGS/buildkitd.log" "$BUILDKIT_BIN/buildkitd" --config "$conf"
  wait_for 60 buildkitd buildkitd_up
  buildkitd_up
  RESULT="${made[*]:+${made[*]}; }started on tcp://127.0.0.1:$BUILDKITD_PORT (mTLS)"
}

# ---- 5. registries --------------------------------------------------------------------
render_registry_config() { # NAME ADDR ROOT EXTRA_FILE OUT
  local extra=""
  [[ -n $4 ]] && extra=$(cat "$4")
  mkdir -p "$3"
  awk -v name="$1" -v addr="$2" -v root="$3" -v extra="$extra" '
    { gsub(/@NAME@/, name); gsub(/@ADDR@/, addr); gsub(/@ROOT@/, root)
      if ($0 == "@EXTRA@") { print extra; next } print }' \
    "$HERE/testenv/registry.yml.in" >"$5.tmp"
  mv "$5.tmp" "$5"
}

plain_up() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$PLAIN/v2/") == 200 ]]; }
ecr_up() { [[ $(curl -s --cacert "$CA_CERT" -o /dev/null -w '%{http_code}' "https://$ECR_HOST/v2/") == 401 ]]; }
ecr_auth_ok() { [[ $(curl -s --cacert "$CA_CERT" -u "$ECR_USER:$ECR_PASSWORD" -o /dev/null -w '%{http_code}' "https://$ECR_HOST/v2/") == 200 ]]; }

step_registry_plain() {
  FAIL_LOG=$LOGS/registry-plain.log
  local conf=$STATE/registry-plain.yml
  render_registry_config registry-plain "$PLAIN" "$STATE/registry-plain-data" "" "$conf"
  if plain_up; then
    RESULT="already running"
    return
  fi
  start_bg registry-plain "$LOGS/registry-plain.log" "$(command -v docker-registry)" serve "$conf"
  wait_for 30 registry-plain plain_up
  RESULT="started on $PLAIN"
}

step_registry_ecr() {
  FAIL_LOG=$LOGS/registry-ecr.log
  local conf=$STATE/registry-ecr.yml extra=$STATE/registry-ecr.extra.yml
  cat >"$extra" <<EOF
  tls:
    certificate: $PKI/server.crt
    key: $PKI/server.key
auth:
  htpasswd:
    realm: multiarch-test-ecr
    path: $PKI/htpasswd
EOF
  render_registry_config registry-ecr 127.0.0.1:443 "$STATE/registry-ecr-data" "$extra" "$conf"
  if ecr_up; then
    ecr_auth_ok
    RESULT="already running"
    return
  fi
  start_bg registry-ecr "$LOGS/registry-ecr.log" "$(command -v docker-registry)" serve "$conf"
  wait_for 30 registry-ecr ecr_up
  ecr_auth_ok
  RESULT="started on 127.0.0.1:443 as $ECR_HOST"
}

# ---- 5g. a Git server: smart HTTP over TLS on loopback ------------------------------------
# `git http-backend` behind a small HTTPS server (scripts/testenv/git_http.py, the test CA's
# server certificate): remote build contexts (`https://127.0.0.1:5480/<repo>.git#ref:subdir`)
# are fetched from it by the provider (`git ls-remote`) and by the Engine's BuildKit (host
# network). Read-only over HTTP; tests make their repositories under $GIT_ROOT directly.
GIT_PORT=5480
GIT_ROOT=$STATE/git
git_http_up() {
  [[ $(curl -s --cacert "$CA_CERT" -o /dev/null -w '%{http_code}' \
    "https://127.0.0.1:$GIT_PORT/sample.git/info/refs?service=git-upload-pack") == 200 ]]
}

make_sample_repo() { # a repository with app/Dockerfile FROM the plain registry's base image
  local work
  work=$(mktemp -d)
  git init -q -b main "$work"
  mkdir -p "$work/app"
  printf 'FROM %s\nCOPY hello.txt /hello.txt\n' "$PLAIN/$BASE_REPO:latest" >"$work/app/Dockerfile"
  echo hello >"$work/app/hello.txt"
  git -C "$work" add -A
  git -C "$work" -c user.name=testenv -c user.email=testenv@localhost commit -q -m sample
  git clone -q --bare "$work" "$GIT_ROOT/sample.git"
  rm -rf "$work"
}

step_git_http() {
  FAIL_LOG=$LOGS/git-http.log
  mkdir -p "$GIT_ROOT"
  [[ -d $GIT_ROOT/sample.git ]] || make_sample_repo
  if git_http_up; then
    RESULT="already running"
    return
  fi
  start_bg git-http "$LOGS/git-http.log" "$(command -v python3)" "$HERE/testenv/git_http.py" \
    "$GIT_ROOT" "127.0.0.1:$GIT_PORT" "$PKI/server.crt" "$PKI/server.key"
  wait_for 30 git-http git_http_up
  RESULT="started on https://127.0.0.1:$GIT_PORT"
}

# ---- 5b. a second account's ECR host ---------------------------------------------------
# Posed like the first: a certificate for its name from the test CA, an /etc/hosts line,
# Docker's certs.d, a TLS+htpasswd registry on $ECR_B_IP:443.
ecr_b_up() { [[ $(curl -s --cacert "$CA_CERT" -o /dev/null -w '%{http_code}' "https://$ECR_B_HOST/v2/") == 401 ]]; }
ecr_b_auth_ok() { [[ $(curl -s --cacert "$CA_CERT" -u "$ECR_USER:$ECR_B_PASSWORD" -o /dev/null -w '%{http_code}' "https://$ECR_B_HOST/v2/") == 200 ]]; }

# host_identity NAME HOST IP: a server certificate for HOST and IP signed by the test CA
# ($PKI/NAME.crt, .key), Docker Engines' trust of it (certs.d) and an /etc/hosts line; adds
# what it made to the caller's `made`.
host_identity() {
  local name=$1 host=$2 ip=$3 crt=$PKI/$1.crt key=$PKI/$1.key
  if [[ ! -s $crt ]] || ! openssl verify -CAfile "$CA_CERT" "$crt"; then
    openssl req -new -newkey rsa:2048 -nodes -sha256 -keyout "$key" \
      -out "$PKI/$name.csr" -subj "/CN=$host"
    printf '%s\n' "subjectAltName=DNS:$host,IP:$ip" 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature,keyEncipherment' 'extendedKeyUsage=serverAuth' >"$PKI/$name.ext"
    openssl x509 -req -in "$PKI/$name.csr" -CA "$CA_CERT" -CAkey "$PKI/ca.key" \
      -CAcreateserial -days 3650 -sha256 -extfile "$PKI/$name.ext" -out "$crt"
    chmod 600 "$key"
    made+=(cert)
  fi
  mkdir -p "/etc/docker/certs.d/$host"
  if ! cmp -s "$CA_CERT" "/etc/docker/certs.d/$host/ca.crt"; then
    cp "$CA_CERT" "/etc/docker/certs.d/$host/ca.crt"
    made+=(certs.d)
  fi
  if ! grep -Eq "^[^#]*[[:space:]]$host([[:space:]]|\$)" /etc/hosts; then
    echo "$ip $host" >>/etc/hosts
    made+=(/etc/hosts)
  fi
}

step_registry_ecr_b() {
  FAIL_LOG=$LOGS/registry-ecr-b.log
  local made=() crt=$PKI/ecr-b.crt key=$PKI/ecr-b.key
  host_identity ecr-b "$ECR_B_HOST" "$ECR_B_IP"
  if [[ ! -s $PKI/htpasswd-b ]] || ! htpasswd -vb "$PKI/htpasswd-b" "$ECR_USER" "$ECR_B_PASSWORD" 2>/dev/null; then
    htpasswd -bBc "$PKI/htpasswd-b" "$ECR_USER" "$ECR_B_PASSWORD" 2>&1 | sed 's/^/htpasswd: /'
    made+=(htpasswd)
  fi
  local conf=$STATE/registry-ecr-b.yml extra=$STATE/registry-ecr-b.extra.yml
  cat >"$extra" <<EOF
  tls:
    certificate: $crt
    key: $key
auth:
  htpasswd:
    realm: multiarch-test-ecr-b
    path: $PKI/htpasswd-b
EOF
  render_registry_config registry-ecr-b "$ECR_B_IP:443" "$STATE/registry-ecr-b-data" "$extra" "$conf"
  if ecr_b_up; then
    ecr_b_auth_ok
    RESULT="${made[*]:+made: ${made[*]}; }already running"
    return
  fi
  start_bg registry-ecr-b "$LOGS/registry-ecr-b.log" "$(command -v docker-registry)" serve "$conf"
  wait_for 30 registry-ecr-b ecr_b_up
  ecr_b_auth_ok
  RESULT="${made[*]:+made: ${made[*]}; }started on $ECR_B_IP:443 as $ECR_B_HOST"
}

# ---- 5c. an ECR Public look-alike ------------------------------------------------------
public_up() { [[ $(curl -s --cacert "$CA_CERT" -o /dev/null -w '%{http_code}' "https://$PUBLIC_HOST/v2/") == 401 ]]; }
public_auth_ok() { [[ $(curl -s --cacert "$CA_CERT" -u "$ECR_USER:$PUBLIC_PASSWORD" -o /dev/null -w '%{http_code}' "https://$PUBLIC_HOST/v2/") == 200 ]]; }
public_backend_up() { [[ $(curl -s -o /dev/null -w '%{http_code}' "http://$PUBLIC_BACKEND/v2/") == 200 ]]; }

step_registry_public() {
  FAIL_LOG=$LOGS/registry-public-nginx.error.log
  local made=() crt=$PKI/public.crt key=$PKI/public.key dir=$STATE/registry-public
  mkdir -p "$dir"
  host_identity public "$PUBLIC_HOST" "$PUBLIC_IP"
  if [[ ! -s $PKI/htpasswd-public ]] || ! htpasswd -vb "$PKI/htpasswd-public" "$ECR_USER" "$PUBLIC_PASSWORD" 2>/dev/null; then
    htpasswd -bBc "$PKI/htpasswd-public" "$ECR_USER" "$PUBLIC_PASSWORD" 2>&1 | sed 's/^/htpasswd: /'
    made+=(htpasswd)
  fi
  local conf=$STATE/registry-public.yml
  render_registry_config registry-public "$PUBLIC_BACKEND" "$STATE/registry-public-data" "" "$conf"
  if ! public_backend_up; then
    FAIL_LOG=$LOGS/registry-public.log
    start_bg registry-public "$LOGS/registry-public.log" "$(command -v docker-registry)" serve "$conf"
    wait_for 30 registry-public public_backend_up
    made+=(backend)
  fi
  # /v2/ asks for credentials (a client with some sends them from then on); reads of
  # manifests and blobs are anonymous; every write needs AWS:<token>.
  cat >"$dir/nginx.conf.tmp" <<EOF
# written by scripts/testenv.sh
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $LOGS/registry-public-nginx.error.log;
events { worker_connections 256; }
http {
  access_log $LOGS/registry-public-nginx.log;
  client_body_temp_path $dir/body;
  proxy_temp_path $dir/proxy;
  fastcgi_temp_path $dir/fastcgi;
  uwsgi_temp_path $dir/uwsgi;
  scgi_temp_path $dir/scgi;
  server {
    listen $PUBLIC_IP:443 ssl;
    server_name $PUBLIC_HOST;
    ssl_certificate $crt;
    ssl_certificate_key $key;
    client_max_body_size 0;
    proxy_request_buffering off;
    proxy_buffering off;
    proxy_set_header Host \$http_host;
    proxy_set_header X-Forwarded-Proto https;
    location = /v2/ {
      auth_basic "ecr-public";
      auth_basic_user_file $PKI/htpasswd-public;
      proxy_pass http://$PUBLIC_BACKEND;
    }
    location /v2/ {
      limit_except GET HEAD {
        auth_basic "ecr-public";
        auth_basic_user_file $PKI/htpasswd-public;
      }
      proxy_pass http://$PUBLIC_BACKEND;
    }
  }
}
EOF
  local pid
  pid=$(pid_of registry-public-nginx)
  if ! cmp -s "$dir/nginx.conf.tmp" "$dir/nginx.conf" && [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
    made+=(restarted)
  fi
  mv "$dir/nginx.conf.tmp" "$dir/nginx.conf"
  if public_up; then
    public_auth_ok
    RESULT="${made[*]:+made: ${made[*]}; }already running"
    return
  fi
  FAIL_LOG=$LOGS/registry-public-nginx.error.log
  start_bg registry-public-nginx "$LOGS/registry-public-nginx.out.log" "$(command -v nginx)" -c "$dir/nginx.conf" -p "$dir"
  wait_for 30 registry-public-nginx public_up
  public_auth_ok
  RESULT="${made[*]:+made: ${made[*]}; }started on $PUBLIC_IP:443 as $PUBLIC_HOST"
}

# ---- 6. moto (ECR API) ------------------------------------------------------------------
# moto runs from its own venv: immune to PEP 668 (Debian's python3) and to whatever the
# tests install into the machine's python.
VENV=$STATE/moto-venv
VPY=$VENV/bin/python
moto_up() { curl -sf -o /dev/null "http://127.0.0.1:$MOTO_PORT/moto-api/"; }
MOTO_REQS=$HERE/testenv/moto-requirements.txt
moto_installed() {
  [[ -f $VENV/.requirements.sha256 && $(cat "$VENV/.requirements.sha256") == $(sha256sum <"$MOTO_REQS") ]] &&
    "$VPY" -c 'import flask, flask_cors, boto3, moto.server' 2>/dev/null
}

step_moto() {
  FAIL_LOG=$LOGS/moto.log
  RESULT=""
  if ! moto_installed; then
    local py
    py=$(command -v python3)
    if ! "$py" -m venv --help >/dev/null 2>&1; then
      apt_update_once
      apt-get install -y -q -o DPkg::Lock::Timeout=300 --no-install-recommends python3-venv
      py=/usr/bin/python3
    fi
    rm -rf "$VENV"
    "$py" -m venv "$VENV"
    "$VPY" -m pip install -q -r "$MOTO_REQS"
    sha256sum <"$MOTO_REQS" >"$VENV/.requirements.sha256"
    moto_installed
    RESULT="installed $(grep -i '^moto==' "$MOTO_REQS"); "
  fi
  if moto_up; then
    RESULT+="already running"
    return
  fi
  start_bg moto "$LOGS/moto.log" "$VPY" -m moto.server -H 127.0.0.1 -p "$MOTO_PORT"
  wait_for 60 moto moto_up
  RESULT+="started on 127.0.0.1:$MOTO_PORT"
}

# ---- 7. base images -------------------------------------------------------------------
BASE=$STATE/base
MANIFEST_ACCEPT='application/vnd.oci.image.index.v1+json,application/vnd.docker.distribution.manifest.list.v2+json,application/vnd.oci.image.manifest.v1+json,application/vnd.docker.distribution.manifest.v2+json'

has_tag() { # REGISTRY TAG
  local url auth=()
  if [[ $1 == "$PLAIN" ]]; then url="http://$PLAIN"; else url="https://$ECR_HOST" auth=(--cacert "$CA_CERT" -u "$ECR_USER:$ECR_PASSWORD"); fi
  curl -sf -o /dev/null "${auth[@]}" -H "Accept: $MANIFEST_ACCEPT" "$url/v2/$BASE_REPO/manifests/$2"
}

all_base_tags_present() {
  local r t
  for r in "$PLAIN" "$ECR_HOST"; do
    for t in latest amd64 arm64; do has_tag "$r" "$t" || return 1; done
  done
}

make_rootfs() { # ARCH APPLET_LISTER: unpack busybox-static for ARCH into $BASE/ctx/ARCH
  local arch=$1 lister=$2 root=$BASE/ctx/$1 x=$BASE/x-$1 deb bb path
  deb=$(ls "$BASE/debs/busybox-static_"*"_$arch.deb")
  rm -rf "$root" "$x"
  dpkg -x "$deb" "$x"
  bb=$x/usr/bin/busybox # trixie (merged /usr); bookworm has /bin/busybox
  [[ -x $bb ]] || bb=$x/bin/busybox
  [[ -x $bb ]] || { echo "no busybox executable in $deb"; return 1; }
  mkdir -p "$root/bin" "$root/etc" "$root/root" "$root/tmp"
  chmod 1777 "$root/tmp"
  install -m 0755 "$bb" "$root/bin/busybox"
  rm -rf "$x"
  # One symlink per applet (sh, uname, echo, cat, ls, env, ...), made here because a RUN
  # step would need a shell. Absolute targets resolve inside the container's root.
  while read -r path; do
    path=${path#/}
    [[ -z $path || $path == bin/busybox ]] && continue
    mkdir -p "$root/$(dirname "$path")"
    ln -sfn /bin/busybox "$root/$path"
  done < <("${lister:-$root/bin/busybox}" --list-full)
  printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$root/etc/passwd"
  printf 'root:x:0:\nnogroup:x:65534:\n' >"$root/etc/group"
}

base_inputs_hash() {
  { cat "$HERE/testenv/Dockerfile.busybox"; declare -f make_rootfs step_base_images; } | sha256sum | cut -c1-16
}

step_base_images() {
  local stamp=$BASE/built.stamp want
  want=$(base_inputs_hash)
  if [[ -f $stamp && $(cat "$stamp") == "$want" ]] && all_base_tags_present; then
    RESULT="already in both registries"
    return
  fi
  mkdir -p "$BASE/debs" "$BASE/ctx"
  if ! ls "$BASE/debs/busybox-static_"*_amd64.deb >/dev/null 2>&1 ||
    ! ls "$BASE/debs/busybox-static_"*_arm64.deb >/dev/null 2>&1; then
    priv_apt_update_once
    (cd "$BASE/debs" && rm -f ./*.deb && priv_apt download busybox-static:amd64 busybox-static:arm64)
  fi
  make_rootfs amd64 ""
  make_rootfs arm64 "$BASE/ctx/amd64/bin/busybox" # the host lists the applets
  cp "$HERE/testenv/Dockerfile.busybox" "$BASE/ctx/Dockerfile"

  docker login --username "$ECR_USER" --password-stdin "$ECR_HOST" <"$PASSWORD_FILE"
  local common=(--provenance=false --sbom=false --network none --push "$BASE/ctx")
  docker buildx build --platform linux/amd64,linux/arm64 \
    -t "$PLAIN/$BASE_REPO:latest" -t "$ECR_HOST/$BASE_REPO:latest" "${common[@]}"
  local a
  for a in amd64 arm64; do
    docker buildx build --platform "linux/$a" \
      -t "$PLAIN/$BASE_REPO:$a" -t "$ECR_HOST/$BASE_REPO:$a" "${common[@]}"
  done
  all_base_tags_present
  echo "$want" >"$stamp"
  RESULT="built and pushed :latest :amd64 :arm64"
}

step_verify() {
  local out
  # --pull always: run what the registry holds, not a stale local copy.
  out=$(docker run --rm --pull always --network none --platform linux/arm64 "$PLAIN/$BASE_REPO:latest" uname -m)
  echo "arm64 uname -m: $out"
  [[ $out == aarch64 ]]
  out=$(docker run --rm --pull always --network none --platform linux/amd64 "$PLAIN/$BASE_REPO:latest" uname -m)
  echo "amd64 uname -m: $out"
  [[ $out == x86_64 ]]
  RESULT="busybox runs as aarch64 and x86_64"
}

# ---- 5b. a registry whose credentials live only in Docker's config ---------------------
# TLS (the test CA's server certificate covers 127.0.0.1) and basic auth; the password is
# made here and kept in a file, so only a Docker config (`auths`, a credential helper) that
# a test writes from it can read the registry.
AUTH_REGISTRY=127.0.0.1:5443
AUTH_USER=ci
AUTH_PASSWORD_FILE=$STATE/auth-registry-password
auth_up() { [[ $(curl -s --cacert "$CA_CERT" -o /dev/null -w '%{http_code}' "https://$AUTH_REGISTRY/v2/") == 401 ]]; }

step_registry_auth() {
  FAIL_LOG=$LOGS/registry-auth.log
  local made=()
  if [[ ! -s $AUTH_PASSWORD_FILE ]]; then
    (umask 077 && openssl rand -hex 16 | tr -d '\n' >"$AUTH_PASSWORD_FILE")
    made+=(password)
  fi
  local pw
  pw=$(cat "$AUTH_PASSWORD_FILE")
  if [[ ! -s $PKI/htpasswd-auth ]] || ! htpasswd -vb "$PKI/htpasswd-auth" "$AUTH_USER" "$pw" 2>/dev/null; then
    htpasswd -bBc "$PKI/htpasswd-auth" "$AUTH_USER" "$pw" 2>&1 | sed 's/^/htpasswd: /'
    made+=(htpasswd)
  fi
  # Each Engine's BuildKit trusts the registry through certs.d.
  mkdir -p "/etc/docker/certs.d/$AUTH_REGISTRY"
  cmp -s "$CA_CERT" "/etc/docker/certs.d/$AUTH_REGISTRY/ca.crt" ||
    { cp "$CA_CERT" "/etc/docker/certs.d/$AUTH_REGISTRY/ca.crt" && made+=(certs.d); }
  local conf=$STATE/registry-auth.yml extra=$STATE/registry-auth.extra.yml
  cat >"$extra" <<EOF
  tls:
    certificate: $PKI/server.crt
    key: $PKI/server.key
auth:
  htpasswd:
    realm: multiarch-test-auth
    path: $PKI/htpasswd-auth
EOF
  render_registry_config registry-auth "$AUTH_REGISTRY" "$STATE/registry-auth-data" "$extra" "$conf"
  if auth_up && ((${#made[@]} == 0)); then
    RESULT="already running"
    return
  fi
  local old
  old=$(pid_of registry-auth)
  if [[ -n $old ]] && kill -0 "$old" 2>/dev/null; then
    kill -TERM "$old"
    for ((i = 0; i < 50; i++)); do kill -0 "$old" 2>/dev/null || break; sleep 0.1; done
  fi
  start_bg registry-auth "$LOGS/registry-auth.log" "$(command -v docker-registry)" serve "$conf"
  wait_for 30 registry-auth auth_up
  RESULT="${made[*]:+${made[*]}; }started on $AUTH_REGISTRY (basic auth, TLS)"
}

# ---- 5c. amazon-ecr-credential-helper, built from its Go module (cached) ------------------
ECR_LOGIN_VERSION=v0.13.0
ECR_LOGIN_BIN=$STATE/tools/ecr-login-$ECR_LOGIN_VERSION/docker-credential-ecr-login
step_ecr_login() {
  if [[ -x $ECR_LOGIN_BIN ]]; then
    RESULT="cached ($ECR_LOGIN_VERSION)"
    return
  fi
  local dir
  dir=$(dirname "$ECR_LOGIN_BIN")
  GOBIN=$dir go install "github.com/awslabs/amazon-ecr-credential-helper/ecr-login/cli/docker-credential-ecr-login@$ECR_LOGIN_VERSION"
  [[ -x $ECR_LOGIN_BIN ]]
  RESULT="built $ECR_LOGIN_VERSION"
}

# ---- 8. env file ---------------------------------------------------------------------
step_env() {
  local f=$STATE/env tmp
  tmp=$(mktemp "$STATE/.env.XXXX")
  local kv=(
    "MULTIARCH_TESTENV_STATE=$STATE"
    "DOCKER_HOST=unix:///var/run/docker.sock"
    "PLAIN_REGISTRY=$PLAIN"
    "ECR_REGISTRY=$ECR_HOST"
    "ECR_USERNAME=$ECR_USER"
    "ECR_PASSWORD_FILE=$PASSWORD_FILE"
    "ECR_B_REGISTRY=$ECR_B_HOST"
    "ECR_B_ACCOUNT_ID=$ECR_B_ACCOUNT"
    "ECR_B_REGISTRY_LOG=$LOGS/registry-ecr-b.log"
    "PUBLIC_REGISTRY=$PUBLIC_HOST"
    "PUBLIC_REGISTRY_TOKEN=$PUBLIC_PASSWORD"
    "PUBLIC_REGISTRY_LOG=$LOGS/registry-public-nginx.log"
    "AWS_ACCOUNT_ID=123456789012"
    "AWS_ENDPOINT_URL_ECR=http://127.0.0.1:$MOTO_PORT"
    "AWS_ENDPOINT_URL_STS=http://127.0.0.1:$MOTO_PORT"
    "MOTO_ENDPOINT=http://127.0.0.1:$MOTO_PORT"
    "AWS_ACCESS_KEY_ID=testing"
    "AWS_SECRET_ACCESS_KEY=testing"
    "AWS_REGION=us-east-1"
    "AWS_DEFAULT_REGION=us-east-1"
    "PLAIN_REGISTRY_LOG=$LOGS/registry-plain.log"
    "ECR_REGISTRY_LOG=$LOGS/registry-ecr.log"
    "MOTO_LOG=$LOGS/moto.log"
    "MOTO_PYTHON=$VPY"
    "DOCKERD_LOG=$LOGS/dockerd.log"
    "DOCKER2_HOST=unix://$DOCKER2_SOCK"
    "DOCKERD2_LOG=$LOGS/dockerd2.log"
    "BUILDKITD_ADDR=tcp://127.0.0.1:$BUILDKITD_PORT"
    "BUILDKITD_SERVER_NAME=$BUILDKITD_NAME"
    "BUILDKITD_CA_CERT=$CA_CERT"
    "BUILDKITD_CLIENT_CERT=$BUILDKITD_PKI/client.crt"
    "BUILDKITD_CLIENT_KEY=$BUILDKITD_PKI/client.key"
    "BUILDKITD_LOG=$LOGS/buildkitd.log"
    "BUILDCTL=$BUILDKIT_BIN/buildctl"
    "TEST_CA_CERT=$CA_CERT"
    "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"
    "REQUESTS_CA_BUNDLE=/etc/ssl/certs/ca-certificates.crt"
    "BASE_IMAGE_PLAIN=$PLAIN/$BASE_REPO:latest"
    "BASE_IMAGE_ECR=$ECR_HOST/$BASE_REPO:latest"
    "BASE_IMAGE_PLAIN_AMD64=$PLAIN/$BASE_REPO:amd64"
    "BASE_IMAGE_PLAIN_ARM64=$PLAIN/$BASE_REPO:arm64"
    "BASE_IMAGE_ECR_AMD64=$ECR_HOST/$BASE_REPO:amd64"
    "BASE_IMAGE_ECR_ARM64=$ECR_HOST/$BASE_REPO:arm64"
    "GIT_HTTP_URL=https://127.0.0.1:$GIT_PORT"
    "GIT_HTTP_ROOT=$GIT_ROOT"
    "AUTH_REGISTRY=$AUTH_REGISTRY"
    "AUTH_REGISTRY_USER=$AUTH_USER"
    "AUTH_REGISTRY_PASSWORD_FILE=$AUTH_PASSWORD_FILE"
    "AUTH_REGISTRY_LOG=$LOGS/registry-auth.log"
    "ECR_LOGIN_HELPER=$ECR_LOGIN_BIN"
  )
  [[ $NODES == none ]] || mapfile -t -O "${#kv[@]}" kv < <(docker_hosts_env)
  [[ $NODES == none ]] || mapfile -t -O "${#kv[@]}" kv < <(signing_env)
  [[ $NODES == none ]] || mapfile -t -O "${#kv[@]}" kv < <(buildkitd_pool_env)
  {
    echo "# written by scripts/testenv.sh; 'export K=V' lines, values never quoted nor spaced"
    local l
    for l in "${kv[@]}"; do
      [[ $l =~ ^[A-Z0-9_]+=[A-Za-z0-9_./:@+-]+$ ]] || { echo "bad env value: $l" >&2; return 1; }
      echo "export $l"
    done
  } >"$tmp"
  chmod 644 "$tmp"
  mv "$tmp" "$f"
  RESULT="$f"
}

step packages step_apt
step docker-engine step_docker_pkgs
step dockerd step_dockerd
# The extra build nodes (a second Engine, a standalone buildkitd built from source: ~10 min
# the first time) serve the tests only; `make demo` asks for the rest with
# MULTIARCH_TESTENV_NODES=none.
NODES=${MULTIARCH_TESTENV_NODES:-all}
[[ $NODES == none ]] || step dockerd2 step_dockerd2
step binfmt step_binfmt
step pki step_pki
[[ $NODES == none ]] || step buildkitd step_buildkitd
# Two more buildkitd (same binary, own state, unix sockets): pools of real nodes.
[[ $NODES == none ]] || step buildkitd-pool step_buildkitd_pool
# Needs the test CA (pki) for its TLS listener.
[[ $NODES == none ]] || step dockerd3 step_dockerd3
[[ $NODES == none ]] || step docker-tcp step_docker_tcp
[[ $NODES == none ]] || step sshd step_sshd
step registry-plain step_registry_plain
step registry-ecr step_registry_ecr
step registry-auth step_registry_auth
step ecr-login step_ecr_login
step registry-ecr-b step_registry_ecr_b
step registry-public step_registry_public
step moto step_moto
# Signing's tools serve the tests only (cosign's build is ~5 min on a bare machine).
[[ $NODES == none ]] || step cosign step_cosign
[[ $NODES == none ]] || step registry-referrers step_referrers_registry
step git-http step_git_http
step base-images step_base_images
step verify step_verify
step env-file step_env
say "ready in $(elapsed "$T0"); source $STATE/env"
