use super::*;
use serde_json::json;

fn config() -> ObjectType {
    object_model::<crate::config::ProviderConfig>()
}

fn field<'a>(fields: &'a [Field], key: &str) -> &'a Field {
    fields.iter().find(|f| f.key == key).unwrap()
}

#[test]
fn facts_come_from_the_fields() {
    let c = config();
    let registries = field(&c.fields, "registries");
    let Kind::List(item) = &registries.kind else {
        panic!("registries: {:?}", registries.kind)
    };
    let Kind::Object(reg) = item.as_ref() else {
        panic!("registries items")
    };
    assert_eq!(reg.name.as_deref(), Some("RegistryConfig"));
    let pw = field(&reg.fields, "password");
    assert!(pw.secret && pw.diff_ignored && !pw.required);
    assert!(field(&reg.fields, "address").required);
    assert!(!field(&reg.fields, "username").secret);
}

#[test]
fn a_buildx_cache_string_with_a_credential_is_a_secret() {
    let image = object_model::<crate::resources::image::ImageInputs>();
    let value = json!({
        "cacheFrom": ["type=gha,scope=app,token=hunter2", "type=gha,scope=app"],
        "cacheTo": [{"gha": {"token": "t"}}, "type=s3,bucket=b,region=r,session_token=s"],
    });
    let got: Vec<String> = secret_paths(&image.fields, value.as_object().unwrap())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(got, ["cacheFrom[0]", "cacheTo[0].gha.token", "cacheTo[1]"]);
}

#[test]
fn secret_paths_at_any_depth() {
    let c = config();
    let value = json!({
        "registries": [
            {"address": "a.example", "username": "u", "password": "pw"},
            {"address": "b.example"}
        ],
        "builderTls": {"cert": "c", "key": "k"},
    });
    let got: Vec<String> = secret_paths(&c.fields, value.as_object().unwrap())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(got, ["builderTls.key", "registries[0].password"]);
}

#[test]
fn ignored_fields_are_no_change_at_any_depth() {
    let c = config();
    let a = json!({"registries": [{"address": "a", "username": "u", "password": "one"}]});
    let b = json!({"registries": [{"address": "a", "username": "u", "password": "two"}]});
    let d = json!({"registries": [{"address": "b", "username": "u", "password": "two"}]});
    let m = |v: &Json| v.as_object().unwrap().clone();
    assert!(changes(&c.fields, &m(&a), &m(&b)).is_empty());
    assert_eq!(changes(&c.fields, &m(&a), &m(&d)), ["registries"]);
}

#[test]
fn sets_compare_as_sets() {
    let f = Field {
        key: "tags".into(),
        kind: Kind::List(Box::new(Kind::String)),
        description: String::new(),
        required: false,
        default: None,
        set: true,
        secret: false,
        diff_ignored: false,
        always_present: false,
        preview_unknown: false,
        secret_strings: None,
        terraform_name: None,
        required_when: None,
    };
    let m = |v: Json| v.as_object().unwrap().clone();
    let fields = [f];
    assert!(changes(
        &fields,
        &m(json!({"tags": ["a", "b"]})),
        &m(json!({"tags": ["b", "a"]}))
    )
    .is_empty());
    assert_eq!(
        changes(
            &fields,
            &m(json!({"tags": ["a"]})),
            &m(json!({"tags": ["a", "c"]}))
        ),
        ["tags"]
    );
    let mut list = fields[0].clone();
    list.set = false;
    assert_eq!(
        changes(
            &[list],
            &m(json!({"tags": ["a", "b"]})),
            &m(json!({"tags": ["b", "a"]}))
        ),
        ["tags"]
    );
}

fn image() -> ObjectType {
    object_model::<crate::resources::image::ImageInputs>()
}

#[test]
fn a_string_or_object_entry_is_a_union_whose_plain_kind_is_the_string() {
    let img = image();
    for (key, name) in [("cacheFrom", "CacheFrom"), ("cacheTo", "CacheTo")] {
        let f = field(&img.fields, key);
        assert!(
            !f.set && !f.secret,
            "{key}: a list, not a set; not secret as a whole"
        );
        let Kind::List(item) = &f.kind else {
            panic!("{key}: {:?}", f.kind)
        };
        let Kind::Union(alts) = item.as_ref() else {
            panic!("{key} items: {item:?}")
        };
        assert_eq!(alts.len(), 2);
        assert_eq!(alts[0], Kind::String);
        assert!(matches!(&alts[1], Kind::Object(o) if o.name.as_deref() == Some(name)));
        assert_eq!(item.plain(), &Kind::String);
    }
    // The named entry enum is its alternatives, not a type of its own.
    assert_eq!(Kind::String.plain(), &Kind::String);
}

#[test]
fn secrets_inside_a_union_are_found_at_their_path() {
    let img = image();
    let value = json!({
        "cacheTo": [
            "type=registry,ref=r.example/a:c",
            {"gha": {"scope": "app", "token": "t"}},
            {"s3": {"bucket": "b", "region": "r", "secretAccessKey": "k", "accessKeyId": "id"}}
        ],
        "cacheFrom": [{"s3": {"bucket": "b", "region": "r", "sessionToken": "st"}}],
    });
    let got: Vec<String> = secret_paths(&img.fields, value.as_object().unwrap())
        .iter()
        .map(|p| p.to_string())
        .collect();
    assert_eq!(
        got,
        [
            "cacheFrom[0].s3.sessionToken",
            "cacheTo[1].gha.token",
            "cacheTo[2].s3.secretAccessKey"
        ]
    );
}

#[test]
fn union_entries_compare_by_their_facts_and_in_order() {
    let img = image();
    let m = |v: Json| v.as_object().unwrap().clone();
    let s3 = |key: &str, bucket: &str| json!({"s3": {"bucket": bucket, "region": "r", "secretAccessKey": key}});
    // A rotated credential is no change; another bucket is.
    let a = m(json!({"cacheTo": ["r.example/a:c", s3("one", "b")]}));
    assert!(changes(
        &img.fields,
        &a,
        &m(json!({"cacheTo": ["r.example/a:c", s3("two", "b")]}))
    )
    .is_empty());
    assert_eq!(
        changes(
            &img.fields,
            &a,
            &m(json!({"cacheTo": ["r.example/a:c", s3("one", "c")]}))
        ),
        ["cacheTo"]
    );
    // A list: order matters, as for the strings.
    assert_eq!(
        changes(
            &img.fields,
            &a,
            &m(json!({"cacheTo": [s3("one", "b"), "r.example/a:c"]}))
        ),
        ["cacheTo"]
    );
    // The string and the equivalent typed entry are different values.
    let typed = m(json!({"cacheFrom": [{"registry": {"ref": "r.example/a:c"}}]}));
    let string = m(json!({"cacheFrom": ["type=registry,ref=r.example/a:c"]}));
    assert_eq!(changes(&img.fields, &typed, &string), ["cacheFrom"]);
}

#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct A {
    a: String,
}

#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct B {
    b: String,
}

#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
#[serde(untagged)]
enum NoString {
    A(A),
    B(B),
}

#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Unplain {
    x: Vec<NoString>,
}

#[test]
#[should_panic(expected = "a union needs exactly one scalar alternative")]
fn a_union_without_a_plain_form_fails_the_model() {
    object_model::<Unplain>();
}

#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
struct Typo {
    #[schemars(extend("x-sett" = true))]
    tags: Vec<String>,
}

#[test]
#[should_panic(expected = "unknown fact \"x-sett\"")]
fn a_misspelt_fact_fails_the_model() {
    object_model::<Typo>();
}
