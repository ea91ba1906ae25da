use super::*;

fn docs_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs")
}

#[test]
fn checked_in_docs_are_current() {
    let mut stale = Vec::new();
    for (rel, text) in pages() {
        let on_disk = std::fs::read_to_string(docs_dir().join(&rel)).unwrap_or_default();
        if on_disk != text {
            stale.push(rel);
        }
    }
    assert!(
        stale.is_empty(),
        "docs are stale ({}): run `make docs` and commit them",
        stale.join(", ")
    );
}

/// Collects every schema item (resource, property, type, enum value) without a
/// description.
fn undocumented(schema: &Json) -> Vec<String> {
    let mut missing = Vec::new();
    let described = |v: &Json| {
        v.get("description")
            .and_then(Json::as_str)
            .is_some_and(|d| !d.trim().is_empty())
    };
    let mut props = |what: &str, p: &Json| {
        for (k, v) in p.as_object().into_iter().flatten() {
            if !described(v) {
                missing.push(format!("{what}.{k}"));
            }
        }
    };
    props("config", &schema["config"]["variables"]);
    props("provider", &schema["provider"]["inputProperties"]);
    for (token, r) in schema["resources"].as_object().into_iter().flatten() {
        props(&format!("{token} input"), &r["inputProperties"]);
        props(&format!("{token} output"), &r["properties"]);
    }
    for (token, f) in schema["functions"].as_object().into_iter().flatten() {
        props(&format!("{token} input"), &f["inputs"]["properties"]);
        props(&format!("{token} output"), &f["outputs"]["properties"]);
    }
    for (token, t) in schema["types"].as_object().into_iter().flatten() {
        props(token, &t["properties"]);
    }
    let described_items = schema["resources"]
        .as_object()
        .into_iter()
        .flatten()
        .chain(schema["functions"].as_object().into_iter().flatten());
    for (token, r) in described_items {
        if !described(r) {
            missing.push(token.clone());
        }
    }
    for (token, t) in schema["types"].as_object().into_iter().flatten() {
        if !described(t) {
            missing.push(token.clone());
        }
        for v in t["enum"].as_array().into_iter().flatten() {
            if !described(v) {
                missing.push(format!("{token} value {}", v["value"]));
            }
        }
    }
    missing
}

#[test]
fn every_schema_item_has_a_description() {
    let missing = undocumented(&package_schema());
    assert!(
        missing.is_empty(),
        "undocumented schema items (add doc comments on the Rust types): {missing:?}"
    );
}

#[test]
fn the_description_check_can_fail() {
    let mut s = package_schema();
    s["types"]["multiarch:index:NetworkMode"]["enum"][0]
        .as_object_mut()
        .unwrap()
        .remove("description");
    s["resources"]["multiarch:index:Image"]["inputProperties"]["tags"]
        .as_object_mut()
        .unwrap()
        .remove("description");
    let missing = undocumented(&s);
    assert_eq!(missing.len(), 2, "{missing:?}");
}

#[test]
fn readme_is_self_contained_and_points_at_the_docs() {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../README.md"))
            .unwrap();
    for bad in ["../", "shared/", "](http"] {
        assert!(
            !readme.contains(bad),
            "README.md points outside the repository ({bad:?})"
        );
    }
    for page in [
        "docs/_index.md",
        "docs/index.md",
        "docs/migration.md",
        "docs/development.md",
        "docs/requirements-and-troubleshooting.md",
    ] {
        assert!(readme.contains(page), "README.md does not link {page}");
    }
    // The quick start is the image-ecr example, word for word, in every language.
    let e = examples::example("image-ecr");
    for (lang, text) in [
        ("typescript", e.typescript),
        ("python", e.python),
        ("go", e.go),
        ("yaml", e.yaml),
        ("terraform", e.hcl),
    ] {
        assert!(
            readme.contains(&format!("```{lang}\n{text}```")),
            "README.md's {lang} quick start is not docs/examples/image-ecr's"
        );
    }
}

#[test]
fn terraform_pages_speak_terraform() {
    let pages: std::collections::BTreeMap<_, _> = pages().into_iter().collect();
    for page in [
        "index.md",
        "resources/image.md",
        "resources/manifest_list.md",
    ] {
        let text = &pages[page];
        for pulumi in [
            "keepRemotely",
            "builderTls",
            "assumeRole",
            "before `up`",
            "(Pulumi)",
            "Pulumi",
            "{\"",
        ] {
            assert!(!text.contains(pulumi), "{page} says {pulumi:?}");
        }
    }
    let image = &pages["resources/image.md"];
    assert!(image.contains("Required when `push` is true (the default)."));
    assert!(image.contains("Required when `context` is omitted"));
    assert!(image.contains("- `exported` (List of Object)"));
    let pulumi = &pages["_index.md"];
    assert!(pulumi.contains("Required when `push` is true (the default)."));
    assert!(pulumi.contains("| `exported` |"));
}

#[test]
fn pages_hold_what_registries_expect() {
    let pages: std::collections::BTreeMap<_, _> = pages().into_iter().collect();
    let image = &pages["resources/image.md"];
    for s in [
        "# multiarch_image (Resource)",
        "## Example Usage",
        "## Schema",
        "### Optional",
        "### Read-Only",
        "- `platforms` (Set of String)",
        "- `push` (Boolean) Push the result to `tags` (never during plan). This is the only \
             way to push: `exports` writes files and directories, `load` the Engine's image \
             store. Default: `true`.",
        "- `secrets` (Map of String, Sensitive)",
        "- `context` (Block, Optional)",
        "### Nested Schema for `context`",
        "### Nested Schema for `manifests`",
        "Possible values: `default`",
        "## Import",
        "terraform import multiarch_image.app",
        "  to = multiarch_image.app\n  identity = {",
        "builds for its own platform only",
    ] {
        assert!(image.contains(s), "image.md lacks {s:?}");
    }
    let ml = &pages["resources/manifest_list.md"];
    for s in [
        "### Required",
        "- `sources` (Set of String)",
        "- `tags` (Set of String)",
        "terraform import multiarch_manifest_list.app10",
    ] {
        assert!(ml.contains(s), "manifest_list.md lacks {s:?}");
    }
    let index = &pages["index.md"];
    for s in [
        "ecr:GetAuthorizationToken",
        "ecr:BatchCheckLayerAvailability",
        "ecr:InitiateLayerUpload",
        "ecr:UploadLayerPart",
        "ecr:CompleteLayerUpload",
        "ecr:PutImage",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchDeleteImage",
        "- `registries` (Attributes List)",
        "### Nested Schema for `registries`",
        "- `password` (String, Sensitive)",
        "filesystem_mirror",
        "registry.opentofu.org",
        "Terraform 1.0.3 or later, or OpenTofu",
        "required_version = \">= 1.0.3\"",
    ] {
        assert!(index.contains(s), "index.md lacks {s:?}");
    }
    let install = &pages["installation-configuration.md"];
    assert!(install.contains("pulumi plugin install resource multiarch"));
    assert!(install.contains(&release_url()));
    assert!(install.contains("| `multiarch:registries` |"));
    assert!(pages["_index.md"].contains("### multiarch:index:ManifestList"));
    let data = &pages["data-sources/image.md"];
    for s in [
        "# multiarch_image (Data Source)",
        "data \"multiarch_image\" \"app\"",
        "- `ref` (String)",
        "- `pinned_ref` (String)",
        "### Nested Schema for `manifests`",
    ] {
        assert!(data.contains(s), "data-sources/image.md lacks {s:?}");
    }
    assert!(pages["_index.md"].contains("### multiarch:index:getImage"));
}
