use super::*;

fn inputs(tags: &[&str], sources: &[&str]) -> ManifestListInputs {
    ManifestListInputs {
        tags: tags.iter().map(|s| s.to_string()).collect(),
        sources: sources.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

const R: &str = "127.0.0.1:5000/app";

/// The input keys the model-driven Diff reports.
fn input_changes(a: &ManifestListInputs, b: &ManifestListInputs) -> Vec<String> {
    let model = crate::model::ResourceModel::new::<ManifestListInputs, ManifestListState>(
        ManifestList::TOKEN,
        ManifestList::TF_NAME,
        "",
    );
    let json = |v: &ManifestListInputs| {
        serde_json::to_value(v)
            .unwrap()
            .as_object()
            .unwrap()
            .clone()
    };
    crate::model::changes(&model.inputs, &json(a), &json(b))
}

#[test]
fn reordering_is_no_change() {
    let a = inputs(
        &[&format!("{R}:10"), &format!("{R}:latest")],
        &[&format!("{R}:a"), &format!("{R}:b")],
    );
    let b = inputs(
        &[&format!("{R}:latest"), &format!("{R}:10")],
        &[&format!("{R}:b"), &format!("{R}:a")],
    );
    assert!(input_changes(&a, &b).is_empty());
    let c = inputs(
        &[&format!("{R}:10")],
        &[&format!("{R}:b"), &format!("{R}:a")],
    );
    assert_eq!(input_changes(&a, &c), ["tags"]);
}

#[test]
fn check_names_each_bad_property() {
    let mut i = inputs(
        &["app:10", &format!("{R}:ok")],
        &[&format!("{R}:a"), &format!("{R}:a"), "nohost"],
    );
    i.platform_overrides
        .insert(format!("{R}:a"), "linux/sparc".into());
    i.platform_overrides
        .insert("other".into(), "linux/arm64".into());
    let f = ManifestList::check(&i, &BTreeSet::new());
    let props: Vec<&str> = f.iter().map(|f| f.property.as_str()).collect();
    assert!(props.contains(&"tags[0]"), "{f:?}");
    assert!(props.contains(&"sources[1]"), "{f:?}");
    assert!(props.contains(&"sources[2]"), "{f:?}");
    assert!(
        props.contains(&"platformOverrides[\"127.0.0.1:5000/app:a\"]"),
        "{f:?}"
    );
    assert!(props.contains(&"platformOverrides.other"), "{f:?}");
    assert!(!props.contains(&"tags[1]"));
}

#[test]
fn missing_lists_fail_unless_unknown() {
    let f = ManifestList::check(&inputs(&[], &[]), &BTreeSet::new());
    assert_eq!(f.len(), 2);
    let unknown: BTreeSet<_> = [
        PropertyPath::root_key("tags"),
        PropertyPath::root_key("sources"),
    ]
    .into();
    assert!(ManifestList::check(&inputs(&[], &[]), &unknown).is_empty());
}
