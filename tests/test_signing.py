"""Signing on push, end to end: the provider signs what Image and ManifestList push with a PEM
key (provider `signing.key`), and the real `cosign` (v2, built by the test world) verifies
the index and each platform manifest with the public key; another key's signature under the
same `.sig` tag is kept; `sign: false` and preview write no signature; the key stays out of
state and logs."""

import base64
import hashlib
import json
import os
import subprocess
import urllib.request

import pytest

from pulumicli import writes_to
from harness import IMAGE, ML, UNKNOWN, provider_pb2, raw_manifest, run, secret, skopeo_copy, to_struct, unique
from harness import Provider
from harness import testenv as read_world


@pytest.fixture(scope="session")
def cosign(world):
    """The test world's cosign: required under CI, a skip elsewhere when the world lacks it."""
    path = world.get("COSIGN")
    if not path or not os.access(path, os.X_OK):
        msg = "the test world has no cosign (COSIGN in the env file); run scripts/testenv.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return path


@pytest.fixture(scope="session")
def referrers_registry(world):
    """The test world's registry with the OCI 1.1 referrers API: required under CI."""
    reg = world.get("REFERRERS_REGISTRY")
    if not reg:
        msg = "the test world has no referrers registry (REFERRERS_REGISTRY); run scripts/testenv.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return reg


class Key:
    """A PEM PKCS#8 ECDSA P-256 key pair made by openssl, as a user makes one."""

    def __init__(self, d):
        d.mkdir(parents=True, exist_ok=True)
        self.private = d / "key.pem"
        self.public = d / "pub.pem"
        run("openssl", "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:P-256",
            "-out", str(self.private))
        run("openssl", "pkey", "-in", str(self.private), "-pubout", "-out", str(self.public))
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(self.public), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        self.fingerprint = "sha256:" + hashlib.sha256(der).hexdigest()

    def pem(self) -> str:
        return self.private.read_text()

    def secret_lines(self) -> list[str]:
        """The base64 lines of the private key: none may show up anywhere."""
        return [l for l in self.pem().splitlines() if l and not l.startswith("-----")]


@pytest.fixture
def key(tmp_path):
    return Key(tmp_path / "key1")


@pytest.fixture
def signing_provider(engine, provider_env, world, key):
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({
        "registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
        "signing": {"key": secret(key.pem())},
    })
    yield p
    p.close()


def cosign_env(tmp_path) -> dict:
    # Its own home: no TUF cache or Docker credentials of the machine's user; the ECR
    # look-alike's login (moto's fixed token) in its own Docker config.
    home = tmp_path / "cosign-home"
    docker = home / "docker"
    docker.mkdir(parents=True, exist_ok=True)
    world = read_world()
    password = open(world["ECR_PASSWORD_FILE"]).read().strip()
    auth = base64.b64encode(f"{world['ECR_USERNAME']}:{password}".encode()).decode()
    (docker / "config.json").write_text(json.dumps({"auths": {world["ECR_REGISTRY"]: {"auth": auth}}}))
    return {**os.environ, "HOME": str(home), "TUF_ROOT": str(home / "tuf"),
            "DOCKER_CONFIG": str(docker), "COSIGN_PASSWORD": ""}


def verify(cosign, tmp_path, pub, ref) -> subprocess.CompletedProcess:
    return subprocess.run(
        [cosign, "verify", "--key", str(pub), "--insecure-ignore-tlog=true",
         "--allow-insecure-registry", "--allow-http-registry", ref],
        capture_output=True, text=True, env=cosign_env(tmp_path), timeout=120,
    )


def assert_verifies(cosign, tmp_path, pub, ref, digest):
    r = verify(cosign, tmp_path, pub, ref)
    assert r.returncode == 0, f"cosign verify {ref}: {r.stderr}"
    claims = json.loads(r.stdout)
    assert any(c["critical"]["image"]["docker-manifest-digest"] == digest for c in claims), claims


def tags_of(registry: str, repo: str) -> list[str]:
    with urllib.request.urlopen(f"http://{registry}/v2/{repo}/tags/list", timeout=30) as resp:
        return json.load(resp).get("tags") or []


def assert_no_secret(key: Key, *texts: str):
    for text in texts:
        for line in key.secret_lines():
            assert line not in text


def image_platforms(index: dict) -> dict:
    return {f"{m['platform']['os']}/{m['platform']['architecture']}": m["digest"]
            for m in index["manifests"] if m["platform"]["os"] != "unknown"}


@pytest.fixture
def sources(world):
    """A fresh repository with an amd64 and an arm64 image (busybox)."""
    repo = f"{world['PLAIN_REGISTRY']}/{unique('signed')}"
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{repo}:arm64")
    return repo


def test_manifest_list_signed_verified_by_cosign_and_other_keys_kept(
        signing_provider, engine, world, cosign, key, sources, tmp_path, plain_log):
    # Another key signed the amd64 image before: cosign's own `sign`, no transparency log.
    other = tmp_path / "other"
    other.mkdir()
    run(cosign, "generate-key-pair", cwd=other, env=cosign_env(tmp_path))
    amd64 = run("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
                f"docker://{sources}:amd64").stdout.strip()
    run(cosign, "sign", "--key", str(other / "cosign.key"), "--tlog-upload=false", "-y",
        "--allow-insecure-registry", "--allow-http-registry", f"{sources}@{amd64}",
        env=cosign_env(tmp_path))
    assert_verifies(cosign, tmp_path, other / "cosign.pub", f"{sources}@{amd64}", amd64)

    inputs = {"tags": [f"{sources}:1"], "sources": [f"{sources}:amd64", f"{sources}:arm64"],
              "mediaType": "oci"}
    checked, failures = signing_provider.check(ML, inputs)
    assert failures == []
    before = tags_of(world["PLAIN_REGISTRY"], sources.split("/", 1)[1])
    plain_log.mark()
    _, preview = signing_provider.create(ML, checked, preview=True)
    assert plain_log.writes() == [], "preview wrote to the registry"
    assert preview["signatures"] == UNKNOWN
    assert tags_of(world["PLAIN_REGISTRY"], sources.split("/", 1)[1]) == before

    _, state = signing_provider.create(ML, checked)
    index = raw_manifest(f"{sources}:1", insecure=True)
    children = image_platforms(index)
    assert sorted(children) == ["linux/amd64", "linux/arm64"]
    signed = state["signatures"]
    assert signed["key"] == key.fingerprint
    assert sorted(signed["digests"]) == sorted([state["digest"], *children.values()])

    assert_verifies(cosign, tmp_path, key.public, f"{sources}:1", state["digest"])
    for digest in children.values():
        assert_verifies(cosign, tmp_path, key.public, f"{sources}@{digest}", digest)
    # The other key's signature is still there, beside ours.
    assert_verifies(cosign, tmp_path, other / "cosign.pub", f"{sources}@{amd64}", amd64)
    sig = raw_manifest(f"{sources}:{amd64.replace(':', '-')}.sig", insecure=True)
    assert len(sig["layers"]) == 2
    # A key that did not sign is refused: verification can fail.
    stranger = Key(tmp_path / "stranger")
    assert verify(cosign, tmp_path, stranger.public, f"{sources}:1").returncode != 0

    # Applying again signs nothing again (one layer per key, not one per run).
    plain_log.mark()
    again = signing_provider.update(ML, f"{sources}:1", state, dict(checked, tags=[f"{sources}:1", f"{sources}:2"]))
    assert again["signatures"]["digests"] == signed["digests"]
    assert len(raw_manifest(f"{sources}:{amd64.replace(':', '-')}.sig", insecure=True)["layers"]) == 2
    assert not any(".sig" in w for w in plain_log.writes()), plain_log.writes()

    assert_no_secret(key, json.dumps(state), json.dumps(again), signing_provider.stderr(),
                     "\n".join(engine.messages()))


def test_sign_false_writes_no_signature(signing_provider, world, sources, tmp_path, cosign, key):
    inputs = {"tags": [f"{sources}:unsigned"], "sources": [f"{sources}:amd64", f"{sources}:arm64"],
              "sign": False}
    checked, failures = signing_provider.check(ML, inputs)
    assert failures == []
    _, state = signing_provider.create(ML, checked)
    assert "signatures" not in state
    assert not [t for t in tags_of(world["PLAIN_REGISTRY"], sources.split("/", 1)[1]) if t.endswith(".sig")]
    assert verify(cosign, tmp_path, key.public, f"{sources}:unsigned").returncode != 0


ARCH_DOCKERFILE = """\
FROM {base}
COPY app.txt /app.txt
"""


def test_image_signed_on_every_platform(signing_provider, world, cosign, key, tmp_path, plain_log):
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text(ARCH_DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
    (ctx / "app.txt").write_text("signed\n")
    repo = f"{world['PLAIN_REGISTRY']}/{unique('signed-img')}"
    inputs = {"context": {"location": str(ctx)}, "platforms": ["linux/amd64", "linux/arm64"],
              "tags": [f"{repo}:v1"], "network": "none"}
    checked, failures = signing_provider.check(IMAGE, inputs)
    assert failures == []
    plain_log.mark()
    _, preview = signing_provider.create(IMAGE, checked, preview=True)
    assert plain_log.writes() == []
    assert preview["signatures"] == UNKNOWN
    _, state = signing_provider.create(IMAGE, checked)
    index = raw_manifest(f"{repo}:v1", insecure=True)
    children = image_platforms(index)
    assert sorted(children) == ["linux/amd64", "linux/arm64"]
    assert state["signatures"]["key"] == key.fingerprint
    # Attestation manifests (if the builder added any) are not signed: images are.
    assert sorted(state["signatures"]["digests"]) == sorted([state["digest"], *children.values()])
    assert_verifies(cosign, tmp_path, key.public, f"{repo}:v1", state["digest"])
    for digest in children.values():
        assert_verifies(cosign, tmp_path, key.public, f"{repo}@{digest}", digest)
    assert_no_secret(key, json.dumps(state), signing_provider.stderr())


@pytest.mark.parametrize("signing, prop, words", [
    ({"key": "not a key"}, "signing.key", "PRIVATE KEY"),
    ({}, "signing", "set key"),
    ({"key": "x", "kmsKeyId": "alias/k"}, "signing", "not both"),
])
def test_bad_signing_configuration_names_the_property(bare_provider, signing, prop, words):
    resp = bare_provider.stub.CheckConfig(provider_pb2.CheckRequest(news=to_struct({"signing": signing})))
    failures = [(f.property, f.reason) for f in resp.failures]
    assert len(failures) == 1, failures
    assert failures[0][0] == prop and words in failures[0][1], failures


def cosign_sign(cosign, tmp_path, key_file, ref):
    """Signs `ref` with cosign itself (no transparency log), as a build pipeline would."""
    run(cosign, "sign", "--key", str(key_file), "--tlog-upload=false", "-y",
        "--allow-insecure-registry", "--allow-http-registry", ref, env=cosign_env(tmp_path))


def digest_of(ref: str) -> str:
    return run("skopeo", "inspect", "--tls-verify=false", "--format", "{{.Digest}}",
               f"docker://{ref}").stdout.strip()


@pytest.fixture
def source_index(world, sources):
    """An OCI index over the amd64 and arm64 images, pushed by skopeo (unsigned)."""
    run("skopeo", "copy", "--quiet", "--all", "--src-tls-verify=false", "--dest-tls-verify=false",
        f"docker://{world['BASE_IMAGE_PLAIN']}", f"docker://{sources}:release")
    index = raw_manifest(f"{sources}:release", insecure=True)
    return sources, digest_of(f"{sources}:release"), image_platforms(index)


def test_require_signed_by_refuses_unsigned_and_wrongly_signed_sources_at_preview(
        signing_provider, world, cosign, tmp_path, source_index, plain_log):
    repo, index_digest, children = source_index
    trusted = tmp_path / "trusted"
    trusted.mkdir()
    run(cosign, "generate-key-pair", cwd=trusted, env=cosign_env(tmp_path))
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    run(cosign, "generate-key-pair", cwd=rogue, env=cosign_env(tmp_path))
    target = f"{world['PLAIN_REGISTRY']}/{unique('promoted')}"
    inputs = {"tags": [f"{target}:1"], "sources": [f"{repo}@{index_digest}"],
              "requireSignedBy": [(trusted / "cosign.pub").read_text()]}
    checked, failures = signing_provider.check(ML, inputs)
    assert failures == []

    # Unsigned: the preview fails naming the source and digest; nothing is written.
    plain_log.mark()
    with pytest.raises(Exception) as e:
        signing_provider.create(ML, checked, preview=True)
    assert f"{repo}@{index_digest}" in str(e.value) and "carries no signature" in str(e.value)
    assert plain_log.writes() == []

    # Signed by another key: refused the same way, at preview and at up.
    cosign_sign(cosign, tmp_path, rogue / "cosign.key", f"{repo}@{index_digest}")
    for digest in children.values():
        cosign_sign(cosign, tmp_path, rogue / "cosign.key", f"{repo}@{digest}")
    plain_log.mark()
    for preview in (True, False):
        with pytest.raises(Exception) as e:
            signing_provider.create(ML, checked, preview=preview)
        assert "no valid signature by a key of requireSignedBy" in str(e.value)
        assert index_digest in str(e.value)
    assert plain_log.writes() == []

    # The index signed by the trusted key, one child not yet: that child is named.
    cosign_sign(cosign, tmp_path, trusted / "cosign.key", f"{repo}@{index_digest}")
    arm64 = children["linux/arm64"]
    cosign_sign(cosign, tmp_path, trusted / "cosign.key", f"{repo}@{children['linux/amd64']}")
    with pytest.raises(Exception) as e:
        signing_provider.create(ML, checked, preview=True)
    details = e.value.details()
    assert f"(linux/arm64, {arm64})" in details and details.count("carries") == 1, details

    # All signed: preview and up pass; the promotion keeps the digest and carries the source's
    # signatures, so the target verifies with the key that signed the source.
    cosign_sign(cosign, tmp_path, trusted / "cosign.key", f"{repo}@{arm64}")
    _, preview = signing_provider.create(ML, checked, preview=True)
    _, state = signing_provider.create(ML, checked)
    assert state["digest"] == index_digest
    assert_verifies(cosign, tmp_path, trusted / "cosign.pub", f"{target}:1", index_digest)
    for digest in children.values():
        assert_verifies(cosign, tmp_path, trusted / "cosign.pub", f"{target}@{digest}", digest)


def test_bad_require_signed_by_key_is_a_check_failure(provider, world):
    inputs = {"tags": [f"{world['PLAIN_REGISTRY']}/x:1"], "sources": [f"{world['PLAIN_REGISTRY']}/x:2"],
              "requireSignedBy": ["-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n"]}
    _, failures = provider.check(ML, inputs)
    assert [p for p, _ in failures] == ["requireSignedBy[0]"], failures


def test_terraform_provider_block_signs_with_a_sensitive_key(tmp_path, world, cosign, key, sources):
    """The same `signing` block in Terraform: `key` is sensitive (in neither plan output nor
    state), the ManifestList is signed, a second plan has no changes."""
    from test_terraform import Terraform

    d = tmp_path / "tf-signing"
    d.mkdir()
    (d / "main.tf").write_text(f"""
terraform {{
  required_providers {{
    multiarch = {{ source = "example.com/multiarch/multiarch" }}
  }}
}}

provider "multiarch" {{
  registries = [{{ address = "{world['PLAIN_REGISTRY']}", insecure = true }}]
  signing    = {{ key = file("{key.private}") }}
}}

resource "multiarch_manifest_list" "app" {{
  tags    = ["{sources}:tf"]
  sources = ["{sources}:amd64", "{sources}:arm64"]
}}

output "signatures" {{
  value = multiarch_manifest_list.app.signatures
}}
""")
    tf = Terraform(d, world)
    plan = tf("plan", "-input=false")
    applied = tf("apply", "-input=false", "-auto-approve")
    state = tf.state()["multiarch_manifest_list.app"]
    assert state["signatures"]["key"] == key.fingerprint
    digests = sorted(state["signatures"]["digests"])
    assert state["digest"] in digests and len(digests) == 3
    assert_verifies(cosign, tmp_path, key.public, f"{sources}:tf", state["digest"])
    for m in state["manifests"]:
        assert_verifies(cosign, tmp_path, key.public, f"{sources}@{m['digest']}", m["digest"])
    assert tf.plan()[0] == 0
    assert_no_secret(key, plan.stdout, applied.stdout, (d / "terraform.tfstate").read_text())


def sig_tags(world, repo: str) -> list[str]:
    return sorted(t for t in tags_of(world["PLAIN_REGISTRY"], repo.split("/", 1)[1]) if t.endswith(".sig"))


def test_delete_removes_our_signatures_only_where_nothing_tagged_uses_the_digest(
        signing_provider, world, cosign, key, sources, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    run(cosign, "generate-key-pair", cwd=other, env=cosign_env(tmp_path))

    # A target repository with nothing else in it: the sources' manifests are copied there.
    target = f"{world['PLAIN_REGISTRY']}/{unique('delete-signed')}"
    inputs = {"tags": [f"{target}:1"], "sources": [f"{sources}:amd64", f"{sources}:arm64"],
              "mediaType": "oci"}
    checked, _ = signing_provider.check(ML, inputs)
    id, state = signing_provider.create(ML, checked)
    children = {m["platform"]: m["digest"] for m in state["manifests"]}
    amd64 = children["linux/amd64"]
    # A pipeline's own signature of one platform manifest, beside ours.
    cosign_sign(cosign, tmp_path, other / "cosign.key", f"{target}@{amd64}")
    assert len(sig_tags(world, target)) == 3

    signing_provider.delete(ML, id, state)
    # Ours are gone; the other key's signature of amd64 is kept (its tag with it).
    assert sig_tags(world, target) == [f"{amd64.replace(':', '-')}.sig"]
    sig = raw_manifest(f"{target}:{amd64.replace(':', '-')}.sig", insecure=True)
    assert len(sig["layers"]) == 1
    assert_verifies(cosign, tmp_path, other / "cosign.pub", f"{target}@{amd64}", amd64)
    assert verify(cosign, tmp_path, key.public, f"{target}@{amd64}").returncode != 0

    # Another tag still points to the index: nothing is unsigned.
    kept = f"{world['PLAIN_REGISTRY']}/{unique('delete-kept')}"
    inputs = {"tags": [f"{kept}:1"], "sources": [f"{sources}:amd64", f"{sources}:arm64"],
              "mediaType": "oci"}
    checked, _ = signing_provider.check(ML, inputs)
    id, state = signing_provider.create(ML, checked)
    skopeo_copy(f"{kept}@{state['digest']}", f"{kept}:pinned", "--all")
    signing_provider.delete(ML, id, state)
    assert len(sig_tags(world, kept)) == 3
    assert_verifies(cosign, tmp_path, key.public, f"{kept}:pinned", state["digest"])


def test_manifest_list_on_ecr_signed_and_verified(engine, provider_env, world, cosign, key, tmp_path, ecr_log):
    """The ECR look-alike (IAM token from moto): signatures pushed with the same token."""
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({"signing": {"key": secret(key.pem())}})
    try:
        repo = f"{world['ECR_REGISTRY']}/{unique('signed')}"
        skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:amd64")
        skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:arm64")
        checked, failures = p.check(ML, {"tags": [f"{repo}:1"], "sources": [f"{repo}:amd64", f"{repo}:arm64"]})
        assert failures == []
        ecr_log.mark()
        _, preview = p.create(ML, checked, preview=True)
        assert writes_to(ecr_log, repo) == [] and preview["signatures"] == UNKNOWN
        _, state = p.create(ML, checked)
        assert state["signatures"]["key"] == key.fingerprint
        assert_verifies(cosign, tmp_path, key.public, f"{repo}:1", state["digest"])
        for m in state["manifests"]:
            assert_verifies(cosign, tmp_path, key.public, f"{repo}@{m['digest']}", m["digest"])
        assert_no_secret(key, json.dumps(state), p.stderr())
    finally:
        p.close()


KMS_KEY = """
import base64, json, os, boto3
kms = boto3.client("kms", endpoint_url=os.environ["MOTO_ENDPOINT"])
key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["KeyId"]
der = kms.get_public_key(KeyId=key)["PublicKey"]
b64 = base64.b64encode(der).decode()
pem = "-----BEGIN PUBLIC KEY-----\\n" + "\\n".join(b64[i:i + 64] for i in range(0, len(b64), 64)) + "\\n-----END PUBLIC KEY-----\\n"
print(json.dumps({"id": key, "pem": pem}))
"""


def test_manifest_list_signed_with_a_kms_key(engine, provider_env, world, cosign, sources, tmp_path):
    """moto's KMS (ECC_NIST_P256, SIGN_VERIFY) signs through kms:Sign; cosign verifies with the
    public key KMS gives out."""
    made = json.loads(run(world["MOTO_PYTHON"], "-c", KMS_KEY, env={**os.environ, **world}).stdout)
    pub = tmp_path / "kms-pub.pem"
    pub.write_text(made["pem"])
    env = {**provider_env, "AWS_ENDPOINT_URL_KMS": world["MOTO_ENDPOINT"]}
    p = Provider(engine, env=env)
    p.handshake()
    p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                 "signing": {"kmsKeyId": made["id"]}})
    try:
        checked, failures = p.check(ML, {"tags": [f"{sources}:kms"],
                                         "sources": [f"{sources}:amd64", f"{sources}:arm64"]})
        assert failures == []
        _, state = p.create(ML, checked)
        der = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(pub), "-outform", "DER"],
                             check=True, capture_output=True).stdout
        assert state["signatures"]["key"] == "sha256:" + hashlib.sha256(der).hexdigest()
        assert_verifies(cosign, tmp_path, pub, f"{sources}:kms", state["digest"])
        for m in state["manifests"]:
            assert_verifies(cosign, tmp_path, pub, f"{sources}@{m['digest']}", m["digest"])
    finally:
        p.close()


def http_json(url: str, accept: str = "application/vnd.oci.image.index.v1+json") -> dict:
    req = urllib.request.Request(url, headers={"Accept": accept})
    with urllib.request.urlopen(req, timeout=30) as resp:
        return json.load(resp)


def http_bytes(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as resp:
        return resp.read()


def test_signatures_are_also_referrers_where_the_registry_has_the_api(
        engine, provider_env, world, cosign, key, tmp_path, referrers_registry):
    """On a registry with the OCI 1.1 referrers API each signature is also an artifact whose
    subject is the signed manifest; its layer is the payload and signature cosign reads."""
    reg = referrers_registry
    repo = f"{reg}/{unique('referred')}"
    skopeo_copy(world["BASE_IMAGE_PLAIN_AMD64"], f"{repo}:amd64")
    skopeo_copy(world["BASE_IMAGE_PLAIN_ARM64"], f"{repo}:arm64")
    p = Provider(engine, env=provider_env)
    p.handshake()
    p.configure({"registries": [{"address": reg, "insecure": True}],
                 "signing": {"key": secret(key.pem())}})
    try:
        checked, _ = p.check(ML, {"tags": [f"{repo}:1"], "sources": [f"{repo}:amd64", f"{repo}:arm64"],
                                  "mediaType": "oci"})
        _, state = p.create(ML, checked)
    finally:
        p.close()
    name = repo.split("/", 1)[1]
    for digest in state["signatures"]["digests"]:
        index = http_json(f"http://{reg}/v2/{name}/referrers/{digest}")
        # The artifact's own artifactType (this registry's index reports the config's type).
        arts = [http_json(f"http://{reg}/v2/{name}/manifests/{m['digest']}",
                          "application/vnd.oci.image.manifest.v1+json") for m in index["manifests"]]
        sigs = [a for a in arts if a.get("artifactType") == "application/vnd.dev.cosign.artifact.sig.v1+json"]
        assert len(sigs) == 1, index
        art = sigs[0]
        assert art["subject"]["digest"] == digest
        layer = art["layers"][0]
        payload = http_bytes(f"http://{reg}/v2/{name}/blobs/{layer['digest']}")
        assert json.loads(payload)["critical"]["image"]["docker-manifest-digest"] == digest
        (tmp_path / "payload").write_bytes(payload)
        (tmp_path / "sig").write_bytes(base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"]))
        run("openssl", "dgst", "-sha256", "-verify", str(key.public), "-signature",
            str(tmp_path / "sig"), str(tmp_path / "payload"))
        # The tag scheme holds the same signature for cosign's default lookup.
        assert_verifies(cosign, tmp_path, key.public, f"{repo}@{digest}", digest)
        # cosign's OCI 1.1 mode finds the referrer through the API and verifies it.
        log = world["REFERRERS_REGISTRY_LOG"]
        start = os.path.getsize(log)
        r = subprocess.run(
            [cosign, "verify", "--experimental-oci11=true", "--key", str(key.public),
             "--insecure-ignore-tlog=true", "--allow-insecure-registry", "--allow-http-registry",
             f"{repo}@{digest}"], capture_output=True, text=True, env=cosign_env(tmp_path), timeout=120)
        assert r.returncode == 0, r.stderr
        with open(log, "rb") as f:
            f.seek(start)
            seen = f.read().decode(errors="replace")
        assert f"GET /v2/{name}/referrers/{digest}" in seen, seen
