"""First-token latency with and without an assumed role: a fresh provider process per run,
timed over its first preview of a one-source ManifestList on the ECR look-alike (token look-up,
then the registry reads), once with the chain's own keys and once through `aws.assumeRole` (a
role of the same account, so the registry and everything after the token are the same).

    set -a; source /var/lib/multiarch-testenv/env; set +a
    .venv/bin/python tests/bench_aws_token.py [runs]
"""

import statistics
import sys
import time

from harness import ML, FakeEngine, Provider, testenv, unique


def once(world, config) -> float:
    engine = FakeEngine()
    env = {k: world[k] for k in ["AWS_ENDPOINT_URL_ECR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                                  "AWS_REGION", "SSL_CERT_FILE", "DOCKER_HOST"]}
    env["AWS_ENDPOINT_URL_STS"] = world["MOTO_ENDPOINT"]
    p = Provider(engine, env=env)
    try:
        p.handshake()
        p.configure(config)
        news = {"tags": [f"{world['ECR_REGISTRY']}/{unique('bench')}:1"],
                "sources": [world["BASE_IMAGE_ECR_AMD64"]]}
        t0 = time.monotonic()
        _, props = p.create(ML, news, preview=True)
        took = time.monotonic() - t0
        assert props["platforms"] == ["linux/amd64"]
        return took
    finally:
        p.close()
        engine.stop()


def main():
    runs = int(sys.argv[1]) if len(sys.argv) > 1 else 7
    world = testenv()
    role = {"aws": {"assumeRole": {"roleArn": f"arn:aws:iam::{world['AWS_ACCOUNT_ID']}:role/bench"}}}
    rows = {"chain keys": [], "assumeRole": []}
    for _ in range(runs):  # interleaved, so load drifts hit both alike
        rows["chain keys"].append(once(world, {}))
        rows["assumeRole"].append(once(world, role))
    for name, xs in rows.items():
        ms = sorted(x * 1000 for x in xs)
        print(f"{name:>11}: min {ms[0]:.0f} ms / median {statistics.median(ms):.0f} ms / "
              f"max {ms[-1]:.0f} ms over {runs} runs")


if __name__ == "__main__":
    main()
