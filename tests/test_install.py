"""Installing the provider the way users do, from the release files `make dist` writes
(scripts/dist.sh; here with the debug build the suite already has unless MULTIARCH_DIST_DIR
names a `make dist` output): the archive layout and checksums, then each supported engine
(Terraform 1.0.3, Terraform 1.13.3, OpenTofu 1.12.6) in a fresh directory outside the
repository installing the provider through the `filesystem_mirror` CLI configuration the
README shows, word for word, and running the docs' examples (`init`, `fmt -check`, `validate`
with no warning, plan, apply, plan again, destroy) against the test world."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import tarfile
import zipfile
from pathlib import Path

import pytest
import yaml

from harness import ROOT, raw_manifest, run, skopeo_copy, unique
from test_terraform import ENGINE_IDS, ENGINES, Terraform, exists, platforms_of

VERSION = re.search(r'^version = "(.+)"$', (ROOT / "Cargo.toml").read_text(), re.M).group(1)
ECR_EXAMPLE_REPO = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app"
MIRROR_PLACEHOLDER = "/opt/terraform-mirror"


@pytest.fixture(scope="session")
def dist(tmp_path_factory) -> Path:
    given = os.environ.get("MULTIARCH_DIST_DIR")
    if given:
        return Path(given)
    d = tmp_path_factory.mktemp("dist") / "dist"
    env = dict(os.environ, DIST_DIR=str(d), MULTIARCH_DIST_PROFILE="debug", MULTIARCH_DIST_ARCHS="amd64")
    p = subprocess.run(["bash", str(ROOT / "scripts" / "dist.sh")], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    assert p.returncode == 0, p.stderr
    return d


def code_blocks(text: str, lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", text, re.S)


def test_release_files(dist):
    tarball = dist / f"pulumi-resource-multiarch-v{VERSION}-linux-amd64.tar.gz"
    with tarfile.open(tarball) as t:
        members = {m.name: m for m in t.getmembers()}
        assert sorted(members) == ["LICENSE", "README.md", "pulumi-resource-multiarch"]
        assert members["pulumi-resource-multiarch"].mode & 0o111
        assert t.extractfile("LICENSE").read().decode().lstrip().startswith("Apache License")
    zname = f"terraform-provider-multiarch_{VERSION}_linux_amd64.zip"
    with zipfile.ZipFile(dist / zname) as z:
        assert sorted(z.namelist()) == ["LICENSE", "README.md", f"terraform-provider-multiarch_v{VERSION}"]
        assert (z.getinfo(f"terraform-provider-multiarch_v{VERSION}").external_attr >> 16) & 0o111
    sums = (dist / f"terraform-provider-multiarch_{VERSION}_SHA256SUMS").read_text().splitlines()
    listed = {}
    for line in sums:
        digest, name = line.split(None, 1)
        listed[name.strip()] = digest
    assert set(listed) == {zname, f"terraform-provider-multiarch_{VERSION}_manifest.json"}
    for name, digest in listed.items():
        assert hashlib.sha256((dist / name).read_bytes()).hexdigest() == digest, name
    manifest = json.loads((dist / f"terraform-provider-multiarch_{VERSION}_manifest.json").read_text())
    assert manifest["metadata"]["protocol_versions"] == ["6.0"]
    # The mirror serves both registry hosts: Terraform's and OpenTofu's reading of the short
    # address `multiarch-dev/multiarch`.
    for host in ("registry.terraform.io", "registry.opentofu.org"):
        mirrored = (dist / "terraform-mirror" / host / "multiarch-dev" / "multiarch"
                    / VERSION / "linux_amd64" / f"terraform-provider-multiarch_v{VERSION}")
        assert os.access(mirrored, os.X_OK), host
    # Both binaries answer for the version they are filed under.
    p = run(str(mirrored), "--version")
    assert p.stdout == f"terraform-provider-multiarch_v{VERSION} {VERSION}\n"
    # The schema inside points Pulumi at the release: pluginDownloadURL, as `make dist` built it.
    schema = json.loads(run(str(mirrored), "--schema").stdout)
    assert schema["version"] == VERSION
    assert schema["pluginDownloadURL"].startswith(("https://", "http://"))


def readme_cli_config(mirror: Path) -> str:
    """The Terraform CLI configuration exactly as the README's install section gives it."""
    blocks = [b for b in code_blocks((ROOT / "README.md").read_text(), "hcl") if "filesystem_mirror" in b]
    assert len(blocks) == 1, "the README shows one filesystem_mirror configuration"
    assert MIRROR_PLACEHOLDER in blocks[0]
    return blocks[0].replace(MIRROR_PLACEHOLDER, str(mirror))


def docs_example(page: str) -> str:
    blocks = code_blocks((ROOT / "docs" / page).read_text(), "terraform")
    assert blocks, f"docs/{page} has an Example Usage"
    return blocks[0]


@pytest.fixture(params=ENGINES, ids=ENGINE_IDS)
def fresh(request, tmp_path_factory, world, dist):
    """A project directory outside the repository, with the README's CLI configuration, for
    each supported engine."""
    d = Path(tmp_path_factory.mktemp("user-project", numbered=True))
    assert ROOT not in d.parents
    rc = d.parent / f"{d.name}.tfrc"
    rc.write_text(readme_cli_config(dist / "terraform-mirror"))
    tf = Terraform(d, world, request.param)
    tf.env["TF_CLI_CONFIG_FILE"] = str(rc)
    return tf


def validates_cleanly(tf: Terraform):
    """`validate` and `fmt -check` pass with no warning at all."""
    p = tf("validate")
    assert "Success! The configuration is valid." in p.stdout, p.stdout
    assert "Warning" not in p.stdout + p.stderr, p.stdout + p.stderr
    p = run(tf.bin, "fmt", "-check", "-diff", "-recursive", str(tf.dir), check=False)
    assert p.returncode == 0, p.stdout + p.stderr


def test_terraform_installs_from_the_mirror_and_runs_the_docs_examples(fresh, world):
    tf = fresh
    repo = f"{world['ECR_REGISTRY']}/{unique('install')}"
    # The docs' examples, word for word but for the repository name (tests use unique ones).
    main = "\n".join(docs_example(p) for p in ("index.md", "resources/image.md", "resources/manifest_list.md"))
    assert ECR_EXAMPLE_REPO in main
    (tf.dir / "main.tf").write_text(main.replace(ECR_EXAMPLE_REPO, repo))
    app = tf.dir / "app"
    app.mkdir()
    (app / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_ECR']}\nARG VERSION\nLABEL version=$VERSION\nCOPY hello.txt /\n")
    (app / "hello.txt").write_text("hello\n")
    # The manifest list example stitches two single-architecture images that already exist.
    skopeo_copy(world["BASE_IMAGE_ECR_AMD64"], f"{repo}:10.10")
    skopeo_copy(world["BASE_IMAGE_ECR_ARM64"], f"{repo}:10.20")

    p = tf("init", "-input=false")
    assert f"Installing multiarch-dev/multiarch v{VERSION}" in p.stdout, p.stdout
    assert f"Installed multiarch-dev/multiarch v{VERSION}" in p.stdout
    host = tf.engine.registry_host
    lock = (tf.dir / ".terraform.lock.hcl").read_text()
    assert f'provider "{host}/multiarch-dev/multiarch"' in lock
    assert f'version = "{VERSION}"' in lock
    installed = list((tf.dir / ".terraform" / "providers" / host / "multiarch-dev"
                      / "multiarch" / VERSION / "linux_amd64").iterdir())
    assert f"terraform-provider-multiarch_v{VERSION}" in [f.name for f in installed]
    validates_cleanly(tf)

    code, out = tf.plan()
    assert code == 2 and "Plan: 2 to add, 0 to change, 0 to destroy." in out, out
    assert not exists(f"{repo}:1.2.3")  # plan wrote nothing
    p = tf("apply", "-input=false", "-auto-approve")
    assert "Apply complete! Resources: 2 added, 0 changed, 0 destroyed." in p.stdout
    assert platforms_of(raw_manifest(f"{repo}:1.2.3")) == ["linux/amd64", "linux/arm64"]
    assert platforms_of(raw_manifest(f"{repo}:10")) == ["linux/amd64", "linux/arm64"]
    outputs = json.loads(run(tf.bin, "output", "-json", cwd=tf.dir, env=tf.env).stdout)
    assert outputs["app_ref"]["value"].startswith(f"{repo}@sha256:")
    assert outputs["app10_platforms"]["value"] == ["linux/amd64", "linux/arm64"]
    code, out = tf.plan()
    assert code == 0 and "No changes." in out, out
    p = tf("destroy", "-input=false", "-auto-approve")
    assert "Destroy complete! Resources: 2 destroyed." in p.stdout
    assert not exists(f"{repo}:1.2.3") and not exists(f"{repo}:10")
    assert exists(f"{repo}:10.10")  # sources are never deleted


def test_example_terraform_main_runs_and_ecs_half_is_wired(fresh, world):
    """examples/terraform: main.tf (multiarch) validates with the provider from the mirror;
    ecs.tf (hashicorp/aws, which cannot be installed here) parses and is wired to it."""
    tf = fresh
    ex = ROOT / "examples" / "terraform"
    p = run(tf.bin, "fmt", "-check", "-diff", str(ex), check=False)
    assert p.returncode == 0, p.stdout + p.stderr  # both files parse (and are formatted)
    shutil.copy(ex / "main.tf", tf.dir / "main.tf")
    shutil.copytree(ex / "app", tf.dir / "app")
    (tf.dir / "repository.tf").write_text('locals {\n  repository = "%s"\n}\n' % f"{world['ECR_REGISTRY']}/x")
    tf("init", "-input=false")
    validates_cleanly(tf)
    # Every HCL block of the docs is formatted as this engine formats it (the import blocks
    # included; the engines that have them validate them in tests/test_terraform_engines.py).
    for page in ("index.md", "resources/image.md", "resources/manifest_list.md"):
        for i, block in enumerate(code_blocks((ROOT / "docs" / page).read_text(), "terraform")):
            f = tf.dir / "fmt-check" / f"{page.replace('/', '_')}-{i}.tf"
            f.parent.mkdir(exist_ok=True)
            f.write_text(block)
            p = run(tf.bin, "fmt", "-check", "-diff", str(f), check=False)
            assert p.returncode == 0, f"{page} block {i}:\n{p.stdout}{p.stderr}"

    main, ecs = (ex / "main.tf").read_text(), (ex / "ecs.tf").read_text()
    assert 'source  = "multiarch-dev/multiarch"' in main and "dev_overrides" not in main
    declared = set(re.findall(r'^resource "(\w+)" "(\w+)"', main + ecs, re.M))
    declared |= {("data." + t, n) for t, n in re.findall(r'^data "(\w+)" "(\w+)"', main + ecs, re.M)}
    for t, n in set(re.findall(r"\b((?:aws|multiarch)_\w+)\.(\w+)\.", main + ecs)):
        assert (t, n) in declared, f"{t}.{n} is referenced but not declared"
    assert 'repository = aws_ecr_repository.app.repository_url' in ecs
    assert 'image_tag_mutability = "IMMUTABLE"' in ecs and "scan_on_push = true" in ecs
    assert "AmazonECSTaskExecutionRolePolicy" in ecs
    assert "execution_role_arn       = aws_iam_role.execution.arn" in ecs
    assert 'arm64 = "ARM64"' in ecs and 'x86   = "X86_64"' in ecs
    assert "image        = multiarch_image.app.ref" in ecs
    assert "containerPort = 8080" in ecs and "EXPOSE 8080" in (ex / "app" / "Dockerfile").read_text()
    assert 'launch_type     = "FARGATE"' in ecs and "for_each        = local.architectures" in ecs
    assert ":latest" not in main + ecs


def test_example_pulumi_image_ecs_is_wired(provider, world):
    """examples/image-ecs/Pulumi.yaml: the AWS resources reference what exists, the task
    definitions run the Image per CPU architecture on 8080, and the Image's properties pass
    the provider's Check (the build itself needs the app's base image from the Internet)."""
    ex = ROOT / "examples" / "image-ecs"
    prog = yaml.safe_load((ex / "Pulumi.yaml").read_text())
    res = prog["resources"]
    names = set(res) | set(prog.get("config", {})) | set(prog.get("variables", {}))
    text = (ex / "Pulumi.yaml").read_text()
    for ref in re.findall(r"\$\{(\w+)", text):
        assert ref in names, f"${{{ref}}} names nothing"
    assert prog["plugins"]["providers"][0]["name"] == "multiarch"
    by_type: dict[str, list[str]] = {}
    for n, r in res.items():
        by_type.setdefault(r["type"], []).append(n)
    repo = res[by_type["aws:ecr:Repository"][0]]["properties"]
    assert repo["imageTagMutability"] == "IMMUTABLE" and repo["imageScanningConfiguration"]["scanOnPush"] is True
    image = res[by_type["multiarch:index:Image"][0]]["properties"]
    assert all(not t.endswith(":latest") for t in image["tags"])
    roles = by_type["aws:iam:RolePolicyAttachment"]
    assert any(res[r]["properties"]["policyArn"].endswith("AmazonECSTaskExecutionRolePolicy") for r in roles)
    archs = set()
    for n in by_type["aws:ecs:TaskDefinition"]:
        props = res[n]["properties"]
        archs.add(props["runtimePlatform"]["cpuArchitecture"])
        assert props["executionRoleArn"].startswith("${") and props["requiresCompatibilities"] == ["FARGATE"]
        (container,) = props["containerDefinitions"]["fn::toJSON"]
        assert container["image"] == "${web.ref}"
        assert container["portMappings"][0]["containerPort"] == 8080
    assert archs == {"ARM64", "X86_64"}
    services = [res[n]["properties"] for n in by_type["aws:ecs:Service"]]
    assert sorted(s["taskDefinition"] for s in services) == sorted(f"${{{n}.arn}}" for n in by_type["aws:ecs:TaskDefinition"])
    assert all(s["launchType"] == "FARGATE" and s["cluster"] == "${cluster.arn}" for s in services)
    assert "EXPOSE" in (ex / "app" / "Dockerfile").read_text() or ":8080" in (ex / "app" / "main.go").read_text()

    # The Image as the provider sees it, with the ECR repository's URL filled in.
    props = json.loads(json.dumps(image).replace("${repository.repositoryUrl}", f"{world['ECR_REGISTRY']}/web")
                       .replace("${appVersion}", "1.0.0").replace("./app", str(ex / "app")))
    _, failures = provider.check("multiarch:index:Image", props)
    assert failures == []


# --- Pulumi: the real CLI installs the plugin from the release files -------------------------

def pulumi_bin() -> str:
    """The Pulumi CLI built from source in the test world (scripts/pulumi.sh)."""
    given = os.environ.get("PULUMI")
    if given:
        return given
    state = Path(os.environ.get("MULTIARCH_TESTENV_STATE", "/var/lib/multiarch-testenv"))
    found = sorted(state.glob("pulumi/v*/bin/pulumi"))
    if not found and (ROOT / "scripts" / "pulumi.sh").exists():
        subprocess.run(["bash", str(ROOT / "scripts" / "pulumi.sh")], check=True, cwd=ROOT)
        found = sorted(state.glob("pulumi/v*/bin/pulumi"))
    assert found, f"no Pulumi CLI under {state}/pulumi (scripts/pulumi.sh installs it)"
    return str(found[-1])


class ReleaseServer:
    """A loopback HTTP server serving the dist directory, recording what was asked for."""

    def __init__(self, root: Path):
        import functools
        import http.server
        import threading

        self.paths: list[str] = []
        paths = self.paths

        class Handler(http.server.SimpleHTTPRequestHandler):
            def do_GET(self):
                paths.append(self.path)
                super().do_GET()

            def log_message(self, *args):
                pass

        self.httpd = http.server.ThreadingHTTPServer(
            ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def release_server(dist):
    s = ReleaseServer(dist)
    yield s
    s.close()


def pulumi_env(home: Path, extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update({"PULUMI_HOME": str(home), "PULUMI_SKIP_UPDATE_CHECK": "1",
                "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "false",
                "PATH": f"{Path(pulumi_bin()).parent}:{env.get('PATH', '')}"})
    env.update(extra or {})
    return env


def installed_plugins(home: Path) -> list[tuple[str, str, str]]:
    out = run(pulumi_bin(), "plugin", "ls", "--json", env=pulumi_env(home)).stdout
    return sorted((p["name"], p["kind"], p["version"]) for p in json.loads(out or "[]"))


def test_pulumi_plugin_install_from_server_and_file(tmp_path, dist, release_server):
    tarball = f"pulumi-resource-multiarch-v{VERSION}-linux-amd64.tar.gz"
    for how, args in (("server", ["--server", release_server.url]), ("file", ["--file", str(dist / tarball)])):
        home = tmp_path / how
        p = run(pulumi_bin(), "plugin", "install", "resource", "multiarch", VERSION, *args,
                env=pulumi_env(home), check=False)
        assert p.returncode == 0, p.stdout + p.stderr
        assert installed_plugins(home) == [("multiarch", "resource", VERSION)]
        binary_path = home / "plugins" / f"resource-multiarch-v{VERSION}" / "pulumi-resource-multiarch"
        assert run(str(binary_path), "--version").stdout == f"pulumi-resource-multiarch {VERSION}\n"
    assert release_server.paths == [f"/{tarball}"]  # the name Pulumi computes for linux-amd64


def test_pulumi_up_downloads_the_plugin_by_its_url(tmp_path, world, release_server):
    """A fresh YAML project names the plugin's download URL (pointed at the loopback server):
    `pulumi up` installs the plugin by itself, pushes a ManifestList, and `destroy` removes it."""
    home, state, proj = tmp_path / "home", tmp_path / "state", tmp_path / "project"
    state.mkdir()
    proj.mkdir()
    repo = f"{world['ECR_REGISTRY']}/{unique('pulumi-up')}"
    (proj / "Pulumi.yaml").write_text(yaml.safe_dump({
        "name": "multiarch-install-test",
        "runtime": "yaml",
        "resources": {"app": {
            "type": "multiarch:index:ManifestList",
            "properties": {"tags": [f"{repo}:10"],
                           "sources": [world["BASE_IMAGE_ECR_AMD64"], world["BASE_IMAGE_ECR_ARM64"]]},
            "options": {"version": VERSION, "pluginDownloadURL": release_server.url},
        }},
        "outputs": {"platforms": "${app.platforms}", "ref": "${app.ref}"},
    }))
    env = pulumi_env(home, {"PULUMI_BACKEND_URL": f"file://{state}", "PULUMI_CONFIG_PASSPHRASE": "",
                            **{k: world[k] for k in ("AWS_ENDPOINT_URL_ECR", "AWS_ACCESS_KEY_ID",
                                                     "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "SSL_CERT_FILE")}})

    def pulumi(*args):
        p = subprocess.run([pulumi_bin(), *args, "--non-interactive"], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=600)
        assert p.returncode == 0, f"pulumi {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p

    pulumi("stack", "init", "dev")
    assert installed_plugins(home) == []
    pulumi("up", "--yes")
    assert ("multiarch", "resource", VERSION) in installed_plugins(home)
    assert f"/pulumi-resource-multiarch-v{VERSION}-linux-amd64.tar.gz" in release_server.paths
    assert platforms_of(raw_manifest(f"{repo}:10")) == ["linux/amd64", "linux/arm64"]
    outputs = json.loads(pulumi("stack", "output", "--json").stdout)
    assert outputs["platforms"] == ["linux/amd64", "linux/arm64"]
    assert outputs["ref"].startswith(f"{repo}@sha256:")
    pulumi("preview", "--expect-no-changes")
    pulumi("destroy", "--yes")
    assert not exists(f"{repo}:10")


def test_example_pulumi_image_ecs_loads_in_the_real_cli(tmp_path):
    """`pulumi preview` of examples/image-ecs with the real CLI: the program, its config and
    its `plugins:` section load and the multiarch types resolve from the local plugin; what
    fails is only loading the aws package, which cannot be installed here."""
    proj = tmp_path / "image-ecs"
    shutil.copytree(ROOT / "examples" / "image-ecs", proj)
    text = (proj / "Pulumi.yaml").read_text()
    assert "path: ../../target/release" in text
    (proj / "Pulumi.yaml").write_text(text.replace("path: ../../target/release", f"path: {Path(binary_dir())}"))
    (tmp_path / "state").mkdir()
    env = pulumi_env(tmp_path / "home", {"PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
                                         "PULUMI_CONFIG_PASSPHRASE": "", "NO_COLOR": "1"})

    def pulumi(*args, ok=(0,)):
        p = subprocess.run([pulumi_bin(), *args, "--non-interactive"], cwd=proj, env=env,
                           capture_output=True, text=True, timeout=300)
        assert p.returncode in ok, f"pulumi {' '.join(args)}:\n{p.stdout}\n{p.stderr}"
        return p

    pulumi("stack", "init", "dev")
    pulumi("config", "set", "--path", "subnetIds[0]", "subnet-0123")
    pulumi("config", "set", "--path", "securityGroupIds[0]", "sg-0123")
    p = pulumi("preview", ok=(255, 1))
    out = re.sub(r"\x1b\[[0-9;]*m", "", p.stdout + p.stderr)
    errors = [l for l in out.splitlines() if "Error:" in l or l.startswith("error:")]
    assert errors, out
    for line in errors:
        assert 'loading package "aws"' in line, line
    assert not any("resource web" in l or "multiarch:index" in l for l in errors), errors


def binary_dir() -> str:
    from harness import binary

    return str(Path(binary()).parent)
