//! Registry-style documentation generated from the schema, so it never drifts from the types:
//!
//! - Terraform (the layout `tfplugindocs` writes): `index.md` (the provider block, ECR
//!   credentials and IAM permissions), `resources/image.md`, `resources/manifest_list.md`,
//!   each with Example Usage, Schema (Required / Optional / Read-Only, nested blocks) and
//!   Import; `data-sources/image.md` (the functions, `docs/functions.rs`);
//! - Pulumi (the layout of a package's registry docs): `_index.md` (overview, example,
//!   resource reference) and `installation-configuration.md`.
//!
//! `pulumi-resource-multiarch --docs docs` (`make docs`) writes them; a test fails when the
//! checked-in copies are stale, and another when a schema item has no description.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value as Json};

use crate::model::ResourceModel;
use crate::resources::{all, image::Image, Resource};
use crate::schema::{package_schema, PACKAGE, RELEASE_URL, REPOSITORY};
use crate::terraform::schema::{self as tf, Attr, Block, Ty};
use examples::{PROVIDER_TF_EXAMPLE, PULUMI_YAML_EXAMPLE};

#[path = "docs_terraform.rs"]
mod terraform;
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The release URL with the version filled in, as Pulumi computes it.
pub fn release_url() -> String {
    RELEASE_URL.replace("${VERSION}", VERSION)
}

/// Every page: (path relative to the docs directory, contents). Each registered resource
/// has its Terraform page, `resources/<name>.md`, from its own docs.
pub fn pages() -> Vec<(String, String)> {
    let schema = package_schema();
    let mut pages = vec![("index.md".to_owned(), tf_index(&schema))];
    for r in all() {
        let model = r.model();
        let docs = r.docs();
        let name = model
            .tf_name
            .strip_prefix("multiarch_")
            .unwrap_or(model.tf_name);
        pages.push((
            format!("resources/{name}.md"),
            tf_resource(model, &schema, docs.examples, &docs.import),
        ));
    }
    pages.extend(functions::tf_pages(&schema));
    pages.push(("_index.md".to_owned(), pulumi_index(&schema)));
    pages.push((
        "installation-configuration.md".to_owned(),
        pulumi_install(&schema),
    ));
    pages
}

/// Writes every page under `dir`; returns the paths written.
pub fn write(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for (rel, text) in pages() {
        let path = dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        out.push(path);
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// Shared prose.

/// The AWS credentials and IAM permissions sections (kept beside the AWS code).
fn ecr_section(h: &str) -> String {
    crate::ecr::docs::section(h)
}

const PLATFORMS_NOTE: &str = "When `platforms` is omitted, BuildKit builds for its own \
platform only (the builder's native one, e.g. `linux/amd64` on an Intel host): a \
single-platform image. For ECS on Graviton and Intel list both `linux/amd64` and \
`linux/arm64`.";

/// The condition under which an optional input is required (`x-required-when` on the field).
fn required_when<'m>(model: Option<&'m ResourceModel>, key: &str) -> Option<&'m str> {
    model?
        .inputs
        .iter()
        .find(|f| f.key == key)?
        .required_when
        .as_deref()
}

// ---------------------------------------------------------------------------------------
// Terraform pages.

fn front_matter(title: &str, description: &str) -> String {
    let mut s = format!("---\npage_title: \"{title}\"\nsubcategory: \"\"\ndescription: |-\n");
    for line in description.lines() {
        let _ = writeln!(s, "  {line}");
    }
    s.push_str("---\n\n");
    s
}

/// The Pulumi schema of an object's property, by its JSON key (`buildArgs`).
fn pulumi_prop<'a>(props: Option<&'a Map<String, Json>>, key: &str) -> Option<&'a Json> {
    props.and_then(|p| p.get(key))
}

/// The properties of the object type a property refers to (directly or as list items).
fn nested_props<'a>(schema: &'a Json, spec: Option<&'a Json>) -> Option<&'a Map<String, Json>> {
    let spec = spec?;
    let r = spec
        .get("$ref")
        .or_else(|| spec.get("items").and_then(|i| i.get("$ref")))
        .or_else(|| spec.get("additionalProperties").and_then(|i| i.get("$ref")))?
        .as_str()?;
    let token = r.strip_prefix("#/types/")?;
    schema["types"][token]["properties"].as_object()
}

/// Enum values of a property (through its `$ref`), with their descriptions.
fn enum_values<'a>(schema: &'a Json, spec: Option<&'a Json>) -> Option<&'a Vec<Json>> {
    let r = spec?.get("$ref")?.as_str()?;
    let token = r.strip_prefix("#/types/")?;
    schema["types"][token]["enum"].as_array()
}

/// The default of an optional argument, as documentation states it.
fn default_of(spec: Option<&Json>, ty_is_bool: bool) -> Option<String> {
    match spec.and_then(|s| s.get("default")) {
        Some(d) => Some(format!("`{d}`")),
        // Every boolean argument without a declared default is a plain `false`.
        None if ty_is_bool => Some("`false`".into()),
        None => None,
    }
}

fn tf_type(ty: &Ty) -> String {
    fn elem(t: &Ty) -> String {
        match t {
            Ty::Object(_) => "Object".into(),
            t => tf_type(t),
        }
    }
    match ty {
        Ty::String => "String".into(),
        Ty::Bool => "Boolean".into(),
        Ty::Number => "Number".into(),
        Ty::List(t) => format!("List of {}", elem(t)),
        Ty::Set(t) => format!("Set of {}", elem(t)),
        Ty::Map(t) => format!("Map of {}", elem(t)),
        Ty::Object(_) => "Object".into(),
    }
}

/// Object members of a type, when it has any (objects, lists/sets/maps of objects).
fn object_members(ty: &Ty) -> Option<&Vec<Attr>> {
    match ty {
        Ty::Object(a) => Some(a),
        Ty::List(t) | Ty::Set(t) | Ty::Map(t) => match t.as_ref() {
            Ty::Object(a) => Some(a),
            _ => None,
        },
        _ => None,
    }
}

/// One nested schema still to be written after the current list.
struct Pending<'a> {
    anchor: String,
    title: String,
    attrs: &'a [Attr],
    props: Option<&'a Map<String, Json>>,
    read_only: bool,
    /// The enclosing object is a block: its objects are blocks too.
    block: bool,
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// `- `name` (Type, Sensitive) Description. Default: … (see below …)`
#[allow(clippy::too_many_arguments)]
fn tf_attr_line<'a>(
    out: &mut String,
    schema: &'a Json,
    a: &'a Attr,
    spec: Option<&'a Json>,
    prefix: &str,
    block: bool,
    read_only: bool,
    required_when: Option<&str>,
    pending: &mut Vec<Pending<'a>>,
) {
    let mut kind = if block {
        let list = if matches!(a.ty, Ty::List(_)) {
            "Block List"
        } else {
            "Block"
        };
        if a.required {
            format!("{list}, Required")
        } else {
            format!("{list}, Optional")
        }
    } else {
        match (&a.ty, read_only) {
            (Ty::Object(_), false) => "Attributes".to_owned(),
            (Ty::List(t), false) if matches!(t.as_ref(), Ty::Object(_)) => {
                "Attributes List".to_owned()
            }
            (Ty::Set(t), false) if matches!(t.as_ref(), Ty::Object(_)) => {
                "Attributes Set".to_owned()
            }
            (Ty::Map(t), false) if matches!(t.as_ref(), Ty::Object(_)) => {
                "Attributes Map".to_owned()
            }
            (ty, _) => tf_type(ty),
        }
    };
    if a.sensitive {
        kind.push_str(", Sensitive");
    }
    let mut text = one_line(&a.description);
    if let Some(cond) = required_when {
        let _ = write!(text, " Required when {cond}.");
    }
    if let Some(values) = enum_values(schema, spec) {
        let list: Vec<String> = values
            .iter()
            .map(|v| {
                let name = format!("`{}`", v["value"].as_str().unwrap_or_default());
                match v.get("description").and_then(Json::as_str) {
                    Some(d) => format!("{name} ({})", one_line(d).trim_end_matches('.')),
                    None => name,
                }
            })
            .collect();
        let _ = write!(text, " Possible values: {}.", list.join("; "));
    }
    if !a.required && !read_only {
        if let Some(d) = default_of(spec, a.ty == Ty::Bool) {
            let _ = write!(text, " Default: {d}.");
        }
    }
    if a.key == "platforms" && prefix.is_empty() && !read_only {
        let _ = write!(text, " {PLATFORMS_NOTE}");
    }
    let mut text = words::terraform(&text, &words::camel_keys(schema));
    let path = if prefix.is_empty() {
        a.name.clone()
    } else {
        format!("{prefix}.{}", a.name)
    };
    if let Some(members) = object_members(&a.ty) {
        let anchor = format!(
            "{}--{}",
            if block { "nestedblock" } else { "nestedatt" },
            path.replace('.', "--")
        );
        let _ = write!(text, " (see [below for nested schema](#{anchor}))");
        pending.push(Pending {
            anchor,
            title: path,
            attrs: members,
            props: nested_props(schema, spec),
            read_only,
            block,
        });
    }
    let _ = writeln!(out, "- `{}` ({kind}) {}", a.name, text.trim());
}

/// A group of a schema list: its label and which attributes it holds (the flag: the
/// enclosing object is read-only).
type Group = (&'static str, fn(&Attr, bool) -> bool);

const GROUPS: [Group; 3] = [
    ("Required", |a, read_only| !read_only && a.required),
    ("Optional", |a, read_only| !read_only && !a.required),
    ("Read-Only", |_, read_only| read_only),
];

fn tf_nested<'a>(out: &mut String, schema: &'a Json, mut pending: Vec<Pending<'a>>) {
    let mut i = 0;
    while i < pending.len() {
        let (anchor, title, attrs, props, read_only, block) = {
            let p = &pending[i];
            (
                p.anchor.clone(),
                p.title.clone(),
                p.attrs,
                p.props,
                p.read_only,
                p.block,
            )
        };
        let _ = write!(
            out,
            "\n<a id=\"{anchor}\"></a>\n### Nested Schema for `{title}`\n"
        );
        let mut more = Vec::new();
        for (label, keep) in GROUPS {
            let members: Vec<&Attr> = attrs.iter().filter(|a| keep(a, read_only)).collect();
            if members.is_empty() {
                continue;
            }
            let _ = writeln!(out, "\n{label}:\n");
            for a in members {
                tf_attr_line(
                    out,
                    schema,
                    a,
                    pulumi_prop(props, &a.key),
                    &title,
                    block && !read_only && tf::is_inner_block(a),
                    read_only,
                    None,
                    &mut more,
                );
            }
        }
        pending.extend(more);
        i += 1;
    }
}

/// The `## Schema` section of a block (a resource or the provider).
fn tf_schema(
    out: &mut String,
    schema: &Json,
    block: &Block,
    inputs: Option<&Map<String, Json>>,
    outputs: Option<&Map<String, Json>>,
    model: Option<&ResourceModel>,
) {
    let resource = model.is_some();
    out.push_str("## Schema\n");
    let mut pending = Vec::new();
    for (label, _) in GROUPS {
        let attrs: Vec<&Attr> = block
            .attrs
            .iter()
            .filter(|a| match label {
                "Required" => a.required,
                "Optional" => a.optional,
                _ => a.is_output(),
            })
            .collect();
        if attrs.is_empty() {
            continue;
        }
        let _ = writeln!(out, "\n### {label}\n");
        for a in attrs {
            let read_only = a.is_output();
            let spec = if read_only {
                pulumi_prop(outputs, &a.key)
            } else {
                pulumi_prop(inputs, &a.key)
            };
            tf_attr_line(
                out,
                schema,
                a,
                spec,
                "",
                tf::is_block(a, resource),
                read_only,
                required_when(model, &a.key).filter(|_| !read_only),
                &mut pending,
            );
        }
    }
    tf_nested(out, schema, pending);
}

fn tf_index(schema: &Json) -> String {
    let mut s = front_matter(
        "multiarch Provider",
        "Multi-architecture container images: BuildKit builds for several platforms and manifest\nlists, pushed to ECR (IAM tokens, nothing stored) or any OCI registry.",
    );
    let _ = write!(
        s,
        "\
# multiarch Provider

One image tag that serves every CPU: `multiarch_image` builds a Dockerfile through BuildKit
for several platforms and pushes one index under a set of tags; `multiarch_manifest_list`
stitches existing per-architecture images into one manifest list / OCI image index. ECS
Fargate tasks on Graviton (`ARM64`) and Intel (`X86_64`) then pull the same tag.

Plan is a preview: it builds (so Dockerfile errors show) and resolves sources, but writes
nothing to any registry. Every change is an in-place update; nothing is ever replaced, and a
tag another resource still uses is never deleted.

{requirements}
{installation}
## Example Usage

```terraform
{PROVIDER_TF_EXAMPLE}```

{ecr}
",
        requirements = terraform::REQUIREMENTS,
        installation = terraform::installation(VERSION, &release_url()),
        ecr = words::terraform(
            &words::without_pulumi_blocks(&ecr_section("##")),
            &words::camel_keys(schema)
        ),
    );
    let block = tf::provider_block();
    let props = schema["config"]["variables"].as_object();
    tf_schema(&mut s, schema, &block, props, None, None);
    s
}

fn tf_resource(model: &ResourceModel, schema: &Json, examples: &[&str], import: &str) -> String {
    let block = tf::resource_block(model);
    let r = &schema["resources"][model.token];
    let desc = one_line(r["description"].as_str().unwrap_or_default());
    let mut s = front_matter(&format!("{} Resource - multiarch", model.tf_name), &desc);
    let _ = write!(
        s,
        "# {} (Resource)\n\n{desc}\n\n{}\n",
        model.tf_name,
        examples::terraform_section(examples),
    );
    tf_schema(
        &mut s,
        schema,
        &block,
        r["inputProperties"].as_object(),
        r["properties"].as_object(),
        Some(model),
    );
    let _ = write!(s, "\n## Import\n\n{import}");
    s
}

// ---------------------------------------------------------------------------------------
// Pulumi pages.

fn pulumi_front(title: &str, meta: &str) -> String {
    format!("---\ntitle: {title}\nmeta_desc: {meta}\nlayout: package\n---\n\n")
}

fn pulumi_type(schema: &Json, spec: &Json) -> String {
    if let Some(r) = spec.get("$ref").and_then(Json::as_str) {
        let token = r.strip_prefix("#/types/").unwrap_or(r);
        let name = token.rsplit(':').next().unwrap_or(token);
        return match schema["types"][token]["enum"].as_array() {
            Some(values) => values
                .iter()
                .map(|v| format!("\"{}\"", v["value"].as_str().unwrap_or_default()))
                .collect::<Vec<_>>()
                .join(" \\| "),
            None => format!("[{name}](#{})", name.to_lowercase()),
        };
    }
    if let Some(alts) = spec.get("oneOf").and_then(Json::as_array) {
        let alts: Vec<String> = alts.iter().map(|a| pulumi_type(schema, a)).collect();
        return format!("({})", alts.join(" \\| "));
    }
    match spec["type"].as_str().unwrap_or("string") {
        "array" => format!("{}[]", pulumi_type(schema, &spec["items"])),
        "object" => format!(
            "map({})",
            pulumi_type(schema, &spec["additionalProperties"])
        ),
        t => t.to_owned(),
    }
}

fn pulumi_table(
    out: &mut String,
    schema: &Json,
    props: &Map<String, Json>,
    required: &[Json],
    with_default: bool,
    model: Option<&ResourceModel>,
) {
    if with_default {
        out.push_str(
            "| property | type | required | default | description |\n|---|---|---|---|---|\n",
        );
    } else {
        out.push_str("| property | type | description |\n|---|---|---|\n");
    }
    for (name, spec) in props {
        let mut desc = one_line(spec["description"].as_str().unwrap_or_default());
        if let Some(cond) = required_when(model, name) {
            let _ = write!(desc, " Required when {cond}.");
        }
        let desc = desc.replace('|', "\\|");
        let mut ty = pulumi_type(schema, spec);
        if spec.get("secret") == Some(&Json::Bool(true)) {
            ty.push_str(" (secret)");
        }
        if with_default {
            let req = required.iter().any(|r| r == name);
            let def = if req {
                String::new()
            } else {
                default_of(Some(spec), spec["type"] == "boolean").unwrap_or_default()
            };
            let _ = writeln!(
                out,
                "| `{name}` | {ty} | {} | {def} | {desc} |",
                if req { "yes" } else { "no" }
            );
        } else {
            let _ = writeln!(out, "| `{name}` | {ty} | {desc} |");
        }
    }
}

/// A resource's inputs as a Markdown table (property, type, required, default,
/// description).
pub fn inputs_table(schema: &Json, token: &str) -> String {
    let r = &schema["resources"][token];
    let empty = vec![];
    let required = r["requiredInputs"].as_array().unwrap_or(&empty);
    let mut s = String::new();
    let model = all()
        .iter()
        .find(|r| r.model().token == token)
        .map(|r| r.model());
    if let Some(p) = r["inputProperties"].as_object() {
        pulumi_table(&mut s, schema, p, required, true, model);
    }
    s
}

fn pulumi_index(schema: &Json) -> String {
    let mut s = pulumi_front(
        "multiarch",
        "Multi-architecture container images for Pulumi: BuildKit builds and manifest lists pushed to ECR and other registries.",
    );
    let yaml = PULUMI_YAML_EXAMPLE
        .replace("RELEASE_URL", &release_url())
        .replace("VERSION", VERSION);
    let _ = write!(
        s,
        "\
The multiarch provider publishes one image tag that serves every CPU. `multiarch:index:Image`
builds a Dockerfile through BuildKit for several platforms and pushes one index under a set
of tags; `multiarch:index:ManifestList` stitches existing per-architecture images into one
manifest list / OCI image index. ECS Fargate tasks on Graviton (`ARM64`) and Intel
(`X86_64`) then pull the same tag. ECR needs no credentials in the program: tokens come from
the AWS credential chain when an operation needs them and are never stored.

Preview builds the image (without pushing) and resolves sources, so errors show early, but
writes nothing to any registry. Every change is an in-place update; nothing is replaced, and
a tag another resource still uses is never deleted.

See [Installation & Configuration](./installation-configuration.md) to install the plugin.

## Example

```yaml
{yaml}```

## Resources
"
    );
    for (token, r) in schema["resources"].as_object().into_iter().flatten() {
        let _ = write!(
            s,
            "\n### {token}\n\n{}\n\nInputs:\n\n{}",
            one_line(r["description"].as_str().unwrap_or_default()),
            inputs_table(schema, token)
        );
        if token == Image::TOKEN {
            let _ = write!(s, "\n{PLATFORMS_NOTE}\n");
        }
        s.push_str("\nOutputs (besides the inputs):\n\n");
        let inputs = r["inputProperties"].as_object();
        let outputs: Map<String, Json> = r["properties"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !inputs.is_some_and(|i| i.contains_key(*k)))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pulumi_table(&mut s, schema, &outputs, &[], false, None);
        if let Some(r) = all().iter().find(|r| r.model().token == token) {
            s.push_str(&examples::pulumi_section(r.docs().examples, "####"));
        }
    }
    s.push_str(&functions::pulumi_section(schema));
    s.push_str("\n## Types\n");
    for (token, t) in schema["types"].as_object().into_iter().flatten() {
        let name = token.rsplit(':').next().unwrap_or(token);
        let _ = write!(
            s,
            "\n### {name}\n\n{}\n\n",
            one_line(t["description"].as_str().unwrap_or_default())
        );
        if let Some(values) = t["enum"].as_array() {
            s.push_str("| value | description |\n|---|---|\n");
            for v in values {
                let _ = writeln!(
                    s,
                    "| `{}` | {} |",
                    v["value"].as_str().unwrap_or_default(),
                    one_line(v["description"].as_str().unwrap_or_default())
                );
            }
        } else if let Some(p) = t["properties"].as_object().filter(|p| !p.is_empty()) {
            let empty = vec![];
            let required = t["required"].as_array().unwrap_or(&empty);
            pulumi_table(&mut s, schema, p, required, true, None);
        }
    }
    s
}

fn pulumi_install(schema: &Json) -> String {
    let mut s = pulumi_front(
        "multiarch Installation & Configuration",
        "Install the multiarch resource plugin and configure registries, the BuildKit endpoint and AWS settings.",
    );
    let url = release_url();
    let _ = write!(
        s,
        "\
## Installation

The provider is one binary, `pulumi-resource-multiarch`, released as
`pulumi-resource-multiarch-v{VERSION}-linux-amd64.tar.gz` at {url}. The package schema
carries that location as `pluginDownloadURL` (`{RELEASE_URL}`), so Pulumi downloads the
plugin by itself when a program or SDK asks for version {VERSION}. To install it yourself:

```sh
pulumi plugin install resource {PACKAGE} {VERSION} --server {url}
# or from a downloaded file:
pulumi plugin install resource {PACKAGE} {VERSION} --file pulumi-resource-multiarch-v{VERSION}-linux-amd64.tar.gz
```

A Pulumi YAML program names the release with the resource options `version: {VERSION}` and
`pluginDownloadURL: {url}`; `pulumi up` then installs the plugin by itself. A project can
also point at a directory holding the binary (a local build, an unpacked tarball) in
`Pulumi.yaml`:

```yaml
plugins:
  providers:
    - name: {PACKAGE}
      path: /opt/multiarch   # holds pulumi-resource-multiarch
```

SDKs for TypeScript/JavaScript, Python and Go are generated from the schema into the
repository's `sdk/` directory ({REPOSITORY}); each release ships them as packages (an npm
tarball, a Python wheel and sdist, a Go module at the release's version tag).

## Requirements

- A BuildKit endpoint for `multiarch:index:Image`: the local Docker Engine (default), or a
  standalone buildkitd on `unix://` or `tcp://` (with `builderTls`). Builds for foreign
  platforms need QEMU binfmt handlers on the builder's host (or native builders).
- `multiarch:index:ManifestList` talks only to registries.

## Configuration

Set these with `pulumi config set multiarch:<key>` (use `--secret` for passwords and keys,
`--path` for list entries), in the stack's `config:` block, or on an explicit provider
resource:

"
    );
    let mut config = Map::new();
    for (k, v) in schema["config"]["variables"]
        .as_object()
        .into_iter()
        .flatten()
    {
        config.insert(format!("{PACKAGE}:{k}"), v.clone());
    }
    pulumi_table(&mut s, schema, &config, &[], false, None);
    s.push_str("\nNested types:\n");
    for name in [
        "RegistryConfig",
        "EcrConfig",
        "BuilderTlsConfig",
        "AwsConfig",
        "AssumeRoleConfig",
    ] {
        let t = &schema["types"][format!("{PACKAGE}:index:{name}")];
        let _ = write!(
            s,
            "\n### {name}\n\n{}\n\n",
            one_line(t["description"].as_str().unwrap_or_default())
        );
        let empty = vec![];
        let required = t["required"].as_array().unwrap_or(&empty);
        if let Some(p) = t["properties"].as_object() {
            pulumi_table(&mut s, schema, p, required, true, None);
        }
    }
    let _ = write!(
        s,
        "
Example (a plain-HTTP registry on the host and an explicit AWS region):

```yaml
config:
  multiarch:registries:
    - address: 127.0.0.1:5000
      insecure: true
  multiarch:aws:
    region: us-east-1
```

{}",
        ecr_section("##")
    );
    s
}

mod examples;
mod functions;

#[cfg(test)]
mod tests;
mod words;
