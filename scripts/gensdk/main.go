// Command gensdk writes the Node.js, Python and Go SDKs from schema/schema.json with Pulumi's
// own generators (github.com/pulumi/pulumi/pkg/v3/codegen/{nodejs,python,go}), called exactly
// as each language host's GeneratePackage calls them for `pulumi package gen-sdk`, with the
// same tool names in the files' headers. The language hosts themselves cannot be built here
// (their modules are not served by the module proxy), the generators can.
//
//	gensdk -schema schema/schema.json -out sdk [-languages nodejs,python,go]
//
// Each sdk/<language> directory is replaced as a whole, like `pulumi package gen-sdk` does.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/blang/semver"
	gogen "github.com/pulumi/pulumi/pkg/v3/codegen/go"
	"github.com/pulumi/pulumi/pkg/v3/codegen/nodejs"
	"github.com/pulumi/pulumi/pkg/v3/codegen/python"
	"github.com/pulumi/pulumi/pkg/v3/codegen/schema"
)

// noLoader: the multiarch schema references no other package.
type noLoader struct{}

var errNoRef = errors.New("the multiarch schema references no other package")

func (noLoader) LoadPackage(string, *semver.Version) (*schema.Package, error) { return nil, errNoRef }
func (noLoader) LoadPackageV2(context.Context, *schema.PackageDescriptor) (*schema.Package, error) {
	return nil, errNoRef
}

func (noLoader) LoadPackageReference(string, *semver.Version) (schema.PackageReference, error) {
	return nil, errNoRef
}

func (noLoader) LoadPackageReferenceV2(
	context.Context, *schema.PackageDescriptor,
) (schema.PackageReference, error) {
	return nil, errNoRef
}

func generate(language string, spec schema.PackageSpec) (map[string][]byte, error) {
	// A fresh binding per language: the generators record their language info in the package.
	loader := noLoader{}
	pkg, diags, err := schema.BindSpec(spec, loader, schema.ValidationOptions{})
	if err != nil {
		return nil, err
	}
	if diags.HasErrors() {
		return nil, diags
	}
	switch language {
	case "nodejs":
		return nodejs.GeneratePackage("pulumi-language-nodejs", pkg, nil, nil, false, loader)
	case "python":
		return python.GeneratePackage("pulumi-language-python", pkg, nil, loader)
	case "go":
		return gogen.GeneratePackage("pulumi-language-go", pkg, nil)
	}
	return nil, fmt.Errorf("unknown language %q", language)
}

func run() error {
	schemaPath := flag.String("schema", "schema/schema.json", "the package schema")
	out := flag.String("out", "sdk", "where sdk/<language> directories are written")
	languages := flag.String("languages", "nodejs,python,go", "comma-separated languages")
	flag.Parse()

	data, err := os.ReadFile(*schemaPath)
	if err != nil {
		return err
	}
	var spec schema.PackageSpec
	if err := json.Unmarshal(data, &spec); err != nil {
		return fmt.Errorf("%s: %w", *schemaPath, err)
	}
	for _, language := range strings.Split(*languages, ",") {
		files, err := generate(language, spec)
		if err != nil {
			return fmt.Errorf("%s: %w", language, err)
		}
		dir := filepath.Join(*out, language)
		if err := os.RemoveAll(dir); err != nil {
			return err
		}
		for name, body := range files {
			p := filepath.Join(dir, filepath.FromSlash(name))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(p, body, 0o644); err != nil {
				return err
			}
		}
		fmt.Fprintf(os.Stderr, "gensdk: %s: %d files in %s\n", language, len(files), dir)
	}
	return nil
}

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "gensdk:", err)
		os.Exit(1)
	}
}
