use super::*;
use crate::buildkit::DockerfileSource;
use std::path::Path;

fn spec(dir: &Path) -> BuildSpec {
    BuildSpec {
        context_dir: dir.to_path_buf(),
        dockerfile: DockerfileSource::Inline("FROM scratch\n".into()),
        platforms: vec!["linux/amd64".into(), "linux/arm64".into()],
        cache_to: vec![super::super::CacheEntry::parse(
            "type=registry,ref=127.0.0.1:5000/c:x,mode=max",
        )
        .unwrap()],
        cache_from: vec![super::super::CacheEntry::parse("127.0.0.1:5000/c:x").unwrap()],
        network: Some(NetworkMode::None),
        add_hosts: vec![
            ("db.internal".into(), [10, 0, 0, 5].into()),
            ("v6.internal".into(), "fd00::1".parse().unwrap()),
        ],
        ..Default::default()
    }
}

#[test]
fn build_only_has_no_exporter_and_no_cache_export() {
    let dir = std::env::temp_dir();
    let p = prepare(&spec(&dir), &Output::BuildOnly, "s", "r").unwrap();
    assert!(p.request.exporter_deprecated.is_empty());
    assert!(p.request.exporter_attrs_deprecated.is_empty());
    assert!(p.request.exporters.is_empty());
    let cache = p.request.cache.unwrap();
    assert!(cache.exports.is_empty());
    assert!(cache.export_ref_deprecated.is_empty());
    assert_eq!(cache.imports.len(), 1);
    assert_eq!(
        p.request.frontend_attrs["platform"],
        "linux/amd64,linux/arm64"
    );
    assert_eq!(p.request.frontend_attrs["force-network-mode"], "none");
    assert_eq!(
        p.request.frontend_attrs["add-hosts"],
        "db.internal=10.0.0.5,v6.internal=fd00::1"
    );
    assert!(!p.request.frontend_attrs.contains_key("attest:provenance"));
    assert!(p.request.frontend_attrs["cache-imports"].contains("\"Type\":\"registry\""));
}

#[test]
fn sbom_uses_the_default_or_the_given_generator() {
    let dir = std::env::temp_dir();
    let attrs = |sbom, generator: Option<&str>| {
        let spec = BuildSpec {
            sbom,
            sbom_generator: generator.map(str::to_owned),
            ..spec(&dir)
        };
        let p = prepare(&spec, &Output::BuildOnly, "s", "r").unwrap();
        p.request.frontend_attrs.get("attest:sbom").cloned()
    };
    assert_eq!(attrs(false, None), None);
    assert_eq!(attrs(true, None), Some(String::new()));
    assert_eq!(
        attrs(true, Some("r.example/scanner:1")),
        Some("generator=r.example/scanner:1".into())
    );
}

#[test]
fn push_sets_image_exporter() {
    let dir = std::env::temp_dir();
    let out = Output::Push {
        tags: vec!["r/a:1".into(), "r/a:2".into()],
    };
    let p = prepare(&spec(&dir), &out, "s", "r").unwrap();
    assert_eq!(p.request.exporter_deprecated, "image");
    assert_eq!(p.request.exporter_attrs_deprecated["name"], "r/a:1,r/a:2");
    assert_eq!(p.request.exporter_attrs_deprecated["push"], "true");
    // pushed only: not kept in the Engine's image store
    assert_eq!(p.request.exporter_attrs_deprecated["store"], "false");
    let cache = p.request.cache.unwrap();
    assert_eq!(cache.exports[0].attrs["mode"], "max");
}

#[test]
fn push_by_digest_sets_the_exporter() {
    let dir = std::env::temp_dir();
    assert!(prepare(&spec(&dir), &Output::Push { tags: vec![] }, "s", "r").is_err());
    let out = Output::PushByDigest {
        repository: "r/a".into(),
    };
    let p = prepare(&spec(&dir), &out, "s", "r").unwrap();
    assert_eq!(p.request.exporter_deprecated, "image");
    assert_eq!(p.request.exporter_attrs_deprecated["name"], "r/a");
    assert_eq!(
        p.request.exporter_attrs_deprecated["push-by-digest"],
        "true"
    );
    assert_eq!(p.request.exporter_attrs_deprecated["push"], "true");
}

#[test]
fn exports_use_the_exporters_list_one_entry_each() {
    let dir = std::env::temp_dir();
    let x = Exports {
        push: vec!["r/a:1".into()],
        load: vec!["r/a:1".into(), "r/a:local".into()],
        names: vec!["r/a:1".into()],
        files: vec![
            FileExport::Oci {
                dest: "/o/i.tar".into(),
                tar: true,
            },
            FileExport::Docker {
                dest: "/o/d.tar".into(),
            },
            FileExport::Tar {
                dest: "/o/fs.tar".into(),
            },
            FileExport::Local {
                dest: "/o/fs".into(),
            },
        ],
    };
    let p = prepare(&spec(&dir), &Output::Export(x), "s", "r").unwrap();
    let r = &p.request;
    assert!(r.exporter_deprecated.is_empty() && r.exporter_attrs_deprecated.is_empty());
    let types: Vec<&str> = r.exporters.iter().map(|e| e.r#type.as_str()).collect();
    assert_eq!(types, ["image", "oci", "docker", "tar", "local"]);
    let image = &r.exporters[0].attrs;
    assert_eq!(image["name"], "r/a:1,r/a:local");
    assert_eq!(image["push"], "true");
    assert_eq!(image["store"], "true", "loaded: kept in the image store");
    assert_eq!(r.exporters[1].attrs["tar"], "true");
    assert_eq!(r.exporters[1].attrs["name"], "r/a:1");
    assert_eq!(r.exporters[2].attrs["name"], "r/a:1");
    assert!(r.exporters[3].attrs.is_empty() && r.exporters[4].attrs.is_empty());
    // Each file export is found by its index in the list, as BuildKit names it.
    let targets: Vec<(u32, TargetKind, &str)> = p
        .targets
        .iter()
        .map(|(i, t)| (*i, t.kind.clone(), t.dest.to_str().unwrap()))
        .collect();
    assert_eq!(
        targets,
        [
            (1, TargetKind::File, "/o/i.tar"),
            (2, TargetKind::File, "/o/d.tar"),
            (3, TargetKind::File, "/o/fs.tar"),
            (4, TargetKind::Dir, "/o/fs"),
        ]
    );
    assert_eq!(r.cache.as_ref().unwrap().exports[0].attrs["mode"], "max");
}

#[test]
fn the_oci_layout_is_the_last_exporter_and_its_store_is_served() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    let cache = dir.path().join("cache");
    let x = Exports {
        push: vec!["r/a:1".into()],
        names: vec!["r/a:1".into()],
        files: vec![
            FileExport::Oci {
                dest: layout.clone(),
                tar: false,
            },
            FileExport::Tar {
                dest: "/o/fs.tar".into(),
            },
        ],
        ..Default::default()
    };
    let spec = BuildSpec {
        cache_to: vec![super::super::CacheEntry::parse(&format!(
            "type=local,dest={}",
            cache.display()
        ))
        .unwrap()],
        cache_from: vec![super::super::CacheEntry::parse(&format!(
            "type=local,src={}",
            dir.path().join("empty").display()
        ))
        .unwrap()],
        ..spec(dir.path())
    };
    let p = prepare(&spec, &Output::Export(x.clone()), "s", "r").unwrap();
    let types: Vec<&str> = p
        .request
        .exporters
        .iter()
        .map(|e| e.r#type.as_str())
        .collect();
    assert_eq!(types, ["image", "tar", "oci"]);
    assert_eq!(p.request.exporters[2].attrs["tar"], "false");
    assert_eq!(p.layouts, BTreeMap::from([(2, layout.clone())]));
    assert_eq!(
        p.file_order,
        [2, 1],
        "the exports' order, by exporter index"
    );
    assert_eq!(p.targets.keys().copied().collect::<Vec<_>>(), [1]);
    let ids: Vec<&str> = p.stores.keys().map(String::as_str).collect();
    let cache_id = local_store_id(cache.to_str().unwrap());
    assert_eq!(ids, ["export", cache_id.as_str()]);
    assert!(layout.is_dir() && cache.is_dir());
    assert_eq!(p.cache_indexes[0].tag, "latest");
    assert_eq!(p.cache_indexes[0].property, "cacheTo[0]");
    // Nothing to import yet: left out with a warning, not sent.
    let cache_opts = p.request.cache.unwrap();
    assert!(cache_opts.imports.is_empty());
    assert!(
        p.warnings[0].starts_with("cacheFrom[0]: "),
        "{:?}",
        p.warnings
    );
    // Two layout directories in one build are refused.
    let mut two = x;
    two.files.push(FileExport::Oci {
        dest: dir.path().join("l2"),
        tar: false,
    });
    assert!(prepare(&spec, &Output::Export(two), "s", "r").is_err());
}

#[test]
fn load_only_push_only_files_only_and_cache_only() {
    let dir = std::env::temp_dir();
    let prep = |x: Exports| prepare(&spec(&dir), &Output::Export(x), "s", "r").unwrap();
    let load = prep(Exports {
        load: vec!["r/a:1".into()],
        ..Default::default()
    });
    let attrs = &load.request.exporters[0].attrs;
    assert_eq!(attrs["name"], "r/a:1");
    assert_eq!(attrs["store"], "true");
    assert!(!attrs.contains_key("push"), "loaded, never pushed");
    let push = prep(Exports {
        push: vec!["r/a:1".into()],
        ..Default::default()
    });
    assert_eq!(push.request.exporters[0].attrs["store"], "false");
    let files = prep(Exports {
        files: vec![FileExport::Tar {
            dest: "/o/t.tar".into(),
        }],
        ..Default::default()
    });
    assert_eq!(files.request.exporters.len(), 1);
    assert_eq!(files.request.exporters[0].r#type, "tar");
    assert_eq!(files.targets.keys().copied().collect::<Vec<_>>(), [0]);
    // Cache only: no exporter at all, the cache exports still run.
    let cache = prep(Exports::default());
    assert!(cache.request.exporters.is_empty());
    assert!(cache.request.exporter_deprecated.is_empty());
    assert!(cache.targets.is_empty());
    assert_eq!(cache.request.cache.unwrap().exports.len(), 1);
    // Unusable names are refused, not sent.
    let bad = prepare(
        &spec(&dir),
        &Output::Export(Exports {
            load: vec!["r/a:1,x".into()],
            ..Default::default()
        }),
        "s",
        "r",
    );
    assert!(bad.is_err());
    let no_dest = prepare(
        &spec(&dir),
        &Output::Export(Exports {
            files: vec![FileExport::Local { dest: "".into() }],
            ..Default::default()
        }),
        "s",
        "r",
    );
    assert!(no_dest.is_err());
}
