use super::*;

fn ign_err(text: &str) -> Result<Patterns, PatternError> {
    Patterns::from_ignore_file(text)
}

fn ign(text: &str) -> Patterns {
    ign_err(text).expect("valid ignore file")
}

/// Whether `path` is excluded, computing the parents' results first as
/// the walk does.
fn excluded(ig: &Patterns, path: &str) -> bool {
    let mut parent = MatchInfo::default();
    let mut out = MatchInfo::default();
    let comps: Vec<&str> = path.split('/').collect();
    let mut m = false;
    for n in 1..=comps.len() {
        m = ig.matches(&comps[..n].join("/"), &parent, &mut out);
        parent = out.clone();
    }
    m
}

/// `MatchesOrParentMatches` over a list of patterns.
fn m(patterns: &[&str], path: &str) -> bool {
    Patterns::new(patterns)
        .unwrap()
        .matches_or_parent_matches(path)
}

#[test]
fn dockerignore_table() {
    let cases: &[(&str, &str, bool)] = &[
        ("*.log", "a.log", true),
        ("*.log", "a.log.txt", false),
        ("*.log", "dir/a.log", false),
        ("**/*.tmp", "x.tmp", true),
        ("**/*.tmp", "a/b/x.tmp", true),
        ("**/*.tmp", "a/b/x.tmpl", false),
        ("node_modules", "node_modules", true),
        ("node_modules", "node_modules/x/y.js", true),
        ("node_modules", "src/node_modules", false),
        ("node_modules", "node_modules2", false),
        ("*.log\n!keep.log", "keep.log", false),
        ("*.log\n!keep.log", "other.log", true),
        ("!keep.log\n*.log", "keep.log", true),
        ("/abs", "abs", true),
        ("/abs", "abs/x", true),
        ("/abs", "x/abs", false),
        ("dir/", "dir", true),
        ("dir/", "dir/file", true),
        ("dir/", "dirx", false),
        ("./foo", "foo", true),
        ("a/../b", "b", true),
        ("a/../b", "a", false),
        ("foo/**", "foo", false),
        ("foo/**", "foo/x/y", true),
        ("foo**", "foobar/x", true),
        ("**/foo", "foo", true),
        ("**/foo", "a/b/foo", true),
        ("**/foo", "a/b/foo/c", true),
        ("**/foo", "a/b/xfoo", false),
        ("a/**/b", "a/b", true),
        ("a/**/b", "a/x/y/b", true),
        ("a/**/b", "a/x/y/c", false),
        ("a?c", "abc", true),
        ("a?c", "a/c", false),
        ("[a-c]x", "bx", true),
        ("[^a-c]x", "dx", true),
        ("[^a-c]x", "ax", false),
        ("\\*x", "*x", true),
        ("\\*x", "ax", false),
        ("**", "anything/at/all", true),
        ("**\n!Dockerfile", "Dockerfile", false),
        ("**\n!Dockerfile", "src/main.rs", true),
        ("*\n!src", "src/deep/file", false),
        ("*\n!src", "other", true),
        ("# comment\n\n  \nfoo", "foo", true),
        ("# foo", "# foo", false),
        (" # foo", "# foo", true),
        ("\u{feff}foo", "foo", true),
        ("foo\r\nbar", "foo", true),
        ("foo\r\nbar", "bar", true),
        ("  foo  ", "foo", true),
        ("! keep\n*", "keep", true),
        ("*\n! keep", "keep", false),
        (
            "vendor\n!vendor/keep/deep/f.txt",
            "vendor/keep/deep/f.txt",
            false,
        ),
        (
            "vendor\n!vendor/keep/deep/f.txt",
            "vendor/keep/deep/g.txt",
            true,
        ),
        ("vendor\n!vendor/keep/deep/f.txt", "vendor/keep", true),
        // MatchesUsingParentResults: `!a` was not tried for `a` (nothing
        // was excluded yet), so `a/b` stays excluded.
        ("a/b\n!a", "a/b", true),
        ("a.b", "aXb", false),
        ("a+(b)", "a+(b)", true),
        // patternmatcher turns `*` into `[^/]*` even inside a class, so
        // Go's regexp reads `x[[^/]*]`: Docker's quirk, kept.
        ("x[*]", "x*", false),
        ("x[*]", "x[^]", true),
        ("[[]x", "[x", true),
    ];
    for (text, path, want) in cases {
        let ig = ign(text);
        assert_eq!(
            excluded(&ig, path),
            *want,
            "patterns {text:?} path {path:?}"
        );
    }
}

#[test]
fn dockerignore_bad_patterns() {
    for text in ["!", "a\n!\n", "[", "a[", "[]", "[a-]", "a\\", "[a"] {
        assert!(ign_err(text).is_err(), "{text:?}");
    }
    let err = ign_err("ok\n# c\n  [bad  ").unwrap_err();
    assert_eq!((err.line, err.pattern.as_str()), (3, "[bad"), "{err}");
    let err = Patterns::new(&["ok", "", "!"]).unwrap_err();
    assert_eq!(err.line, 3, "{err}");
    assert_eq!(
        err.to_string(),
        "pattern \"!\": illegal exclusion pattern: \"!\""
    );
    // Go's `filepath.Match` syntax errors fail `patternmatcher.New` too.
    assert!(Patterns::new(&["a\\"]).is_err());
    assert!(Patterns::new(&["[a-]"]).is_err());
}

#[test]
fn clean_matches_go() {
    for (inp, want) in [
        ("", "."),
        (".", "."),
        ("./a", "a"),
        ("a/", "a"),
        ("a//b/./c/..", "a/b"),
        ("../a", "../a"),
        ("/../a", "/a"),
        ("/", "/"),
        ("a/..", "."),
        ("a//b/./c/", "a/b/c"),
        ("./x/../y", "y"),
        ("!foo/", "!foo"),
    ] {
        assert_eq!(clean(inp), want, "{inp:?}");
    }
}

#[test]
fn reinclude_under_directory() {
    let check = |text: &str, dir: &str, _: &mut ()| ign(text).could_reinclude_under(dir);
    let mut cache = ();
    assert!(!check("node_modules", "node_modules", &mut cache));
    assert!(!check(
        "node_modules\n!src/*.rs",
        "node_modules",
        &mut cache
    ));
    assert!(check("node_modules\n!src/*.rs", "src", &mut cache));
    assert!(!check("*\n!*.md", "docs", &mut cache));
    assert!(check("*\n!**/*.md", "docs", &mut cache));
    assert!(check("vendor\n!vendor/keep", "vendor", &mut cache));
    assert!(!check("vendor\n!vendor/keep", "vendor/other", &mut cache));
    assert!(!check("vendor\n!vendor/keep", "other", &mut cache));
    assert!(check("vendor\n!vendor/k*/x", "vendor", &mut cache));
    assert!(check("vendor\n!vendor/k*/x", "vendor/kept", &mut cache));
    assert!(!check("vendor\n!vendor/k*/x", "vendor/other", &mut cache));
    assert!(check("vendor\n!ven**", "vendor", &mut cache));
    assert!(check("vendor\n!vendor/**", "vendor", &mut cache));
}
#[test]
fn docker_semantics() {
    assert!(m(&["node_modules"], "node_modules/x/y.js"));
    assert!(m(&["*.md"], "README.md"));
    assert!(!m(&["*.md"], "docs/README.md"));
    assert!(m(&["**/*.md"], "docs/README.md"));
    assert!(m(&["**/*.md"], "README.md"));
    assert!(m(&["docs/**"], "docs/a/b"));
    assert!(m(&["**/tmp"], "tmp"));
    assert!(m(&["**/tmp"], "a/b/tmp/x"));
    assert!(m(&["a/**/b"], "a/b"));
    assert!(m(&["a/**/b"], "a/x/y/b"));
    assert!(m(&["fil?.txt"], "file.txt"));
    assert!(!m(&["fil?.txt"], "fil/.txt"));
    assert!(m(&["[a-c].txt"], "b.txt"));
    assert!(!m(&["[a-c].txt"], "d.txt"));
    assert!(m(&["a.b"], "a.b"));
    assert!(!m(&["a.b"], "axb"));
    assert!(m(&["*", "!keep"], "drop"));
    assert!(!m(&["*", "!keep"], "keep"));
    assert!(!m(&["*", "!keep"], "keep/inner"));
    assert!(m(&["*", "!keep", "keep/secret"], "keep/secret"));
    assert!(m(&["[^a]x"], "bx"));
    assert!(!m(&["[^a]x"], "ax"));
}

#[test]
fn pattern_list_is_not_an_ignore_file() {
    // `patternmatcher.New` takes every item as a pattern: no comments,
    // and a leading `/` is kept.
    assert!(m(&["# c"], "# c"));
    assert!(!m(&["/abs"], "abs"));
    assert!(m(&["/abs"], "/abs"));
    assert!(m(&[" ./dir/ ", ""], "dir/f"));
    let p = Patterns::new(&["a/**", "!./b/"]).unwrap();
    let listed: Vec<(&str, bool)> = p
        .patterns()
        .iter()
        .map(|p| (p.text(), p.is_exception()))
        .collect();
    // `New` cleans before taking off the `!`, so what follows it stays
    // as written (`ReadAll` has cleaned it already for an ignore file).
    assert_eq!(listed, [("a/**", false), ("./b", true)]);
    assert!(p.has_exceptions());
    assert!(!Patterns::new(&["a"]).unwrap().has_exceptions());
}

#[test]
fn parent_results() {
    let pm = Patterns::new(&["dir", "!dir/keep"]).unwrap();
    let mut info = MatchInfo::default();
    assert!(pm.matches("dir", &MatchInfo::default(), &mut info));
    let mut child = MatchInfo::default();
    assert!(pm.matches("dir/file", &info, &mut child));
    assert!(!pm.matches("dir/keep", &info, &mut child));
    // Without the parent's results, the parents are matched instead.
    assert!(pm.matches("dir/file", &MatchInfo::default(), &mut child));
    assert!(!pm.matches("dir/keep", &MatchInfo::default(), &mut child));
}

#[test]
fn wildcards() {
    for (s, want) in [
        ("a*", true),
        ("a?", true),
        ("[ab]", true),
        ("a\\b", true),
        ("abc", false),
    ] {
        assert_eq!(has_wildcards(s), want, "{s:?}");
    }
}
