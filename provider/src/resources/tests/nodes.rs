//! Build nodes (`builders`), their configuration, and adoption of an imported image.

use super::*;

fn strings(l: &[&str]) -> Vec<String> {
    l.iter().map(|p| p.to_string()).collect()
}

#[tokio::test]
async fn nodes_build_their_platforms_push_by_digest_and_the_provider_writes_the_index() {
    let w = World::with_nodes(&[&["linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let tags = ["127.0.0.1:5000/app:1", "127.0.0.1:5000/other:2"];
    let inputs = props(image_inputs(
        dir.path(),
        &tags,
        &["linux/s390x", "linux/arm64", "linux/amd64"],
    ));
    let out = img.create(&w.ctx(false), &inputs).await.unwrap();
    let by_digest = |r: &str| Output::PushByDigest {
        repository: r.into(),
    };
    let mut routed = w.routed();
    routed.sort_by_key(|r| r.0);
    assert_eq!(
        routed,
        [
            (
                None,
                strings(&["linux/s390x", "linux/amd64"]),
                by_digest("127.0.0.1:5000/app")
            ),
            (
                Some(0),
                strings(&["linux/arm64"]),
                by_digest("127.0.0.1:5000/app")
            ),
        ]
    );
    // The index the provider wrote: every platform, sorted, under both tags.
    let index = w.registry.manifests.lock().unwrap()[tags[0]].clone();
    assert_eq!(
        w.registry.manifests.lock().unwrap()[tags[1]].digest,
        index.digest
    );
    let json = index.json();
    let platforms: Vec<&str> = json["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(platforms, ["amd64", "arm64", "s390x"]);
    assert_eq!(
        index.media_type,
        crate::registry::manifest::DOCKER_LIST,
        "Docker manifests only: a Docker list, as BuildKit writes it"
    );
    assert_eq!(out.value["digest"], json!(index.digest));
    assert_eq!(
        out.value["ref"],
        json!(format!("127.0.0.1:5000/app@{}", index.digest))
    );
    let arm64 = platform_manifest("linux/arm64").digest;
    assert_eq!(
        out.value["manifests"],
        json!([
            {"platform": "linux/amd64", "digest": platform_manifest("linux/amd64").digest},
            {"platform": "linux/arm64", "digest": arm64},
            {"platform": "linux/s390x", "digest": platform_manifest("linux/s390x").digest},
        ])
    );
    // The other repository gets the children before the index.
    let writes = w.registry.writes();
    assert!(writes.contains(&format!("copy {arm64} to 127.0.0.1:5000/other:2")));
    let first_put = writes.iter().position(|w| w.starts_with("put")).unwrap();
    assert!(writes[..first_put].iter().all(|w| w.starts_with("copy")));
    // Progress lines carry the node and the platforms.
    let lines = w.log.0.lock().unwrap().clone();
    assert!(lines.contains(&"[builders[0] linux/arm64] #1 RUN make".to_owned()));
    assert!(lines.contains(&"[builder linux/s390x, linux/amd64] #1 RUN make".to_owned()));
}

#[tokio::test]
async fn a_node_listing_every_platform_builds_in_one_solve_as_before() {
    let w = World::with_nodes(&[&["linux/amd64", "linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let inputs = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    ));
    let out = img.create(&w.ctx(false), &inputs).await.unwrap();
    assert_eq!(
        w.routed(),
        [(
            Some(0),
            strings(&["linux/amd64", "linux/arm64"]),
            Output::Push {
                tags: strings(&["127.0.0.1:5000/app:1"])
            }
        )]
    );
    assert_eq!(out.value["digest"], json!(index().digest));
}

#[tokio::test]
async fn a_failing_node_fails_preview_and_up_naming_node_and_platform_and_writes_no_tag() {
    let w = World::with_nodes(&[&["linux/arm64"]], &["linux/arm64"]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let tag = "127.0.0.1:5000/app:1";
    let inputs = props(image_inputs(
        dir.path(),
        &[tag],
        &["linux/amd64", "linux/arm64"],
    ));
    for preview in [true, false] {
        let Err(e) = img.create(&w.ctx(preview), &inputs).await else {
            panic!("the arm64 node fails");
        };
        let text = e.to_string();
        assert!(
            text.contains("builders[0] (fake), platform linux/arm64")
                && text.contains("did not complete successfully"),
            "{text}"
        );
    }
    assert!(w.registry.writes().is_empty(), "{:?}", w.registry.writes());
    assert!(!w.registry.manifests.lock().unwrap().contains_key(tag));
}

#[tokio::test]
async fn preview_on_several_nodes_builds_on_each_and_exports_nothing() {
    let w = World::with_nodes(&[&["linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let inputs = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    ));
    let preview = img.create(&w.ctx(true), &inputs).await.unwrap();
    let mut routed = w.routed();
    routed.sort_by_key(|r| r.0);
    assert_eq!(
        routed,
        [
            (None, strings(&["linux/amd64"]), Output::BuildOnly),
            (Some(0), strings(&["linux/arm64"]), Output::BuildOnly),
        ]
    );
    assert!(w.registry.writes().is_empty());
    assert!(w.registry.manifests.lock().unwrap().is_empty());
    assert!(preview.unknowns.contains(&PropertyPath::root_key("digest")));
}

#[test]
fn builders_are_checked_at_configuration_naming_the_entry() {
    let check = |v: Json| {
        decode_config(v.as_object().unwrap(), &BTreeSet::new())
            .err()
            .map(|f| (f.property, f.reason))
    };
    let node =
        |endpoint: &str, platforms: &[&str]| json!({"endpoint": endpoint, "platforms": platforms});
    assert_eq!(
        check(
            json!({"builders": [node("docker", &["linux/amd64"]), node("tcp://b:1", &["linux/arm64"])]})
        ),
        None
    );
    // Entries sharing a platform make a pool.
    assert_eq!(
        check(json!({"builders": [
            node("docker", &["linux/amd64"]),
            node("tcp://b:1", &["linux/arm64", "linux/x86_64"]),
        ]})),
        None
    );
    let (p, r) =
        check(json!({"builders": [node("tcp://b:1", &["linux/arm64", "linux/aarch64"])]})).unwrap();
    assert_eq!(p, "builders[0].platforms[1]");
    assert!(r.contains("builders[0].platforms[0]"), "{r}");
    // Pools: endpoints, not empty, each once, not beside endpoint; a limit of at least 1.
    let pool = |endpoints: Json, extra: Json| {
        let mut v = json!({"endpoints": endpoints, "platforms": ["linux/amd64"]});
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        check(json!({ "builders": [v] }))
    };
    assert_eq!(pool(json!(["tcp://a:1", "tcp://b:1"]), json!({})), None);
    let (p, r) = pool(json!([]), json!({})).unwrap();
    assert_eq!(
        (p.as_str(), r.contains("lists no endpoint")),
        ("builders[0].endpoints", true)
    );
    let (p, r) = pool(json!(["tcp://a:1", "tcp://b:1", "tcp://a:1"]), json!({})).unwrap();
    assert_eq!(p, "builders[0].endpoints[2]");
    assert!(r.contains("builders[0].endpoints[0]"), "{r}");
    let (p, _) = pool(json!(["tcp://a:1", "ftp://b"]), json!({})).unwrap();
    assert_eq!(p, "builders[0].endpoints[1]");
    let (p, _) = pool(json!(["tcp://a:1"]), json!({"endpoint": "tcp://c:1"})).unwrap();
    assert_eq!(p, "builders[0].endpoints");
    let (p, r) = pool(json!(["tcp://a:1"]), json!({"maxParallelSolves": 0})).unwrap();
    assert_eq!(p, "builders[0].maxParallelSolves");
    assert!(r.contains("at least 1"), "{r}");
    assert_eq!(
        pool(json!(["tcp://a:1"]), json!({"maxParallelSolves": 2})),
        None
    );
    let (p, _) =
        check(json!({"builders": [node("docker", &["linux/amd64"]), node("docker", &["lin ux"])]}))
            .unwrap();
    assert_eq!(p, "builders[1].platforms[0]");
    let (p, _) = check(json!({"builders": [node("docker", &[])]})).unwrap();
    assert_eq!(p, "builders[0].platforms");
    let (p, _) = check(json!({"builders": [node("ftp://x", &["linux/amd64"])]})).unwrap();
    assert_eq!(p, "builders[0].endpoint");
    let (p, r) = check(
        json!({"builders": [{"endpoint": "unix:///b.sock", "platforms": ["linux/amd64"],
        "tls": {"serverName": "b"}}]}),
    )
    .unwrap();
    assert_eq!(p, "builders[0].tls");
    assert!(!r.contains("builderTls"), "{r}");
    let (p, _) = check(
        json!({"builders": [{"endpoint": "tcp://b:1", "platforms": ["linux/amd64"],
        "tls": {"caCert": "not PEM"}}]}),
    )
    .unwrap();
    assert_eq!(p, "builders[0].tls.caCert");
    // PEM armour around garbage: refused at Check naming the property, in both places.
    let garbage = "-----BEGIN CERTIFICATE-----\nZ2FyYmFnZQ==\n-----END CERTIFICATE-----\n";
    let (p, r) = check(
        json!({"builders": [{"endpoint": "tcp://b:1", "platforms": ["linux/amd64"],
        "tls": {"caCert": garbage}}]}),
    )
    .unwrap();
    assert_eq!(p, "builders[0].tls.caCert", "{r}");
    let (p, r) =
        check(json!({"registries": [{"address": "r.example", "caCert": garbage}]})).unwrap();
    assert_eq!(p, "registries[0].caCert");
    assert!(r.contains("not a valid X.509 certificate"), "{r}");
    // An entry still unknown (preview) is checked once known.
    let unknown = with_unknown(
        json!({"builders": [node("docker", &[])]}),
        &["builders[0].endpoint"],
    );
    assert!(decode_config(&unknown.value, &unknown.unknowns).is_ok());
}

#[test]
fn reordering_a_nodes_platforms_is_no_configuration_change() {
    let config = |platforms: &[&str]| {
        props(json!({"builders": [{"endpoint": "docker", "platforms": platforms}]}))
    };
    assert!(!config_changed(
        &config(&["linux/amd64", "linux/arm64"]),
        &config(&["linux/arm64", "linux/amd64"])
    ));
    assert!(config_changed(
        &config(&["linux/amd64"]),
        &config(&["linux/arm64"])
    ));
}

#[tokio::test]
async fn several_nodes_each_use_their_own_registry_cache() {
    let w = World::with_nodes(&[&["linux/arm64"]], &[]);
    let img = resource(IMAGE);
    let dir = tempfile::tempdir().unwrap();
    let mut inputs = image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64", "linux/arm64"],
    );
    inputs["cacheFrom"] = json!(["127.0.0.1:5000/app:cache", "type=gha,scope=app"]);
    inputs["cacheTo"] = json!([
        "type=registry,ref=127.0.0.1:5000/app:cache,mode=max",
        {"registry": {"ref": "127.0.0.1:5000/app:typed", "mode": "max"}}
    ]);
    img.create(&w.ctx(false), &props(inputs)).await.unwrap();
    let entries = |l: &[&str]| -> Vec<crate::buildkit::CacheEntry> {
        l.iter()
            .map(|s| crate::buildkit::CacheEntry::parse(s).unwrap())
            .collect()
    };
    let mut caches = w.builder.caches.lock().unwrap().clone();
    caches.sort_by_key(|c| c.0);
    assert_eq!(
        caches,
        [
            (
                None,
                entries(&[
                    "type=registry,ref=127.0.0.1:5000/app:cache-linux-amd64",
                    "type=gha,scope=app"
                ]),
                entries(&[
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:cache-linux-amd64",
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:typed-linux-amd64"
                ])
            ),
            (
                Some(0),
                entries(&[
                    "type=registry,ref=127.0.0.1:5000/app:cache-linux-arm64",
                    "type=gha,scope=app"
                ]),
                entries(&[
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:cache-linux-arm64",
                    "type=registry,mode=max,ref=127.0.0.1:5000/app:typed-linux-arm64"
                ])
            ),
        ]
    );
}

#[tokio::test]
async fn an_imported_image_is_adopted_by_its_first_update_without_a_build() {
    let w = World::new();
    let img = resource(IMAGE);
    w.registry.put("127.0.0.1:5000/app:1", index());
    let imported = img
        .read(&w.ctx(false), "127.0.0.1:5000/app:1", None)
        .await
        .unwrap()
        .expect("the tag exists");
    assert_eq!(
        imported.value["platforms"],
        json!(["linux/amd64", "linux/arm64"])
    );
    assert!(imported.value.get("contextHash").is_none());
    let olds = props(Json::Object(imported.value.clone()));

    let dir = tempfile::tempdir().unwrap();
    let news = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/arm64", "linux/amd64"],
    ));
    // What the import could not know is a change; no contextHash is compared.
    assert_eq!(
        changed(img.diff(&w.ctx(true), "id", &olds, &news).await.unwrap()),
        ["buildArgs", "context", "secrets"]
    );
    let planned = img.update(&w.ctx(true), "id", &olds, &news).await.unwrap();
    assert_eq!(keys(&planned.unknowns), ["contextHash", "signatures"]);
    let adopted = img.update(&w.ctx(false), "id", &olds, &news).await.unwrap();
    assert!(w.builds().is_empty(), "adopting builds nothing");
    assert!(w.registry.writes().is_empty(), "and writes nothing");
    assert_eq!(adopted.value["digest"], json!(index().digest));
    assert!(adopted.value["contextHash"]
        .as_str()
        .unwrap()
        .starts_with("sha256:"));
    let recorded = props(Json::Object(adopted.value.clone()));
    assert!(changed(
        img.diff(&w.ctx(true), "id", &recorded, &news)
            .await
            .unwrap()
    )
    .is_empty());

    // Another platform set is a build.
    let other = props(image_inputs(
        dir.path(),
        &["127.0.0.1:5000/app:1"],
        &["linux/amd64"],
    ));
    img.update(&w.ctx(false), "id", &olds, &other)
        .await
        .unwrap();
    assert_eq!(w.builds().len(), 1);
}
