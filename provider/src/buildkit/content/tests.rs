use super::*;

fn digest_of(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn req(action: WriteAction, offset: i64, data: &[u8]) -> WriteContentRequest {
    WriteContentRequest {
        action: action as i32,
        offset,
        data: data.to_vec(),
        ..Default::default()
    }
}

#[test]
fn write_verifies_and_commits_atomically() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout {
        root: dir.path().join("cache"),
    };
    let d = digest_of(b"hello world");
    let mut w = Some(Writer::new(layout.clone()).unwrap());
    let first = WriteContentRequest {
        r#ref: "r".into(),
        total: 11,
        expected: d.clone(),
        ..Default::default()
    };
    let (resp, done) = step(&mut w, first).unwrap();
    assert_eq!((resp.offset, resp.total, done), (0, 11, false));
    let (resp, _) = step(&mut w, req(WriteAction::Write, 0, b"hello ")).unwrap();
    assert_eq!(resp.offset, 6);
    assert!(step(&mut w, req(WriteAction::Write, 3, b"x")).is_err());
    let (resp, done) = step(&mut w, req(WriteAction::Commit, 6, b"world")).unwrap();
    assert!(done);
    assert_eq!((resp.offset, resp.digest.as_str()), (11, d.as_str()));
    let info = info_of(&layout, &d).unwrap();
    assert_eq!(info.size, 11);
    assert!(has_blob(&layout.root, &d));
    // only the blob is left: no temporary file
    let left: Vec<_> = std::fs::read_dir(&layout.root)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, ["blobs"]);
}

#[test]
fn a_wrong_digest_or_size_is_refused_and_leaves_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let layout = Layout {
        root: dir.path().to_path_buf(),
    };
    let mut w = Some(Writer::new(layout.clone()).unwrap());
    let mut m = req(WriteAction::Commit, 0, b"abc");
    m.expected = digest_of(b"abd");
    assert_eq!(
        step(&mut w, m).unwrap_err().code(),
        tonic::Code::FailedPrecondition
    );
    let mut w = Some(Writer::new(layout.clone()).unwrap());
    let mut m = req(WriteAction::Commit, 0, b"abc");
    m.total = 4;
    assert!(step(&mut w, m).is_err());
    drop(w);
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    assert_eq!(
        info_of(&layout, &digest_of(b"abc")).unwrap_err().code(),
        tonic::Code::NotFound
    );
    assert_eq!(
        info_of(&layout, "sha256:../../etc").unwrap_err().code(),
        tonic::Code::InvalidArgument
    );
}

#[test]
fn index_put_replaces_names_and_find_reads_them() {
    let dir = tempfile::tempdir().unwrap();
    let desc = |d: &str| {
        serde_json::json!({"mediaType": "application/vnd.oci.image.index.v1+json",
                "digest": d, "size": 10})
    };
    assert_eq!(find_in_index(dir.path(), "latest").unwrap(), None);
    put_index(
        dir.path(),
        &desc("sha256:a"),
        &[IndexName::Tag("latest".into())],
    )
    .unwrap();
    put_index(
        dir.path(),
        &desc("sha256:b"),
        &[IndexName::Tag("latest".into())],
    )
    .unwrap();
    put_index(
        dir.path(),
        &desc("sha256:c"),
        &[IndexName::Image("r.example/app:1".into())],
    )
    .unwrap();
    assert_eq!(
        find_in_index(dir.path(), "latest").unwrap().as_deref(),
        Some("sha256:b")
    );
    assert_eq!(
        find_in_index(dir.path(), "r.example/app:1")
            .unwrap()
            .as_deref(),
        Some("sha256:c")
    );
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("index.json")).unwrap()).unwrap();
    assert_eq!(index["schemaVersion"], 2);
    assert_eq!(index["manifests"].as_array().unwrap().len(), 2);
    assert_eq!(
        index["manifests"][1]["annotations"][ANNOTATION_REF_NAME],
        "1"
    );
    assert!(dir.path().join("oci-layout").is_file());
}
