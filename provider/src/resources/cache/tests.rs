use super::*;
use serde_json::json;

fn failures<E: CacheItem>(items: &[E]) -> Vec<Failure> {
    convert(items, &|_| None).err().unwrap_or_default()
}

fn from(v: Json) -> CacheFromEntry {
    serde_json::from_value(v).unwrap()
}

fn to(v: Json) -> CacheToEntry {
    serde_json::from_value(v).unwrap()
}

/// An entry, the BuildKit type it becomes and its attributes.
type Case<E> = (E, &'static str, Vec<(&'static str, &'static str)>);

fn none(_: &str) -> Option<String> {
    None
}

fn attrs(e: &CacheEntry) -> Vec<(&str, &str)> {
    e.attrs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect()
}

#[test]
fn strings_stay_strings() {
    let e = to(json!("type=registry,ref=r.example/app:cache,mode=max"));
    assert_eq!(
        e,
        CacheToEntry::Raw("type=registry,ref=r.example/app:cache,mode=max".into())
    );
    assert_eq!(
        serde_json::to_value(&e).unwrap(),
        json!("type=registry,ref=r.example/app:cache,mode=max")
    );
    let entry = to_entry(&e, &none).unwrap();
    assert_eq!(
        attrs(&entry),
        [("mode", "max"), ("ref", "r.example/app:cache")]
    );
}

#[test]
fn every_variant_becomes_one_buildkit_entry() {
    let cases: Vec<Case<CacheToEntry>> = vec![
        (
            to(
                json!({"registry": {"ref": "r.example/app:cache", "mode": "max",
                    "imageManifest": true, "ociMediaTypes": false, "ignoreError": true}}),
            ),
            "registry",
            vec![
                ("ignore-error", "true"),
                ("image-manifest", "true"),
                ("mode", "max"),
                ("oci-mediatypes", "false"),
                ("ref", "r.example/app:cache"),
            ],
        ),
        (
            to(json!({"local": {"dest": "/tmp/c", "mode": "min"}})),
            "local",
            vec![("dest", "/tmp/c"), ("mode", "min")],
        ),
        (to(json!({"inline": {}})), "inline", vec![]),
        (
            to(json!({"gha": {"scope": "app", "url": "https://cache.example/", "mode": "max"}})),
            "gha",
            vec![
                ("mode", "max"),
                ("scope", "app"),
                ("url", "https://cache.example/"),
            ],
        ),
        (
            to(
                json!({"s3": {"bucket": "b", "region": "eu-west-1", "name": "app",
                    "prefix": "p/", "endpointUrl": "http://127.0.0.1:9000", "usePathStyle": true,
                    "accessKeyId": "AKIA", "mode": "max"}}),
            ),
            "s3",
            vec![
                ("access_key_id", "AKIA"),
                ("bucket", "b"),
                ("endpoint_url", "http://127.0.0.1:9000"),
                ("mode", "max"),
                ("name", "app"),
                ("prefix", "p/"),
                ("region", "eu-west-1"),
                ("use_path_style", "true"),
            ],
        ),
        (to(json!({"raw": "type=inline"})), "inline", vec![]),
    ];
    for (item, ty, want) in cases {
        let e = to_entry(&item, &none).unwrap();
        assert_eq!(e.ty, ty, "{item:?}");
        assert_eq!(attrs(&e), want, "{item:?}");
    }
    let imports: Vec<Case<CacheFromEntry>> = vec![
        (
            from(json!({"registry": {"ref": "r.example/app:cache"}})),
            "registry",
            vec![("ref", "r.example/app:cache")],
        ),
        (
            from(json!({"local": {"src": "/tmp/c"}})),
            "local",
            vec![("src", "/tmp/c")],
        ),
        (
            from(json!({"s3": {"bucket": "b", "region": "r"}})),
            "s3",
            vec![("bucket", "b"), ("region", "r")],
        ),
        (
            from(json!("r.example/app:cache")),
            "registry",
            vec![("ref", "r.example/app:cache")],
        ),
    ];
    for (item, ty, want) in imports {
        let e = to_entry(&item, &none).unwrap();
        assert_eq!(e.ty, ty, "{item:?}");
        assert_eq!(attrs(&e), want, "{item:?}");
    }
}

#[test]
fn credentials_are_secret_and_gha_defaults_come_from_the_environment() {
    let item = to(json!({"s3": {"bucket": "b", "region": "r",
            "secretAccessKey": "s3-sekrit", "sessionToken": "s3-tok"}}));
    let e = to_entry(&item, &none).unwrap();
    assert!(e.get("secret_access_key").is_none());
    assert!(!format!("{e:?}{item:?}").contains("s3-sekrit"));
    let p = e.to_proto();
    assert_eq!(p.attrs["secret_access_key"], "s3-sekrit");
    assert_eq!(p.attrs["session_token"], "s3-tok");
    let env = |k: &str| match k {
        "ACTIONS_CACHE_URL" => Some("https://env.example/".to_owned()),
        "ACTIONS_RUNTIME_TOKEN" => Some("env-token".to_owned()),
        _ => None,
    };
    let e = to_entry(&to(json!({"gha": {}})), &env).unwrap();
    let p = e.to_proto();
    assert_eq!(p.attrs["url"], "https://env.example/");
    assert_eq!(p.attrs["token"], "env-token");
    let e = to_entry(&to(json!({"gha": {"token": "mine"}})), &env).unwrap();
    assert_eq!(e.to_proto().attrs["token"], "mine");
    // Serializing a typed secret outside the wire encoders fails instead of leaking.
    assert!(serde_json::to_string(&item).is_err());
}

#[test]
fn ecr_defaults_apply_to_typed_registry_exports_unless_set() {
    let ecr = "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:cache";
    let e = to_entry(&to(json!({"registry": {"ref": ecr}})), &none).unwrap();
    let p = crate::buildkit::CacheEntry::with_ecr_defaults(e).to_proto();
    assert_eq!(p.attrs["image-manifest"], "true");
    assert_eq!(p.attrs["oci-mediatypes"], "true");
    let e = to_entry(
        &to(json!({"registry": {"ref": ecr, "imageManifest": false}})),
        &none,
    )
    .unwrap();
    let p = e.with_ecr_defaults().to_proto();
    assert_eq!(p.attrs["image-manifest"], "false", "set by the user: kept");
    assert_eq!(p.attrs["oci-mediatypes"], "true");
}

#[test]
fn typed_registry_entries_split_per_node() {
    let e = to_entry(
        &to(json!({"registry": {"ref": "127.0.0.1:5000/app:cache", "mode": "max"}})),
        &none,
    )
    .unwrap();
    let s = e.split("linux-arm64");
    assert_eq!(s.get("ref"), Some("127.0.0.1:5000/app:cache-linux-arm64"));
    assert_eq!(s.get("mode"), Some("max"));
    let untagged = to_entry(
        &from(json!({"registry": {"ref": "127.0.0.1:5000/app"}})),
        &none,
    )
    .unwrap()
    .split("linux-amd64");
    assert_eq!(
        untagged.get("ref"),
        Some("127.0.0.1:5000/app:cache-linux-amd64")
    );
    let local = to_entry(&to(json!({"local": {"dest": "/c"}})), &none).unwrap();
    assert_eq!(
        local.split("linux-amd64").get("tag"),
        Some("latest-linux-amd64")
    );
}

#[test]
fn check_names_the_property() {
    let to_failures = |v: Json| -> Vec<(String, String)> {
        failures(&[to(json!("r.example/a:c")), to(v)])
            .into_iter()
            .map(|f| (f.property, f.reason))
            .collect()
    };
    let from_failures = |v: Json| -> Vec<(String, String)> {
        failures(&[from(v)])
            .into_iter()
            .map(|f| (f.property, f.reason))
            .collect()
    };
    let first = |v: Vec<(String, String)>| v.into_iter().next().unwrap();
    let (p, r) = first(to_failures(json!({"registry": {"ref": "not a ref"}})));
    assert_eq!(p, "cacheTo[1].registry.ref");
    assert!(r.contains("not a valid reference"), "{r}");
    let (p, r) = first(to_failures(json!({})));
    assert_eq!(p, "cacheTo[1]");
    assert_eq!(
        r,
        "set exactly one of registry, local, inline, gha, s3, raw"
    );
    let (p, _) = first(to_failures(json!({"inline": {}, "raw": "type=inline"})));
    assert_eq!(p, "cacheTo[1]");
    let (p, r) = first(from_failures(json!({"inline": {}})));
    assert_eq!(p, "cacheFrom[0].inline");
    assert!(r.contains("inline is a cache export only"), "{r}");
    let (p, r) = first(from_failures(json!({})));
    assert_eq!(
        (p.as_str(), r.as_str()),
        (
            "cacheFrom[0]",
            "set exactly one of registry, local, gha, s3, raw"
        )
    );
    let (p, r) = first(to_failures(json!({"local": {"dest": " "}})));
    assert_eq!(p, "cacheTo[1].local.dest");
    assert!(r.contains("a directory is required"), "{r}");
    // Valid local entries pass, string or typed; a file where the directory goes fails.
    assert!(to_failures(json!({"local": {"dest": "/c"}})).is_empty());
    assert!(from_failures(json!("type=local,src=/c")).is_empty());
    let file = tempfile::NamedTempFile::new().unwrap();
    let f = file.path().to_str().unwrap();
    let (p, r) = first(to_failures(json!({"local": {"dest": f}})));
    assert_eq!(p, "cacheTo[1].local.dest");
    assert!(r.contains("not a directory"), "{r}");
    let (p, _) = first(from_failures(json!(format!("type=local,src={f}"))));
    assert_eq!(p, "cacheFrom[0]");
    let (p, _) = first(from_failures(json!({"raw": format!("type=local,src={f}")})));
    assert_eq!(p, "cacheFrom[0].raw");
    let (p, r) = first(to_failures(json!({"raw": "type=nosuch"})));
    assert_eq!(p, "cacheTo[1].raw");
    assert!(r.contains("unknown type"), "{r}");
    let (p, r) = first(to_failures(json!("type=registry,mode=max")));
    assert_eq!(p, "cacheTo[1]");
    assert!(r.contains("needs ref"), "{r}");
    let (p, _) = first(to_failures(json!({"s3": {"bucket": " ", "region": "r"}})));
    assert_eq!(p, "cacheTo[1].s3.bucket");
    assert!(to_failures(json!({"gha": {"mode": "max"}})).is_empty());
}

/// The export options exist on the cacheTo types only: an import that sets one is a shape
/// error at its own path, as is a local import naming the export's directory key.
#[test]
fn export_options_are_not_import_fields() {
    for (entry, at) in [
        (
            json!({"registry": {"ref": "r.example/a:c", "mode": "max"}}),
            "cacheFrom[0].registry.mode",
        ),
        (
            json!({"gha": {"ignoreError": true}}),
            "cacheFrom[0].gha.ignoreError",
        ),
        (
            json!({"s3": {"bucket": "b", "region": "r", "mode": "max"}}),
            "cacheFrom[0].s3.mode",
        ),
        (json!({"local": {"dest": "/c"}}), "cacheFrom[0].local.dest"),
    ] {
        let m = json!({"cacheFrom": [entry]});
        let f = crate::resources::decode::<crate::resources::image::ImageInputs>(
            m.as_object().unwrap(),
        )
        .unwrap_err();
        assert_eq!(f.property, at, "{}", f.reason);
        assert!(f.reason.contains("unknown field"), "{}", f.reason);
    }
}

#[test]
fn shape_errors_name_the_inner_property() {
    let decode = |v: Json| {
        let m = json!({"cacheTo": [v]});
        crate::resources::decode::<crate::resources::image::ImageInputs>(m.as_object().unwrap())
            .unwrap_err()
    };
    let f = decode(json!({"registry": {"ref": "r.example/a:c", "mode": "maximum"}}));
    assert_eq!(f.property, "cacheTo[0].registry.mode");
    assert!(
        f.reason.contains("min") && f.reason.contains("max"),
        "{}",
        f.reason
    );
    let f = decode(json!({"s3": {"bucket": "b"}}));
    assert_eq!(f.property, "cacheTo[0].s3.region");
    let f = decode(json!({"registry": {"reff": "x"}}));
    assert_eq!(f.property, "cacheTo[0].registry.reff");
    let f = decode(json!(3));
    assert_eq!(f.property, "cacheTo[0]");
    assert!(
        f.reason
            .contains("a buildx cache string or a CacheTo object"),
        "{}",
        f.reason
    );
}
