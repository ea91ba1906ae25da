//! The Image's documentation beyond its schema: how an import works (its
//! examples are files in docs/examples/).

/// The Import section of the resource's page, before its `import` blocks.
const IMPORT: &str = "An Image is imported by one of its tags: the state gets the tag, \
the platforms and the digests the registry holds.\n\n```shell\nterraform import \
multiarch_image.app 123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1\n```\n\nA registry \
cannot tell what an image was built from, so the configuration's build inputs (`context`, \
`dockerfile`, `build_args`, …) show as one in-place update on the next plan. That update \
**builds nothing**: it records them and the context's hash (from then on a changed file is a \
change), points tags added since the import at the imported image and removes dropped ones; \
`digest` stays the imported one. Only another set of `platforms` (or `push = false`) builds.\n";

/// The Import section of the resource's page.
pub(super) fn import() -> String {
    format!(
        "{IMPORT}\n{}",
        super::super::tf_import_blocks(
            "multiarch_image.app",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:v1",
            " `plan -generate-config-out` writes an Image without its build inputs, which a registry does not hold: that plan stops at the missing `context`; add the `context` block to the generated resource and plan again.",
        )
    )
}
