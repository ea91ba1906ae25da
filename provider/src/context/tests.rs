use super::*;
use std::os::unix::fs::{symlink, PermissionsExt};

fn write(root: &Path, rel: &str, contents: &str) {
    let p = root.join(rel);
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, contents).unwrap();
}

fn paths(files: &ContextFiles) -> Vec<&str> {
    files.entries.iter().map(|e| e.rel_path.as_str()).collect()
}

fn walk_text(root: &Path, text: &str) -> (ContextFiles, usize) {
    let ig = Patterns::from_ignore_file(text).expect("valid ignore file");
    walk_with(root, Some(&ig)).unwrap()
}

#[test]
fn walk_order_is_fsutils() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "a/b", "");
    write(r, "a-b", "");
    write(r, "a.txt", "");
    write(r, "B", "");
    fs::create_dir(r.join("empty")).unwrap();
    symlink("a.txt", r.join("link")).unwrap();
    let files = walk(r, None).unwrap();
    assert_eq!(
        paths(&files),
        ["B", "a", "a/b", "a-b", "a.txt", "empty", "link"]
    );
    assert_eq!(files.entries[6].kind, EntryKind::Symlink("a.txt".into()));
    assert_eq!(files.entries[1].kind, EntryKind::Dir);
    assert_eq!(files.root, fs::canonicalize(r).unwrap());
}

#[test]
fn walk_applies_patterns() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    for f in [
        "Dockerfile",
        "app.log",
        "keep.log",
        "src/main.rs",
        "src/x.tmp",
        "src/deep/y.tmp",
        "node_modules/m/index.js",
        "dir/f",
        "abs",
        "sub/abs",
    ] {
        write(r, f, "x");
    }
    let (files, _) = walk_text(r, "*.log\n!keep.log\n**/*.tmp\nnode_modules\n/abs\ndir/\n");
    assert_eq!(
        paths(&files),
        [
            "Dockerfile",
            "keep.log",
            "src",
            "src/deep",
            "src/main.rs",
            "sub",
            "sub/abs"
        ]
    );
}

#[test]
fn walk_nested_exception_and_skips() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "vendor/keep/deep/f.txt", "x");
    write(r, "vendor/keep/deep/g.txt", "x");
    write(r, "vendor/keep/other/h.txt", "x");
    write(r, "vendor/nope/i.txt", "x");
    write(r, "node_modules/a/b/c.js", "x");
    write(r, "main.go", "x");
    let (files, dirs_read) = walk_text(r, "vendor\nnode_modules\n!vendor/keep/deep/f.txt\n");
    assert_eq!(
        paths(&files),
        [
            "main.go",
            "vendor",
            "vendor/keep",
            "vendor/keep/deep",
            "vendor/keep/deep/f.txt"
        ]
    );
    // root, vendor, vendor/keep, vendor/keep/deep: not node_modules,
    // vendor/nope or vendor/keep/other.
    assert_eq!(dirs_read, 4);

    // A wildcard exception that can't reach inside node_modules.
    let (files, dirs_read) = walk_text(r, "*\n!*.go\n");
    assert_eq!(paths(&files), ["main.go"]);
    assert_eq!(dirs_read, 1);

    // One that can: everything is read, only matches kept.
    let (files, dirs_read) = walk_text(r, "*\n!**/c.js\n");
    assert_eq!(
        paths(&files),
        [
            "node_modules",
            "node_modules/a",
            "node_modules/a/b",
            "node_modules/a/b/c.js"
        ]
    );
    assert!(dirs_read >= 4, "{dirs_read}");
}

#[test]
fn ignore_file_precedence() {
    let d = tempfile::tempdir().unwrap();
    let ctx = d.path().join("ctx");
    write(&ctx, "a", "x");
    write(&ctx, "b", "x");
    write(&ctx, ".dockerignore", "a\n");
    write(d.path(), "build/app.Dockerfile", "FROM scratch\n");
    let df = d.path().join("build/app.Dockerfile");

    assert_eq!(
        ignore_file_for(&ctx, Some(&df)),
        Some(ctx.join(".dockerignore"))
    );
    write(d.path(), "build/app.Dockerfile.dockerignore", "b\n");
    let specific = d.path().join("build/app.Dockerfile.dockerignore");
    assert_eq!(ignore_file_for(&ctx, Some(&df)), Some(specific.clone()));
    let files = walk(&ctx, Some(&specific)).unwrap();
    assert_eq!(paths(&files), [".dockerignore", "a"]);

    // Default Dockerfile: <context>/Dockerfile.dockerignore, then .dockerignore.
    assert_eq!(ignore_file_for(&ctx, None), Some(ctx.join(".dockerignore")));
    write(&ctx, "Dockerfile.dockerignore", "*\n");
    assert_eq!(
        ignore_file_for(&ctx, None),
        Some(ctx.join("Dockerfile.dockerignore"))
    );
    fs::remove_file(ctx.join(".dockerignore")).unwrap();
    fs::remove_file(ctx.join("Dockerfile.dockerignore")).unwrap();
    assert_eq!(ignore_file_for(&ctx, None), None);
    assert_eq!(ignore_file_for(&ctx, Some(&df)), Some(specific));
}

#[test]
fn walk_errors_name_the_path() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing");
    let err = walk(&missing, None).unwrap_err();
    assert!(err.to_string().contains("missing"), "{err}");
    write(d.path(), "file", "x");
    let err = walk(&d.path().join("file"), None).unwrap_err();
    assert!(matches!(err, ContextError::NotADirectory(_)), "{err}");
    let err = walk(d.path(), Some(&d.path().join("nope.dockerignore"))).unwrap_err();
    assert!(err.to_string().contains("nope.dockerignore"), "{err}");
    write(d.path(), "bad.dockerignore", "ok\n[bad\n");
    let err = walk(d.path(), Some(&d.path().join("bad.dockerignore"))).unwrap_err();
    assert!(matches!(err, ContextError::Pattern { .. }), "{err}");
    let msg = err.to_string();
    assert!(
        msg.contains("bad.dockerignore, line 2") && msg.contains("\"[bad\""),
        "{msg}"
    );
}

/// A small tree: files, an executable, a symlink, an empty dir, an
/// ignore file.
fn tree(r: &Path, umask_like: u32) {
    write(r, "Dockerfile", "FROM scratch\n");
    write(r, ".dockerignore", "*.log\n");
    write(r, "src/main.rs", "fn main() {}\n");
    write(r, "src/lib/mod.rs", "pub mod x;\n");
    write(r, "run.sh", "#!/bin/sh\n");
    fs::create_dir_all(r.join("empty")).unwrap();
    symlink("src/main.rs", r.join("main")).unwrap();
    for f in [
        "Dockerfile",
        ".dockerignore",
        "src/main.rs",
        "src/lib/mod.rs",
    ] {
        fs::set_permissions(r.join(f), fs::Permissions::from_mode(0o666 & !umask_like)).unwrap();
    }
    fs::set_permissions(
        r.join("run.sh"),
        fs::Permissions::from_mode(0o777 & !umask_like),
    )
    .unwrap();
    for dir in ["src", "src/lib", "empty"] {
        fs::set_permissions(r.join(dir), fs::Permissions::from_mode(0o777 & !umask_like)).unwrap();
    }
}

fn hash(r: &Path) -> String {
    hash_dir(r).unwrap()
}

#[test]
fn hash_stable_and_sensitive() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    tree(r, 0o022);
    let base = hash(r);
    assert!(
        base.starts_with("sha256:") && base.len() == 7 + 64,
        "{base}"
    );
    assert_eq!(hash(r), base, "two walks");

    // Another checkout with a different umask.
    let d2 = tempfile::tempdir().unwrap();
    tree(d2.path(), 0o077);
    assert_eq!(hash(d2.path()), base, "umask 077 checkout");
    let d3 = tempfile::tempdir().unwrap();
    tree(d3.path(), 0o002);
    assert_eq!(hash(d3.path()), base, "umask 002 checkout");

    // chmod g+w
    fs::set_permissions(r.join("src/main.rs"), fs::Permissions::from_mode(0o664)).unwrap();
    assert_eq!(hash(r), base, "chmod g+w");

    // touch
    let f = File::options()
        .write(true)
        .open(r.join("src/main.rs"))
        .unwrap();
    f.set_modified(std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(12345))
        .unwrap();
    drop(f);
    assert_eq!(hash(r), base, "touch");

    // An ignored file.
    write(r, "debug.log", "noise");
    assert_eq!(hash(r), base, "ignored file added");

    // chmod +x
    fs::set_permissions(r.join("src/main.rs"), fs::Permissions::from_mode(0o755)).unwrap();
    let exec = hash(r);
    assert_ne!(exec, base, "chmod +x");
    fs::set_permissions(r.join("src/main.rs"), fs::Permissions::from_mode(0o644)).unwrap();
    assert_eq!(hash(r), base);

    // Content change, same size.
    write(r, "src/main.rs", "fn main() {}\t");
    assert_ne!(hash(r), base, "content");
    write(r, "src/main.rs", "fn main() {}\n");
    assert_eq!(hash(r), base);

    // Rename.
    fs::rename(r.join("src/lib/mod.rs"), r.join("src/lib/mod2.rs")).unwrap();
    assert_ne!(hash(r), base, "rename");
    fs::rename(r.join("src/lib/mod2.rs"), r.join("src/lib/mod.rs")).unwrap();
    assert_eq!(hash(r), base);

    // Symlink target.
    fs::remove_file(r.join("main")).unwrap();
    symlink("src/lib/mod.rs", r.join("main")).unwrap();
    assert_ne!(hash(r), base, "symlink target");
    fs::remove_file(r.join("main")).unwrap();
    symlink("src/main.rs", r.join("main")).unwrap();
    assert_eq!(hash(r), base);

    // An empty directory counts.
    fs::create_dir(r.join("empty2")).unwrap();
    assert_ne!(hash(r), base, "new empty dir");
}

#[test]
fn hash_dockerfile_and_named_contexts() {
    let d = tempfile::tempdir().unwrap();
    let (a, b) = (d.path().join("a"), d.path().join("b"));
    write(&a, "x", "1");
    write(&b, "y", "2");
    let fa = walk(&a, None).unwrap();
    let fb = walk(&b, None).unwrap();
    let h = |df: &[u8], named: &[(String, ContextFiles)]| context_hash(df, &fa, named).unwrap();

    let plain = h(b"FROM scratch", &[]);
    assert_ne!(h(b"FROM scratch\n", &[]), plain);
    let one = h(b"FROM scratch", &[("lib".into(), fb.clone())]);
    assert_ne!(one, plain);
    assert_ne!(h(b"FROM scratch", &[("lib2".into(), fb.clone())]), one);
    let two = h(
        b"FROM scratch",
        &[("p".into(), fb.clone()), ("q".into(), fa.clone())],
    );
    let two_swapped = h(
        b"FROM scratch",
        &[("q".into(), fa.clone()), ("p".into(), fb.clone())],
    );
    assert_eq!(two, two_swapped, "named contexts are sorted by name");

    // Moving bytes between the Dockerfile and the name doesn't collide.
    assert_ne!(
        h(b"ab", &[("c".into(), fb.clone())]),
        h(b"a", &[("bc".into(), fb.clone())])
    );
}

#[test]
fn unchanged_settled_files_are_not_read_again() {
    let d = tempfile::tempdir().unwrap();
    let r = d.path();
    write(r, "a", "one");
    write(r, "b", "two");
    let count = |r: &Path| {
        let files = walk(r, None).unwrap();
        context_hash_counted(b"", &files, &[]).unwrap()
    };
    // Just written: racy, so read every time (a write in the same clock tick with
    // the same size would not change the stamp).
    let (h1, first) = count(r);
    let (h2, again) = count(r);
    assert_eq!((first.read, again.read), (2, 2));
    assert_eq!(h1, h2);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    let (_, settled) = count(r);
    assert_eq!(settled.read, 2, "hashed after the racy window: now trusted");
    let (h3, cached) = count(r);
    assert_eq!((cached.files, cached.read, cached.bytes), (2, 0, 0));
    assert_eq!(h3, h1);
    write(r, "b", "TWO");
    let (h4, changed) = count(r);
    assert_eq!(changed.read, 1);
    assert_ne!(h4, h1);
}

#[test]
fn hash_files_parallel_matches_sequential() {
    let d = tempfile::tempdir().unwrap();
    for i in 0..300 {
        write(d.path(), &format!("d{}/f{i}", i % 7), &"x".repeat(i * 37));
    }
    let files = walk(d.path(), None).unwrap();
    let parallel = hash_files(&files, &mut Reads::default()).unwrap();
    let sequential: Vec<[u8; 32]> = files
        .entries
        .iter()
        .filter(|e| e.kind == EntryKind::File)
        .map(|e| Sha256::digest(fs::read(files.root.join(&e.rel_path)).unwrap()).into())
        .collect();
    assert_eq!(parallel.len(), 300);
    assert_eq!(parallel, sequential);
    assert_eq!(hash_dir(d.path()).unwrap(), hash_dir(d.path()).unwrap());
}

#[test]
fn walk_deep_tree() {
    let d = tempfile::tempdir().unwrap();
    let deep = "d/".repeat(300) + "f";
    write(d.path(), &deep, "x");
    let files = walk(d.path(), None).unwrap();
    assert_eq!(files.entries.len(), 301);
    assert_eq!(files.entries[300].rel_path, deep);
    let (files, _) = walk_text(d.path(), "d\n!d/**/f\n");
    assert_eq!(files.entries.len(), 301);
}

#[test]
fn hash_reads_big_files_in_chunks() {
    let d = tempfile::tempdir().unwrap();
    let big: Vec<u8> = (0..(3 * READ_BUF + 17)).map(|i| (i % 251) as u8).collect();
    fs::write(d.path().join("big"), &big).unwrap();
    assert_eq!(
        hash_file(&d.path().join("big"), &mut vec![0; READ_BUF]).unwrap(),
        <[u8; 32]>::from(Sha256::digest(&big))
    );
}
