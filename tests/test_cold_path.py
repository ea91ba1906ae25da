"""The cold path: Configure does no network work; the AWS SDK set-up and the ECR token come on
the first operation that needs them, fetched once however many operations ask at the same time
(single flight). The ECR API is reached through a recording proxy in front of moto, so every
call the provider makes is counted; the ECR look-alike's access log shows registry requests."""

from concurrent.futures import ThreadPoolExecutor

from faultproxy import FaultProxy
from harness import Provider, unique

MANIFEST_LIST = "multiarch:index:ManifestList"


def test_configure_reaches_nothing_and_concurrent_first_operations_fetch_one_token(
        engine, provider_env, world, ecr_log):
    proxy = FaultProxy(world["MOTO_ENDPOINT"].removeprefix("http://"))
    env = {**provider_env, "AWS_ENDPOINT_URL_ECR": f"http://{proxy.address}",
           "AWS_ENDPOINT_URL_STS": f"http://{proxy.address}"}
    p = Provider(engine, env=env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                     "aws": {"region": "us-east-1"}})
        assert proxy.log == []
        assert ecr_log.requests() == []

        repo = f"{world['ECR_REGISTRY']}/{unique('cold')}"
        sources = [world["BASE_IMAGE_ECR_AMD64"], world["BASE_IMAGE_ECR_ARM64"]]
        names = [f"ml{i}" for i in range(4)]
        checked = {}
        for n in names:
            checked[n], failures = p.check(
                MANIFEST_LIST, {"tags": [f"{repo}:{n}"], "sources": sources}, name=n)
            assert failures == []
        assert proxy.log == []
        with ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda n: p.create(MANIFEST_LIST, checked[n], name=n), names))
        assert all(state["digest"].startswith("sha256:") for _, state in results)
        # One GetAuthorizationToken for the four (the only ECR API call they need).
        assert [(m, path) for m, path, _ in proxy.log] == [("POST", "/")], proxy.log
    finally:
        p.close()
        proxy.stop()
