use super::*;

fn tree() -> PathBuf {
    let d = std::env::temp_dir().join(format!("bk-fs-{}", uuid::Uuid::new_v4()));
    for f in [
        "Dockerfile",
        "a.b",
        "a/x.txt",
        "a/y.md",
        "node_modules/m/index.js",
        "keep/k.txt",
        "docs/deep/README.md",
    ] {
        let p = d.join(f);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, f).unwrap();
    }
    std::os::unix::fs::symlink("Dockerfile", d.join("Link")).unwrap();
    d
}

fn names(src: &DirSource, f: Filters) -> Vec<String> {
    plan_public(src, &f)
        .unwrap()
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn walk_order_and_filters() {
    let root = tree();
    let src = DirSource {
        root: Some(root.clone()),
        ..Default::default()
    };
    let all = names(&src, Filters::default());
    assert_eq!(
        all,
        vec![
            "Dockerfile",
            "Link",
            "a",
            "a/x.txt",
            "a/y.md",
            "a.b",
            "docs",
            "docs/deep",
            "docs/deep/README.md",
            "keep",
            "keep/k.txt",
            "node_modules",
            "node_modules/m",
            "node_modules/m/index.js"
        ]
    );
    let ex = names(
        &src,
        Filters {
            exclude: vec![
                "node_modules".into(),
                "**/*.md".into(),
                "a".into(),
                "!a/x.txt".into(),
            ],
            ..Default::default()
        },
    );
    assert_eq!(
        ex,
        vec![
            "Dockerfile",
            "Link",
            "a",
            "a/x.txt",
            "a.b",
            "docs",
            "docs/deep",
            "keep",
            "keep/k.txt"
        ]
    );
    let inc = names(
        &src,
        Filters {
            include: vec!["docs/deep/README.md".into()],
            ..Default::default()
        },
    );
    assert_eq!(inc, vec!["docs", "docs/deep", "docs/deep/README.md"]);
    let follow = names(
        &src,
        Filters {
            follow: vec!["Link".into()],
            ..Default::default()
        },
    );
    assert_eq!(follow, vec!["Dockerfile", "Link"]);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn virtual_files() {
    let root = tree();
    let mut src = DirSource {
        root: Some(root.clone()),
        ..Default::default()
    };
    src.extra.insert(
        ".dockerignore".into(),
        VirtualFile::Bytes(Arc::new(b"x".to_vec())),
    );
    src.hidden.insert("Dockerfile".into());
    let got = names(
        &src,
        Filters {
            follow: vec![".dockerignore".into(), "Dockerfile".into()],
            ..Default::default()
        },
    );
    assert_eq!(got, vec![".dockerignore"]);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn modes() {
    let root = tree();
    let src = DirSource {
        root: Some(root.clone()),
        ..Default::default()
    };
    let all = plan_public(&src, &Filters::default()).unwrap();
    let mode = |n: &str| all.iter().find(|(p, _)| p == n).unwrap().1;
    assert_ne!(mode("a") & GO_MODE_DIR, 0);
    assert_ne!(mode("Link") & GO_MODE_SYMLINK, 0);
    assert_eq!(mode("Dockerfile") & (GO_MODE_DIR | GO_MODE_SYMLINK), 0);
    std::fs::remove_dir_all(root).unwrap();
}

#[test]
fn unescape() {
    assert_eq!(query_unescape("a%2Fb+c%C3%A9"), "a/b cé");
    assert_eq!(query_unescape("bad%zz%"), "bad%zz%");
}
