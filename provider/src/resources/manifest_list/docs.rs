//! The ManifestList's documentation beyond its schema: how an import works (its
//! examples are files in docs/examples/).

/// The Import section of the resource's page, before its `import` blocks.
const IMPORT: &str = "A manifest list is imported by one of its tags; its children become \
`sources` (by digest), and `media_type` is recorded only where leaving it unset would give \
another one:\n\n```shell\nterraform import multiarch_manifest_list.app10 \
123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10\n```\n\nTerraform compares attributes \
literally: write the `sources` the import recorded (`terraform state show`) for a plan with no \
changes, or expect one in-place update that pushes the same index.\n";

/// The Import section of the resource's page.
pub(super) fn import() -> String {
    format!(
        "{IMPORT}\n{}",
        super::super::tf_import_blocks(
            "multiarch_manifest_list.app10",
            "123456789012.dkr.ecr.us-east-1.amazonaws.com/app:10",
            " With an `import` block and no resource, `terraform plan -generate-config-out=generated.tf` writes the resource with the recorded `tags` and `sources`: the plan after it imports with no change.",
        )
    )
}
