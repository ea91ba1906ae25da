//! Property tests of the pure parts: no panic on any input, and the round trips that the
//! fronts rely on hold.

use std::collections::BTreeSet;

use multiarch::dockerignore::Patterns;
use multiarch::path::{PropertyPath, Segment};
use multiarch::platform::normalize;
use multiarch::reference::{parse_qualified, parse_tag};
use proptest::prelude::*;
use serde_json::{json, Value as Json};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn references_never_panic(s in "\\PC{0,80}") {
        let _ = parse_qualified(&s);
        let _ = parse_tag(&s);
    }

    #[test]
    fn qualified_references_keep_their_parts(
        host in "[a-z]{1,8}\\.[a-z]{2,4}(:[0-9]{2,5})?",
        repo in "[a-z0-9]{1,10}(/[a-z0-9]{1,10}){0,2}",
        tag in "[A-Za-z0-9_][A-Za-z0-9_.-]{0,20}",
    ) {
        let s = format!("{host}/{repo}:{tag}");
        let r = parse_tag(&s).expect("a well-formed reference parses");
        prop_assert_eq!(r.registry(), host.as_str());
        prop_assert_eq!(r.repository(), repo.as_str());
        prop_assert_eq!(r.tag(), Some(tag.as_str()));
    }

    #[test]
    fn platforms_normalize_idempotently(s in "[a-z0-9/_]{0,24}") {
        if let Ok(n) = normalize(&s) {
            prop_assert_eq!(normalize(&n).expect("a normalized platform stays valid"), n);
        }
    }

    #[test]
    fn platform_aliases_agree(os in prop::sample::select(vec!["linux", "windows"])) {
        prop_assert_eq!(normalize(&format!("{os}/aarch64")).ok(), normalize(&format!("{os}/arm64")).ok());
        prop_assert_eq!(normalize(&format!("{os}/x86_64")).ok(), normalize(&format!("{os}/amd64")).ok());
    }

    #[test]
    fn dockerignore_never_panics(lines in prop::collection::vec("[!*?\\[\\]a-z/.\\\\-]{0,12}", 0..6),
                                 path in "[a-z/.]{0,20}") {
        if let Ok(p) = Patterns::new(&lines) {
            let _ = p.matches_or_parent_matches(&path);
        }
        let _ = Patterns::from_ignore_file(&lines.join("\n"));
    }

    #[test]
    fn property_paths_print_and_parse_back(path in arb_path()) {
        let text = path.to_string();
        prop_assert_eq!(PropertyPath::parse(&text), Some(path));
    }

    #[test]
    fn unknowns_left_out_go_back_exactly(value in arb_value(), seed in any::<u64>()) {
        // Pick unknown positions, leave them out as decoding does, restore them.
        let mut unknowns = BTreeSet::new();
        let mut original = value.clone();
        mark(&mut original, &PropertyPath::default(), seed, &mut unknowns);
        let mut decoded = original.clone();
        strip(&mut decoded, &PropertyPath::default(), &unknowns);
        PropertyPath::restore_all(&unknowns, &mut decoded, &json!("U"));
        prop_assert_eq!(decoded, original);
    }
}

fn arb_path() -> impl Strategy<Value = PropertyPath> {
    (
        "[a-z][a-zA-Z]{0,8}",
        prop::collection::vec(
            prop_oneof![
                (0usize..20).prop_map(Segment::Index),
                "[a-z][a-zA-Z0-9]{0,6}".prop_map(Segment::Key),
                "[a-z.:/\"]{1,8}"
                    .prop_filter("a quoted key without its closing sequence", |k| !k
                        .contains("\"]"))
                    .prop_map(Segment::Key),
            ],
            0..4,
        ),
    )
        .prop_map(|(root, segs)| {
            let mut p = PropertyPath::root_key(&root);
            for s in segs {
                p = match s {
                    Segment::Index(i) => p.index(i),
                    Segment::Key(k) => p.key(&k),
                };
            }
            p
        })
}

fn arb_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        "[a-z]{0,4}".prop_map(Json::String),
        any::<bool>().prop_map(Json::Bool),
        (0i64..100).prop_map(|n| json!(n)),
    ];
    let inner = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Json::Array),
            prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
                .prop_map(|m| Json::Object(m.into_iter().collect())),
        ]
    });
    prop::collection::btree_map("[a-z]{1,3}", inner, 0..4)
        .prop_map(|m| Json::Object(m.into_iter().collect()))
}

/// Turns some leaves into "U" (an unknown), recording their paths; never the root.
fn mark(v: &mut Json, path: &PropertyPath, seed: u64, out: &mut BTreeSet<PropertyPath>) {
    let pick = |p: &PropertyPath| {
        let h = p
            .to_string()
            .bytes()
            .fold(seed, |h, b| h.rotate_left(5) ^ b as u64);
        h % 3 == 0
    };
    match v {
        Json::Object(m) => {
            for (k, x) in m.iter_mut() {
                let p = if path.segments().is_empty() {
                    PropertyPath::root_key(k)
                } else {
                    path.key(k)
                };
                if !x.is_object() && !x.is_array() && pick(&p) {
                    *x = json!("U");
                    out.insert(p);
                } else {
                    mark(x, &p, seed, out);
                }
            }
        }
        Json::Array(a) => {
            for (i, x) in a.iter_mut().enumerate() {
                let p = path.index(i);
                if !x.is_object() && !x.is_array() && pick(&p) {
                    *x = json!("U");
                    out.insert(p);
                } else {
                    mark(x, &p, seed, out);
                }
            }
        }
        _ => {}
    }
}

/// What decoding does: unknown members are absent, unknown elements are left out.
fn strip(v: &mut Json, path: &PropertyPath, unknowns: &BTreeSet<PropertyPath>) {
    match v {
        Json::Object(m) => {
            let keys: Vec<String> = m.keys().cloned().collect();
            for k in keys {
                let p = if path.segments().is_empty() {
                    PropertyPath::root_key(&k)
                } else {
                    path.key(&k)
                };
                if unknowns.contains(&p) {
                    m.remove(&k);
                } else if let Some(x) = m.get_mut(&k) {
                    strip(x, &p, unknowns);
                }
            }
        }
        Json::Array(a) => {
            let mut kept = Vec::new();
            for (i, mut x) in std::mem::take(a).into_iter().enumerate() {
                let p = path.index(i);
                if !unknowns.contains(&p) {
                    strip(&mut x, &p, unknowns);
                    kept.push(x);
                }
            }
            *a = kept;
        }
        _ => {}
    }
}
