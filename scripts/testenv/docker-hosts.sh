# Sourced by scripts/testenv.sh: the Docker hosts users have, beside the main Engine.
#  - a third Engine with the classic image store (overlay2, BuildKit without the `image`
#    exporter), on its own data root, exec root, socket, pidfile, containerd namespaces and
#    bridge; also listening on tcp://127.0.0.1:$DOCKER3_TLS_PORT with TLS verified both ways
#    (certificates from the test CA, the client's as the docker CLI reads them:
#    $DOCKER3_CERT_PATH/{ca,cert,key}.pem);
#  - a plain TCP door to it (socat) on 127.0.0.1:$DOCKER3_TCP_PORT, and one to the main
#    Engine on 127.0.0.1:$DOCKER_TCP_PORT;
#  - an sshd on 127.0.0.1:$SSHD_PORT (root by key only) whose sessions see
#    DOCKER_HOST=unix://$DOCKER3_SOCK, so `ssh … docker system dial-stdio` reaches the third
#    Engine; the client side (key, known host) is set in /etc/ssh/ssh_config.d for that
#    address and port only.
# Uses testenv.sh's helpers (start_bg, wait_for, pid_of, RESULT, FAIL_LOG) and variables.

DOCKER3_SOCK=/run/multiarch-docker3.sock
DOCKER3_EXEC=/run/multiarch-docker3
DOCKER3_ROOT=$STATE/docker3
DOCKER3_BRIDGE=docker3br0
DOCKER3_BRIDGE_IP=172.31.251.1/24
DOCKER3_TLS_PORT=2376
DOCKER3_TCP_PORT=2375
DOCKER_TCP_PORT=2385
DOCKER3_PKI=$STATE/pki/docker3
DOCKER3_CERT_PATH=$DOCKER3_PKI/client
SSHD_PORT=2222
SSHD_DIR=$STATE/sshd
SSH_CLIENT_CONF=/etc/ssh/ssh_config.d/multiarch-testenv.conf

docker3_up() { docker -H "unix://$DOCKER3_SOCK" info --format '{{.ServerVersion}} {{.Driver}}'; }
docker3_tls_up() {
  DOCKER_CERT_PATH=$DOCKER3_CERT_PATH DOCKER_TLS_VERIFY=1 \
    docker -H "tcp://127.0.0.1:$DOCKER3_TLS_PORT" info --format '{{.Driver}}'
}

docker3_certs() {
  local d=$DOCKER3_PKI made=()
  mkdir -p "$d" "$DOCKER3_CERT_PATH"
  if [[ ! -s $d/server.crt ]] || ! openssl verify -CAfile "$CA_CERT" "$d/server.crt" >/dev/null 2>&1; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
      -keyout "$d/server.key" -out "$d/server.csr" -subj "/CN=localhost"
    printf '%s\n' "subjectAltName=DNS:localhost,IP:127.0.0.1" 'basicConstraints=CA:FALSE' \
      'keyUsage=critical,digitalSignature' 'extendedKeyUsage=serverAuth' >"$d/server.ext"
    openssl x509 -req -in "$d/server.csr" -CA "$CA_CERT" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$d/server.ext" -out "$d/server.crt"
    made+=(server-cert)
  fi
  local c=$DOCKER3_CERT_PATH
  if [[ ! -s $c/cert.pem ]] || ! openssl verify -CAfile "$CA_CERT" "$c/cert.pem" >/dev/null 2>&1; then
    openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -sha256 \
      -keyout "$c/key.pem" -out "$c/client.csr" -subj "/CN=docker-client"
    printf '%s\n' 'basicConstraints=CA:FALSE' 'keyUsage=critical,digitalSignature' \
      'extendedKeyUsage=clientAuth' >"$c/client.ext"
    openssl x509 -req -in "$c/client.csr" -CA "$CA_CERT" -CAkey "$PKI/ca.key" -CAcreateserial \
      -days 3650 -sha256 -extfile "$c/client.ext" -out "$c/cert.pem"
    made+=(client-cert)
  fi
  cmp -s "$CA_CERT" "$c/ca.pem" || cp "$CA_CERT" "$c/ca.pem"
  chmod 600 "$d/server.key" "$c/key.pem"
  echo "${made[*]}"
}

step_dockerd3() {
  FAIL_LOG=$LOGS/dockerd3.log
  local conf=$DOCKER3_ROOT/daemon.json made
  # No containerd-snapshotter feature: the classic image store (overlay2), as Engines
  # installed before v29 have it.
  local want='{}'
  mkdir -p "$DOCKER3_ROOT/data"
  if [[ ! -f $conf || $(cat "$conf") != "$want" ]]; then
    echo "$want" >"$conf"
  fi
  made=$(docker3_certs)
  if docker3_up >/dev/null 2>&1 && docker3_tls_up >/dev/null 2>&1; then
    RESULT="${made:+$made; }already running ($(docker3_up))"
    return
  fi
  containerd_up
  if ! ip link show "$DOCKER3_BRIDGE" >/dev/null 2>&1; then
    ip link add "$DOCKER3_BRIDGE" type bridge
  fi
  if ! ip -4 addr show dev "$DOCKER3_BRIDGE" | grep -q "inet $DOCKER3_BRIDGE_IP "; then
    ip addr add "$DOCKER3_BRIDGE_IP" dev "$DOCKER3_BRIDGE"
  fi
  ip link set "$DOCKER3_BRIDGE" up
  start_bg dockerd3 "$LOGS/dockerd3.log" "$(command -v dockerd)" \
    --config-file "$conf" --data-root "$DOCKER3_ROOT/data" --exec-root "$DOCKER3_EXEC" \
    -H "unix://$DOCKER3_SOCK" -H "tcp://127.0.0.1:$DOCKER3_TLS_PORT" \
    --tlsverify --tlscacert "$CA_CERT" --tlscert "$DOCKER3_PKI/server.crt" \
    --tlskey "$DOCKER3_PKI/server.key" \
    --pidfile /run/multiarch-docker3.pid \
    --containerd="$CONTAINERD_SOCK" --containerd-namespace multiarch-docker3 \
    --containerd-plugins-namespace multiarch-docker3-plugins \
    --bridge="$DOCKER3_BRIDGE" --iptables=false --ip6tables=false
  wait_for 60 dockerd3 docker3_up
  wait_for 30 dockerd3 docker3_tls_up
  RESULT="${made:+$made; }started on $DOCKER3_SOCK and tcp://127.0.0.1:$DOCKER3_TLS_PORT (TLS) ($(docker3_up))"
}

# socat_door NAME PORT SOCKET: plain TCP on loopback to an Engine's unix socket.
socat_door() {
  local name=$1 port=$2 sock=$3
  if docker -H "tcp://127.0.0.1:$port" version --format '{{.Server.Version}}' >/dev/null 2>&1; then
    echo "$name already open"
    return
  fi
  start_bg "$name" "$LOGS/$name.log" "$(command -v socat)" \
    "TCP-LISTEN:$port,bind=127.0.0.1,reuseaddr,fork" "UNIX-CONNECT:$sock"
  wait_for 10 "$name" docker -H "tcp://127.0.0.1:$port" version --format '{{.Server.Version}}'
}

step_docker_tcp() {
  FAIL_LOG=$LOGS/docker3-tcp.log
  socat_door docker3-tcp "$DOCKER3_TCP_PORT" "$DOCKER3_SOCK"
  FAIL_LOG=$LOGS/docker-tcp.log
  socat_door docker-tcp "$DOCKER_TCP_PORT" /var/run/docker.sock
  RESULT="tcp://127.0.0.1:$DOCKER3_TCP_PORT (classic), tcp://127.0.0.1:$DOCKER_TCP_PORT (main)"
}

sshd_up() {
  timeout 20 ssh -o BatchMode=yes -p "$SSHD_PORT" root@127.0.0.1 \
    docker version --format '{{.Server.Version}}'
}

step_sshd() {
  FAIL_LOG=$LOGS/sshd.log
  local made=()
  mkdir -p "$SSHD_DIR" /run/sshd
  chmod 700 "$SSHD_DIR"
  [[ -s $SSHD_DIR/host_ed25519 ]] || { ssh-keygen -q -t ed25519 -N '' -f "$SSHD_DIR/host_ed25519"; made+=(host-key); }
  [[ -s $SSHD_DIR/id_ed25519 ]] || { ssh-keygen -q -t ed25519 -N '' -C multiarch-testenv -f "$SSHD_DIR/id_ed25519"; made+=(client-key); }
  cp "$SSHD_DIR/id_ed25519.pub" "$SSHD_DIR/authorized_keys"
  echo "[127.0.0.1]:$SSHD_PORT $(cut -d' ' -f1,2 "$SSHD_DIR/host_ed25519.pub")" >"$SSHD_DIR/known_hosts"
  cat >"$SSHD_DIR/sshd_config.tmp" <<EOF
# written by scripts/testenv.sh
Port $SSHD_PORT
ListenAddress 127.0.0.1
HostKey $SSHD_DIR/host_ed25519
PidFile none
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
AuthorizedKeysFile $SSHD_DIR/authorized_keys
StrictModes no
SetEnv DOCKER_HOST=unix://$DOCKER3_SOCK
EOF
  # The client side for this address and port only (the key and the known host key).
  cat >"$SSH_CLIENT_CONF.tmp" <<EOF
# written by scripts/testenv.sh: the test world's sshd
Match host 127.0.0.1 exec "test %p = $SSHD_PORT"
  IdentityFile $SSHD_DIR/id_ed25519
  UserKnownHostsFile $SSHD_DIR/known_hosts
  StrictHostKeyChecking yes
EOF
  mv "$SSH_CLIENT_CONF.tmp" "$SSH_CLIENT_CONF"
  local pid
  pid=$(pid_of sshd)
  if ! cmp -s "$SSHD_DIR/sshd_config.tmp" "$SSHD_DIR/sshd_config"; then
    if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for ((i = 0; i < 50; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
      made+=(restarted)
    fi
  fi
  mv "$SSHD_DIR/sshd_config.tmp" "$SSHD_DIR/sshd_config"
  if sshd_up >/dev/null 2>&1; then
    RESULT="${made[*]:+${made[*]}; }already running on 127.0.0.1:$SSHD_PORT"
    return
  fi
  # -D: stays in the foreground (start_bg records its pid); -e: log to stderr.
  start_bg sshd "$LOGS/sshd.log" "$(command -v sshd)" -D -e -f "$SSHD_DIR/sshd_config"
  wait_for 30 sshd sshd_up
  RESULT="${made[*]:+${made[*]}; }started on 127.0.0.1:$SSHD_PORT (sessions reach $DOCKER3_SOCK)"
}

# The env file's lines for these parts.
docker_hosts_env() {
  printf '%s\n' \
    "DOCKER3_HOST=unix://$DOCKER3_SOCK" \
    "DOCKERD3_LOG=$LOGS/dockerd3.log" \
    "DOCKER3_TLS_HOST=tcp://127.0.0.1:$DOCKER3_TLS_PORT" \
    "DOCKER3_CERT_PATH=$DOCKER3_CERT_PATH" \
    "DOCKER3_TCP_HOST=tcp://127.0.0.1:$DOCKER3_TCP_PORT" \
    "DOCKER_TCP_HOST=tcp://127.0.0.1:$DOCKER_TCP_PORT" \
    "DOCKER3_SSH_HOST=ssh://root@127.0.0.1:$SSHD_PORT" \
    "SSHD_LOG=$LOGS/sshd.log"
}
