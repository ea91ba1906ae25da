"""Two-platform build + push time of one Image on each Docker host of the test world
(containerd store vs the classic store over unix, tcp+TLS and ssh), 3 runs each, median.
Run: MULTIARCH_PROVIDER_BIN=target/debug/pulumi-resource-multiarch .venv/bin/python scripts/bench_docker_hosts.py"""
import os, sys, time, statistics
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from harness import FakeEngine, Provider, testenv, unique, IMAGE
world = testenv()
ctx = os.path.join(os.environ.get("TMPDIR", "/tmp"), "multiarch-bench-docker-hosts"); os.makedirs(ctx, exist_ok=True)
open(f"{ctx}/Dockerfile", "w").write(f"FROM {world['BASE_IMAGE_PLAIN']}\nARG MARK\nRUN echo $MARK > /m && uname -m > /built-on\n")
setups = {
  "containerd store, unix": {"DOCKER_HOST": world["DOCKER_HOST"]},
  "classic store, unix": {"DOCKER_HOST": world["DOCKER3_HOST"]},
  "classic store, tcp+TLS": {"DOCKER_HOST": world["DOCKER3_TLS_HOST"], "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": world["DOCKER3_CERT_PATH"]},
  "classic store, ssh": {"DOCKER_HOST": world["DOCKER3_SSH_HOST"]},
}
for name, env in setups.items():
    times = []
    for i in range(3):
        e = FakeEngine(); p = Provider(e, env=env); p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}]})
        repo = f"{world['PLAIN_REGISTRY']}/{unique('bench')}"
        inputs = {"context": {"location": ctx}, "platforms": ["linux/amd64", "linux/arm64"],
                  "tags": [f"{repo}:v1"], "network": "none", "buildArgs": {"MARK": unique("m")}}
        checked, f = p.check(IMAGE, inputs); assert f == [], f
        t = time.monotonic(); p.create(IMAGE, checked); times.append(time.monotonic() - t)
        p.close(); e.stop()
    print(f"{name}: median {statistics.median(times):.2f}s of {['%.2f' % x for x in times]}", flush=True)
