import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import FakeEngine, Provider, RegistryLog, WorldBuildkitd, testenv  # noqa: E402


@pytest.fixture(scope="session")
def world():
    """The running test world (scripts/testenv.sh): registries, moto, Docker Engine."""
    return testenv()


@pytest.fixture(scope="session")
def world_buildkitd(world):
    """The test world's standalone buildkitd: tcp://127.0.0.1 with mutual TLS."""
    return WorldBuildkitd(world)


@pytest.fixture(scope="session")
def docker2_env(world):
    """The environment for a Docker client talking to the test world's second Engine."""
    return {**os.environ, "DOCKER_HOST": world["DOCKER2_HOST"]}


@pytest.fixture(scope="session")
def docker1_env(world):
    """The environment for a Docker client talking to the test world's first Engine."""
    return {**os.environ, "DOCKER_HOST": world["DOCKER_HOST"]}


@pytest.fixture(scope="session")
def provider_env(world):
    keys = [
        "AWS_ENDPOINT_URL_ECR", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION",
        "AWS_DEFAULT_REGION", "SSL_CERT_FILE", "DOCKER_HOST",
    ]
    return {k: world[k] for k in keys if k in world}


@pytest.fixture
def engine():
    e = FakeEngine()
    yield e
    e.stop()


@pytest.fixture
def provider(engine, provider_env, world):
    """A configured provider: the plain registry needs `insecure`, ECR needs nothing."""
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}]})
    yield p
    p.close()


@pytest.fixture
def bare_provider(engine, provider_env):
    """A started but not yet handshaken or configured provider."""
    p = Provider(engine, env=provider_env)
    yield p
    p.close()


@pytest.fixture
def ecr_log(world):
    log = RegistryLog(world["ECR_REGISTRY_LOG"])
    log.mark()
    return log


@pytest.fixture
def plain_log(world):
    log = RegistryLog(world["PLAIN_REGISTRY_LOG"])
    log.mark()
    return log
