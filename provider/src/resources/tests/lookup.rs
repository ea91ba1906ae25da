//! The image lookup and same-repository promotion, against the fake registry.

use std::sync::atomic::Ordering;

use super::*;

fn get_image() -> Arc<dyn crate::resources::lookup::Function> {
    functions()
        .iter()
        .find(|f| f.model().token == "multiarch:index:getImage")
        .cloned()
        .unwrap()
}

fn args(v: Json) -> serde_json::Map<String, Json> {
    v.as_object().unwrap().clone()
}

#[tokio::test]
async fn get_image_reads_an_index_and_names_a_missing_tag() {
    let w = World::new();
    let ix = index();
    w.registry.put("r.example/app:v1", ix.clone());
    let out = get_image()
        .invoke(&w.ctx(true), &args(json!({"ref": "r.example/app:v1"})))
        .await
        .unwrap();
    assert_eq!(out["digest"], json!(ix.digest));
    assert_eq!(out["ref"], json!(format!("r.example/app:v1@{}", ix.digest)));
    assert_eq!(out["mediaType"], json!(ix.media_type));
    assert_eq!(
        out["manifests"],
        json!([
            {"platform": "linux/amd64", "digest": format!("sha256:{}", "a".repeat(64))},
            {"platform": "linux/arm64", "digest": format!("sha256:{}", "b".repeat(64))},
        ])
    );
    let e = get_image()
        .invoke(&w.ctx(true), &args(json!({"ref": "r.example/app:nope"})))
        .await
        .unwrap_err();
    match e {
        Error::Invalid(f) => {
            assert_eq!(f[0].property, "ref");
            assert!(
                f[0].reason.contains("r.example/app:nope does not exist"),
                "{}",
                f[0].reason
            );
        }
        other => panic!("not a failure naming ref: {other}"),
    }
    assert!(w.registry.writes().is_empty());
}

/// `app:v1` (an index) promoted to `app:stable` in its own repository: the same index where
/// the registry deletes one tag alone (ECR), a new one elsewhere.
#[tokio::test]
async fn same_repository_promotion_keeps_the_digest_where_tags_are_deleted_alone() {
    for ecr in [true, false] {
        let w = World::new();
        w.registry.ecr.store(ecr, Ordering::Relaxed);
        // An index as another tool writes it (an annotation of its own): assembled anew,
        // it would not be the same bytes.
        let mut body = index().json();
        body["annotations"] = json!({"org.example.built-by": "ci"});
        let ix = RawManifest::from_bytes(serde_json::to_vec(&body).unwrap().into()).unwrap();
        w.registry.put("r.example/app:v1", ix.clone());
        let ml = resource(LIST);
        let news =
            props(json!({"tags": ["r.example/app:stable"], "sources": ["r.example/app:v1"]}));
        let out = ml.create(&w.ctx(false), &news).await.unwrap();
        assert_eq!(out.value["digest"] == json!(ix.digest), ecr, "ecr: {ecr}");
    }
}
