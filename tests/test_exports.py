"""Image `load` and `exports` end to end: the Engine's BuildKit (Docker Engine 26, containerd
image store, arm64 under QEMU) and the standalone buildkitd, driven as the engine drives the
provider."""

import hashlib
import json
import os
import subprocess
import tarfile

import pytest

from harness import IMAGE, UNKNOWN, Provider, run, secret, unique

DOCKERFILE = """\
FROM {base}
ARG MARK
RUN uname -m > /built-on && echo "$MARK" > /mark
CMD ["uname", "-m"]
"""


def ctx(tmp_path, world, mark):
    d = tmp_path / "ctx"
    d.mkdir()
    (d / "Dockerfile").write_text(DOCKERFILE.format(base=world["BASE_IMAGE_PLAIN"]))
    return d, {"MARK": mark}


def inputs_for(d, args, **extra):
    inputs = {"context": {"location": str(d)}, "platforms": ["linux/amd64", "linux/arm64"],
              "buildArgs": args, "network": "none"}
    inputs.update(extra)
    return inputs


def create(provider, inputs):
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    return provider.create(IMAGE, checked)


def test_load_puts_both_platforms_into_the_engine(provider, world, tmp_path, plain_log):
    mark = unique("load")
    d, args = ctx(tmp_path, world, mark)
    name = unique("loaded")
    tag = f"{world['PLAIN_REGISTRY']}/{name}:v1"
    plain_log.mark()
    id, state = create(provider, inputs_for(d, args, tags=[tag], push=False, load=True))
    try:
        assert state["digest"] == "" and state["exported"] == []
        for platform, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
            out = run("docker", "run", "--rm", "--network", "none", "--platform", platform, tag,
                      "sh", "-c", "uname -m; cat /mark").stdout.split()
            assert out == [arch, mark], (platform, out)
        # Loaded, not pushed.
        assert [w for w in plain_log.writes() if name in w] == []
        # Delete leaves the Engine's image alone (a local artefact, like file exports).
        provider.delete(IMAGE, id, state)
        assert run("docker", "image", "inspect", tag, check=False).returncode == 0
    finally:
        run("docker", "image", "rm", "-f", tag, check=False)


def test_push_and_load_in_one_build(provider, world, tmp_path):
    """One image exporter pushes and keeps the result in the Engine's image store."""
    mark = unique("pushload")
    d, args = ctx(tmp_path, world, mark)
    tag = f"{world['PLAIN_REGISTRY']}/{unique('pushload')}:v1"
    id, state = create(provider, inputs_for(d, args, tags=[tag], load=True))
    try:
        pushed = run("skopeo", "inspect", "--tls-verify=false", "--raw",
                     f"docker://{tag}").stdout.encode()
        assert state["digest"] == "sha256:" + hashlib.sha256(pushed).hexdigest()
        out = run("docker", "run", "--rm", "--network", "none", "--platform", "linux/arm64",
                  tag, "cat", "/mark").stdout.strip()
        assert out == mark
    finally:
        provider.delete(IMAGE, id, state)
        run("docker", "image", "rm", "-f", tag, check=False)


def test_exports_with_platforms_split_over_nodes_name_exports(engine, provider_env, world,
                                                              tmp_path):
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                     "builders": [
                         {"endpoint": "docker+" + world["DOCKER_HOST"],
                          "platforms": ["linux/amd64"]},
                         {"endpoint": "docker+" + world["DOCKER2_HOST"],
                          "platforms": ["linux/arm64"]}]})
        d, args = ctx(tmp_path, world, unique("split"))
        dest = tmp_path / "split.tar"
        checked, failures = p.check(IMAGE, inputs_for(d, args, push=False,
                                                      exports=[{"tar": {"dest": str(dest)}}]))
        assert failures == []
        with pytest.raises(Exception) as e:
            p.create(IMAGE, checked)
        text = str(e.value)
        assert "exports" in text and "one node" in text, text
        assert not dest.exists()
    finally:
        p.close()


def test_oci_export_with_push_in_one_build(provider, world, tmp_path):
    """An OCI tarball of both platforms, written while the same build pushes."""
    d, args = ctx(tmp_path, world, unique("oci"))
    dest = tmp_path / "out" / "image.tar"
    dest.parent.mkdir()
    repo = f"{world['PLAIN_REGISTRY']}/{unique('ocipush')}"
    id, state = create(provider, inputs_for(d, args, tags=[f"{repo}:v1"],
                                            exports=[{"oci": {"dest": str(dest)}}]))
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci-archive:{dest}").stdout)
    platforms = {f"{m['platform']['os']}/{m['platform']['architecture']}"
                 for m in raw["manifests"] if m["platform"]["os"] != "unknown"}
    assert platforms == {"linux/amd64", "linux/arm64"}
    file_digest = "sha256:" + hashlib.sha256(dest.read_bytes()).hexdigest()
    assert state["exported"] == [{"type": "oci", "dest": str(dest), "digest": file_digest}]
    # The push happened too, and its digest is the registry's.
    pushed = run("skopeo", "inspect", "--tls-verify=false", "--raw",
                 f"docker://{repo}:v1").stdout.encode()
    assert state["digest"] == "sha256:" + hashlib.sha256(pushed).hexdigest()
    assert {m["platform"] for m in state["manifests"]} == {"linux/amd64", "linux/arm64"}
    # No temporaries left next to the file.
    assert os.listdir(dest.parent) == ["image.tar"]
    provider.delete(IMAGE, id, state)
    assert dest.exists(), "delete leaves exported files in place"


def layout_platforms(dest, ref=""):
    raw = json.loads(run("skopeo", "inspect", "--raw", f"oci:{dest}{ref}").stdout)
    return {f"{m['platform']['os']}/{m['platform']['architecture']}"
            for m in raw["manifests"] if m["platform"]["os"] != "unknown"}


def test_oci_layout_directory_export(provider, world, tmp_path):
    """`oci {dest, tar: false}`: an OCI image layout directory of both platforms, written
    through the session's content store, its index.json naming the image by its tag."""
    d, args = ctx(tmp_path, world, unique("ocidir"))
    dest = tmp_path / "layout"
    repo = f"{world['PLAIN_REGISTRY']}/{unique('ocidir')}"
    id, state = create(provider, inputs_for(d, args, tags=[f"{repo}:v1"], push=False,
                                            exports=[{"oci": {"dest": str(dest), "tar": False}}]))
    assert layout_platforms(dest) == {"linux/amd64", "linux/arm64"}
    assert layout_platforms(dest, ":v1") == {"linux/amd64", "linux/arm64"}
    index = json.loads((dest / "index.json").read_text())
    [m] = index["manifests"]
    assert m["annotations"]["io.containerd.image.name"] == f"{repo}:v1"
    assert json.loads((dest / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    # Every blob is whole (its name is its digest); no temporaries are left.
    for b in (dest / "blobs" / "sha256").iterdir():
        assert hashlib.sha256(b.read_bytes()).hexdigest() == b.name
    assert sorted(x.name for x in dest.iterdir()) == ["blobs", "index.json", "oci-layout"]
    assert state["exported"] == [{"type": "oci", "dest": str(dest)}]
    # Built again into the same directory: the blobs it has are kept (BuildKit is told they
    # exist), the new image replaces the old under the same name.
    blobs = {b.name for b in (dest / "blobs" / "sha256").iterdir()}
    args2 = {"MARK": unique("ocidir-again")}
    _, state2 = create(provider, inputs_for(d, args2, tags=[f"{repo}:v1"], push=False,
                                            exports=[{"oci": {"dest": str(dest), "tar": False}}]))
    [m2] = json.loads((dest / "index.json").read_text())["manifests"]
    assert m2["digest"] != m["digest"]
    assert blobs < {b.name for b in (dest / "blobs" / "sha256").iterdir()}
    assert layout_platforms(dest) == {"linux/amd64", "linux/arm64"}
    provider.delete(IMAGE, id, state2)
    assert (dest / "index.json").exists(), "delete leaves exported files in place"


def test_oci_layout_directory_with_push_and_a_tarball_in_one_build(provider, world, tmp_path):
    """The layout directory next to an OCI tarball and a push, in the exports' order in the
    state; the layout names the same index as the tarball (BuildKit merges the exporters'
    answers: the layout's own descriptor must be the one its index.json names)."""
    d, args = ctx(tmp_path, world, unique("ocidir2"))
    layout, tar = tmp_path / "layout", tmp_path / "image.tar"
    repo = f"{world['PLAIN_REGISTRY']}/{unique('ocidirpush')}"
    _, state = create(provider, inputs_for(d, args, tags=[f"{repo}:v1"], exports=[
        {"oci": {"dest": str(tar)}}, {"oci": {"dest": str(layout), "tar": False}}]))
    assert [(e["dest"], "digest" in e) for e in state["exported"]] == [
        (str(tar), True), (str(layout), False)]
    assert layout_platforms(layout) == {"linux/amd64", "linux/arm64"}
    named = json.loads((layout / "index.json").read_text())["manifests"][0]["digest"]
    with tarfile.open(tar) as t:
        in_tar = json.load(t.extractfile("index.json"))["manifests"][0]["digest"]
    assert named == in_tar
    raw = run("skopeo", "inspect", "--raw", f"oci:{layout}").stdout.encode()
    assert named == "sha256:" + hashlib.sha256(raw).hexdigest()


def test_oci_layout_directory_on_the_standalone_buildkitd(engine, provider_env, world,
                                                          tmp_path):
    read = lambda k: open(world[k]).read()
    p = Provider(engine, env=provider_env)
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                     "builder": world["BUILDKITD_ADDR"],
                     "builderTls": {"caCert": read("BUILDKITD_CA_CERT"),
                                    "cert": read("BUILDKITD_CLIENT_CERT"),
                                    "key": secret(read("BUILDKITD_CLIENT_KEY")),
                                    "serverName": world["BUILDKITD_SERVER_NAME"]}})
        d, args = ctx(tmp_path, world, unique("bkdir"))
        dest = tmp_path / "layout"
        _, state = create(p, inputs_for(d, args, push=False,
                                        exports=[{"oci": {"dest": str(dest), "tar": False}}]))
        assert state["exported"] == [{"type": "oci", "dest": str(dest)}]
        assert layout_platforms(dest) == {"linux/amd64", "linux/arm64"}
        [m] = json.loads((dest / "index.json").read_text())["manifests"]
        assert m["annotations"]["org.opencontainers.image.ref.name"] == "latest"
    finally:
        p.close()


def test_tar_and_local_exports_hold_the_files(provider, world, tmp_path):
    mark = unique("fs")
    d, args = ctx(tmp_path, world, mark)
    tar_dest, local_dest = tmp_path / "fs.tar", tmp_path / "fs"
    id, state = create(provider, inputs_for(d, args, push=False, exports=[
        {"tar": {"dest": str(tar_dest)}},
        {"local": {"dest": str(local_dest)}},
    ]))
    with tarfile.open(tar_dest) as t:
        names = set(t.getnames())
        assert {"linux_amd64/mark", "linux_arm64/mark", "linux_arm64/built-on"} <= names
        assert t.extractfile("linux_arm64/built-on").read() == b"aarch64\n"
        assert t.extractfile("linux_amd64/mark").read() == f"{mark}\n".encode()
    assert (local_dest / "linux_amd64" / "built-on").read_text() == "x86_64\n"
    assert (local_dest / "linux_arm64" / "built-on").read_text() == "aarch64\n"
    assert (local_dest / "linux_arm64" / "mark").read_text() == f"{mark}\n"
    assert (local_dest / "linux_arm64" / "bin" / "busybox").stat().st_mode & 0o111
    kinds = [(e["type"], e["dest"], "digest" in e) for e in state["exported"]]
    assert kinds == [("tar", str(tar_dest), True), ("local", str(local_dest), False)]
    assert state["exported"][0]["digest"] == "sha256:" + hashlib.sha256(
        tar_dest.read_bytes()).hexdigest()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx", "fs", "fs.tar"]
    # An update writes over the old export; a tree's other entries stay.
    (local_dest / "mine").write_text("kept")
    state = provider.update(IMAGE, id, state, inputs_for(d, {"MARK": "two"}, push=False,
                                                            exports=state["exports"]))
    assert (local_dest / "linux_amd64" / "mark").read_text() == "two\n"
    assert (local_dest / "mine").read_text() == "kept"


def test_docker_tarball_loads_under_the_tags(provider, world, tmp_path):
    mark = unique("docker")
    d, args = ctx(tmp_path, world, mark)
    dest = tmp_path / "d.tar"
    tag = f"{world['PLAIN_REGISTRY']}/{unique('dock')}:v1"
    _, state = create(provider, inputs_for(d, args, platforms=["linux/arm64"], push=False,
                                           tags=[tag], exports=[{"docker": {"dest": str(dest)}}]))
    with tarfile.open(dest) as t:
        manifest = json.load(t.extractfile("manifest.json"))
    assert manifest[0]["RepoTags"] == [tag]
    assert state["exported"] == [{"type": "docker", "dest": str(dest), "digest": "sha256:"
                                  + hashlib.sha256(dest.read_bytes()).hexdigest()}]
    try:
        run("docker", "load", "-i", str(dest))
        out = run("docker", "run", "--rm", "--network", "none", "--platform", "linux/arm64",
                  tag, "cat", "/mark").stdout.strip()
        assert out == mark
    finally:
        run("docker", "image", "rm", "-f", tag, check=False)


def test_cacheonly_exports_the_cache_and_no_image(provider, world, tmp_path, plain_log):
    d, args = ctx(tmp_path, world, unique("cacheonly"))
    name = unique("conly")
    cache = f"{world['PLAIN_REGISTRY']}/{name}:cache"
    plain_log.mark()
    _, state = create(provider, inputs_for(
        d, args, platforms=["linux/amd64"], push=False,
        tags=[f"{world['PLAIN_REGISTRY']}/{name}:v1"],
        cacheTo=[f"type=registry,ref={cache},mode=max"], exports=[{"cacheonly": {}}]))
    assert state["exported"] == [] and state["digest"] == ""
    run("skopeo", "inspect", "--tls-verify=false", "--raw", f"docker://{cache}")
    gone = run("skopeo", "inspect", "--tls-verify=false", "--raw",
               f"docker://{world['PLAIN_REGISTRY']}/{name}:v1", check=False)
    assert gone.returncode != 0
    assert not [w for w in plain_log.writes() if f"{name}/manifests/v1" in w]


def test_preview_exports_nothing(provider, world, tmp_path, plain_log):
    d, args = ctx(tmp_path, world, unique("preview"))
    dest, local = tmp_path / "p.tar", tmp_path / "p"
    name = unique("prev")
    tag = f"{world['PLAIN_REGISTRY']}/{name}:v1"
    inputs = inputs_for(d, args, tags=[tag], load=True, exports=[
        {"oci": {"dest": str(dest)}}, {"local": {"dest": str(local)}}])
    checked, failures = provider.check(IMAGE, inputs)
    assert failures == []
    plain_log.mark()
    _, preview = provider.create(IMAGE, checked, preview=True)
    assert preview["exported"] == UNKNOWN
    assert not dest.exists() and not local.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ctx"]
    assert run("docker", "image", "inspect", tag, check=False).returncode != 0
    # (Other tests may write to the shared registry meanwhile: only this image's name counts.)
    assert [w for w in plain_log.writes() if name in w] == []


def test_a_failed_build_leaves_no_file(provider, world, tmp_path):
    (tmp_path / "Dockerfile").write_text(f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN exit 3\n")
    dest = tmp_path / "out.tar"
    checked, failures = provider.check(IMAGE, {
        "context": {"location": str(tmp_path)}, "push": False,
        "exports": [{"oci": {"dest": str(dest)}}, {"local": {"dest": str(tmp_path / "l")}}]})
    assert failures == []
    with pytest.raises(Exception):
        provider.create(IMAGE, checked)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["Dockerfile"]


def test_changed_exports_or_load_is_an_update(provider, world, tmp_path):
    (tmp_path / "Dockerfile").write_text("FROM scratch\n")
    olds = {"context": {"location": str(tmp_path)}, "push": False,
            "exports": [{"tar": {"dest": str(tmp_path / "a.tar")}}]}
    for news in ({**olds, "exports": [{"tar": {"dest": str(tmp_path / "b.tar")}}]},
                 {**olds, "load": True, "tags": ["127.0.0.1:5000/a:1"]}):
        d = provider.diff(IMAGE, "x", olds, news)
        assert d.changes == d.DIFF_SOME and not d.replaces, d
        assert set(d.diffs) & {"exports", "load", "tags"}, d


def test_file_exports_and_load_on_the_standalone_buildkitd(engine, provider_env, world, tmp_path):
    """BuildKit v0.34 standalone: file exports stream back the same way; `load` comes back as
    an OCI archive the provider's Docker Engine loads (both platforms)."""
    read = lambda k: open(world[k]).read()
    p = Provider(engine, env=provider_env)
    tag = f"{world['PLAIN_REGISTRY']}/{unique('bkload')}:v1"
    try:
        p.handshake()
        p.configure({"registries": [{"address": world["PLAIN_REGISTRY"], "insecure": True}],
                     "builder": world["BUILDKITD_ADDR"],
                     "builderTls": {"caCert": read("BUILDKITD_CA_CERT"),
                                    "cert": read("BUILDKITD_CLIENT_CERT"),
                                    "key": secret(read("BUILDKITD_CLIENT_KEY")),
                                    "serverName": world["BUILDKITD_SERVER_NAME"]}})
        mark = unique("bk")
        d, args = ctx(tmp_path, world, mark)
        dest, local = tmp_path / "bk.tar", tmp_path / "bk"
        _, state = create(p, inputs_for(d, args, tags=[tag], push=False, load=True, exports=[
            {"oci": {"dest": str(dest)}}, {"local": {"dest": str(local)}}]))
        assert [e["dest"] for e in state["exported"]] == [str(dest), str(local)]
        raw = json.loads(run("skopeo", "inspect", "--raw", f"oci-archive:{dest}").stdout)
        assert len([m for m in raw["manifests"] if m["platform"]["os"] == "linux"]) == 2
        assert (local / "linux_arm64" / "built-on").read_text() == "aarch64\n"
        assert sorted(x.name for x in tmp_path.iterdir()) == ["bk", "bk.tar", "ctx"]
        for platform, arch in (("linux/amd64", "x86_64"), ("linux/arm64", "aarch64")):
            out = run("docker", "run", "--rm", "--network", "none", "--platform", platform, tag,
                      "sh", "-c", "uname -m; cat /mark").stdout.split()
            assert out == [arch, mark], (platform, out)
        assert p.engine.saw("loading " + tag)
    finally:
        p.close()
        run("docker", "image", "rm", "-f", tag, check=False)


@pytest.mark.parametrize(
    "exports, extra, prop, words",
    [
        ([{}], {}, "exports[0]", "exactly one"),
        ([{"tar": {"dest": "/tmp/x.tar"}, "local": {"dest": "/tmp/x"}}], {}, "exports[0]",
         "tar, local are set"),
        ([{"oci": {"dest": ""}}], {}, "exports[0].oci.dest", "must not be empty"),
        ([{"docker": {"dest": "/nonexistent/dir/x.tar"}}], {}, "exports[0].docker.dest",
         "not an existing directory"),
        ([{"tar": {"dest": "/tmp"}}], {}, "exports[0].tar.dest", "is a directory"),
        ([{"local": {"dest": "/etc/hostname"}}], {}, "exports[0].local.dest", "not a directory"),
        ([{"tar": {"dest": "/tmp/same.tar"}}, {"oci": {"dest": "/tmp//same.tar"}}], {},
         "exports[1].oci.dest", "also written by exports[0]"),
        ([{"cacheonly": {}}], {"cacheTo": ["type=registry,ref=127.0.0.1:5000/c:x"]},
         "exports[0].cacheonly", "push: false"),
        ([{"cacheonly": {}}], {"push": False}, "exports[0].cacheonly", "without cacheTo"),
        ([{"cacheonly": {}}, {"tar": {"dest": "/tmp/t.tar"}}],
         {"push": False, "cacheTo": ["127.0.0.1:5000/c:x"]}, "exports[0].cacheonly",
         "cannot be combined"),
        ([{"oci": {"dest": "/tmp/o.tar", "compression": "zstd"}}], {}, "exports[0].oci",
         "unknown field"),
        ([{"zip": {"dest": "/tmp/o.zip"}}], {}, "exports[0]", "unknown field"),
        ([{"oci": {"dest": "/tmp/l1", "tar": False}}, {"oci": {"dest": "/tmp/l2", "tar": False}}],
         {}, "exports[1].oci.tar", "already writes an OCI layout directory"),
        ([{"oci": {"dest": "/etc/hostname", "tar": False}}], {}, "exports[0].oci.dest",
         "not a directory"),
        ([{"docker": {"dest": "/tmp/d.tar"}}], {"platforms": ["linux/amd64", "linux/arm64"]},
         "exports[0].docker", "one platform"),
        (None, {"load": True, "push": False}, "load", "needs tags"),
    ],
)
def test_bad_exports_are_check_failures(provider, exports, extra, prop, words):
    inputs = {"dockerfile": {"inline": "FROM scratch"}, "tags": ["127.0.0.1:5000/a:1"]}
    if exports is not None:
        inputs["exports"] = exports
    inputs.update(extra)
    if extra.get("load"):
        del inputs["tags"]
    _, failures = provider.check(IMAGE, inputs)
    assert any(p.startswith(prop) and words in r for p, r in failures), failures


def test_terraform_exports_blocks_apply_and_plan_clean(tmp_path, world):
    """Terraform: `exports` as blocks, their kinds blocks inside (`cacheonly {}` an empty one),
    the files are
    written on apply, `exported` is in the state, and a second plan has no changes."""
    from test_terraform import Terraform

    d = tmp_path / "tf-exports"
    (d / "app").mkdir(parents=True)
    (d / "app" / "Dockerfile").write_text(
        f"FROM {world['BASE_IMAGE_PLAIN']}\nRUN echo tf > /mark\n")
    (d / "main.tf").write_text(f"""
terraform {{
  required_providers {{
    multiarch = {{ source = "example.com/multiarch/multiarch" }}
  }}
}}

provider "multiarch" {{
  registries = [{{ address = "{world['PLAIN_REGISTRY']}", insecure = true }}]
}}

resource "multiarch_image" "app" {{
  context {{
    location = "{d / 'app'}"
  }}
  platforms = ["linux/amd64"]
  push      = false
  exports {{
    tar {{
      dest = "{d / 'fs.tar'}"
    }}
  }}
  exports {{
    local {{
      dest = "{d / 'fs'}"
    }}
  }}
}}

resource "multiarch_image" "cache" {{
  context {{
    location = "{d / 'app'}"
  }}
  platforms = ["linux/amd64"]
  push      = false
  cache_to  = ["type=registry,ref={world['PLAIN_REGISTRY']}/{unique('tfcache')}:c"]
  exports {{
    cacheonly {{}}
  }}
}}
""")
    tf = Terraform(d, world)
    code, plan = tf.plan()
    assert code == 2 and "multiarch_image.app will be created" in plan
    assert not (d / "fs.tar").exists(), "plan writes nothing"
    tf("apply", "-input=false", "-auto-approve")
    assert (d / "fs" / "mark").read_text() == "tf\n"
    with tarfile.open(d / "fs.tar") as t:
        assert t.extractfile("mark").read() == b"tf\n"
    exported = tf.state()["multiarch_image.app"]["exported"]
    assert [(e["type"], e["dest"]) for e in exported] == [("tar", str(d / "fs.tar")),
                                                          ("local", str(d / "fs"))]
    assert tf.plan()[0] == 0, "a second plan should say No changes"
    # One entry changes its kind: an in-place update, the other kind's value does not stick.
    main = (d / "main.tf").read_text()
    old = f'tar {{\n      dest = "{d / "fs.tar"}"'
    assert old in main
    (d / "main.tf").write_text(main.replace(old, f'oci {{\n      dest = "{d / "i.tar"}"'))
    code, plan = tf.plan()
    assert code == 2 and "updated in-place" in plan and "must be replaced" not in plan
    tf("apply", "-input=false", "-auto-approve")
    exported = tf.state()["multiarch_image.app"]["exported"]
    assert [e["type"] for e in exported] == ["oci", "local"]
    assert tf.state()["multiarch_image.app"]["exports"][0]["tar"] is None
    assert tf.state()["multiarch_image.cache"]["exports"] == [
        {"cacheonly": {}, "docker": None, "local": None, "oci": None, "tar": None}]
    run("skopeo", "inspect", "--raw", f"oci-archive:{d / 'i.tar'}")
    assert tf.plan()[0] == 0, "a second plan should say No changes"


def test_an_imported_image_with_exports_is_built_on_its_first_update(provider, world, tmp_path):
    """Adopting an imported image skips the build; with exports its first update builds, so
    the files exist afterwards."""
    from harness import skopeo_copy

    tag = f"{world['PLAIN_REGISTRY']}/{unique('imported-exports')}:v1"
    skopeo_copy(world["BASE_IMAGE_PLAIN"], tag, "--all")
    rid, props, _ = provider.read(IMAGE, tag)
    assert props["exported"] == []
    mark = unique("adopt")
    d, args = ctx(tmp_path, world, mark)
    dest = tmp_path / "fs.tar"
    news, failures = provider.check(IMAGE, inputs_for(d, args, tags=[tag],
                                                      exports=[{"tar": {"dest": str(dest)}}]))
    assert failures == []
    state = provider.update(IMAGE, rid, props, news)
    with tarfile.open(dest) as t:
        assert t.extractfile("linux_amd64/mark").read() == f"{mark}\n".encode()
    assert [e["dest"] for e in state["exported"]] == [str(dest)]
    provider.delete(IMAGE, rid, state)


def test_load_only_image_takes_a_local_name(provider, world, tmp_path):
    """`load: true, push: false` with `myapp:dev`, as `docker build --load -t` takes it: the
    image is in the Engine under that name; the same name with a push is refused by name."""
    mark = unique("local")
    d, args = ctx(tmp_path, world, mark)
    name = f"{unique('myapp')}:dev"
    inputs = inputs_for(d, args, tags=[name], push=False, load=True,
                        platforms=["linux/amd64"])
    id, state = create(provider, inputs)
    try:
        assert state["tags"] == [name] and state["digest"] == ""
        out = run("docker", "run", "--rm", "--network", "none", name, "cat", "/mark").stdout
        assert out.strip() == mark
        provider.delete(IMAGE, id, state)
        assert run("docker", "image", "inspect", name, check=False).returncode == 0
    finally:
        run("docker", "image", "rm", "-f", name, check=False)
    _, failures = provider.check(IMAGE, {**inputs, "push": True})
    assert [f[0] for f in failures] == ["tags[0]"]
    assert "does not name a registry host" in failures[0][1]
    assert "push: false" in failures[0][1]
