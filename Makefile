# KafScale — every entry point lives here. `make help` lists them.
#
# Tools are installed into ./bin, pinned to exact versions, from the Go module proxy or
# Debian packages only. A stamp file per tool and version (bin/.stamp/<tool>-<version>) makes
# `make tools` idempotent and instant once everything is present; bumping a version below
# rebuilds just that tool.

SHELL := /usr/bin/env bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

BIN   := $(CURDIR)/bin
STAMP := $(BIN)/.stamp
export PATH := $(BIN):$(PATH)
export GOBIN := $(BIN)
# Tests look for their binaries here (tests/testenv); envtest reads KUBEBUILDER_ASSETS.
export KAFSCALE_TEST_BIN := $(BIN)
export KUBEBUILDER_ASSETS := $(BIN)

GO ?= go
space := $(subst ,, )

# --- pinned tool versions (see docs/development.md for why each was chosen) -------------
HELM_VERSION             := v3.22.0
HELM_KUBE_MINOR          := 34
CT_VERSION               := v3.14.0
CONTROLLER_TOOLS_VERSION := v0.23.0
HELM_DOCS_VERSION        := v1.14.2
STATICCHECK_VERSION      := v0.8.2
VERSITYGW_VERSION        := v1.8.0
# The monitoring.coreos.com CRDs the rendering tests install into kube-apiserver, and the Go
# API types they unmarshal into (the same version, pinned in go.mod).
PROMETHEUS_OPERATOR_VERSION := v0.85.0
# kube-apiserver and etcd are built from the modules pinned in their own go.mod files.
module_version = $(shell awk '{for (i = 1; i < NF; i++) if ($$i == "$(1)") {print $$(i+1); exit}}' $(2))
KUBE_VERSION             := $(call module_version,k8s.io/kubernetes,tests/tools/kube-apiserver/go.mod)
ETCD_VERSION             := $(call module_version,go.etcd.io/etcd/server/v3,tests/tools/etcd/go.mod)
# protoc-gen-go is the version of the protobuf runtime in go.mod, so generated code and the
# runtime always match; protoc-gen-go-grpc generates code for grpc >= 1.64 (go.mod has 1.82).
PROTOC_GEN_GO_VERSION      := $(call module_version,google.golang.org/protobuf,go.mod)
PROTOC_GEN_GO_GRPC_VERSION := v1.6.2
# Debian packages and the command each one provides (checked in the same order).
# chromium drives the console's browser tests (tests/console, through chromedp).
DEBIAN_PACKAGES          := kcat yamllint protobuf-compiler chromium
DEBIAN_COMMANDS          := kcat yamllint protoc chromium

TOOL_STAMPS := \
	$(STAMP)/helm-$(HELM_VERSION)-kube$(HELM_KUBE_MINOR) \
	$(STAMP)/ct-$(CT_VERSION) \
	$(STAMP)/controller-gen-$(CONTROLLER_TOOLS_VERSION) \
	$(STAMP)/helm-docs-$(HELM_DOCS_VERSION) \
	$(STAMP)/staticcheck-$(STATICCHECK_VERSION) \
	$(STAMP)/versitygw-$(VERSITYGW_VERSION) \
	$(STAMP)/prometheus-operator-crds-$(PROMETHEUS_OPERATOR_VERSION) \
	$(STAMP)/kube-apiserver-$(KUBE_VERSION)-v \
	$(STAMP)/etcd-$(ETCD_VERSION) \
	$(STAMP)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION) \
	$(STAMP)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION) \
	$(STAMP)/debian-packages-$(subst $(space),+,$(DEBIAN_PACKAGES))

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- tools -------------------------------------------------------------------------------
.PHONY: tools
tools: $(TOOL_STAMPS) ## install every pinned tool the tests need into ./bin

$(STAMP):
	@mkdir -p $@

# helm's default Kubernetes version (used by `helm template` and `helm lint` without a
# cluster) is set at link time, as helm's own release build does; without it it is v1.20 and
# the chart's kubeVersion constraint fails. It names the release we test against.
$(STAMP)/helm-$(HELM_VERSION)-kube$(HELM_KUBE_MINOR): | $(STAMP)
	$(GO) install -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION) \
	  -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$(HELM_KUBE_MINOR) \
	  -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor=$(HELM_KUBE_MINOR)" \
	  helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
	@touch $@

# chart-testing's version list is filtered on the proxy, so `go install` fails; download the
# module itself and build it in place. ct also needs its etc/ files (lint config, schema).
$(STAMP)/ct-$(CT_VERSION): | $(STAMP)
	dir=$$($(GO) mod download -json github.com/helm/chart-testing/v3@$(CT_VERSION) | sed -n 's/^\s*"Dir": "\(.*\)",$$/\1/p'); \
	  cd "$$dir" && $(GO) build -trimpath -ldflags "-X github.com/helm/chart-testing/v3/ct/cmd.Version=$(CT_VERSION)" -o $(BIN)/ct ./ct; \
	  mkdir -p $(BIN)/ct-etc && install -m 0644 "$$dir"/etc/chart_schema.yaml "$$dir"/etc/lintconf.yaml $(BIN)/ct-etc/
	@touch $@

$(STAMP)/controller-gen-$(CONTROLLER_TOOLS_VERSION): | $(STAMP)
	$(GO) install sigs.k8s.io/controller-tools/cmd/controller-gen@$(CONTROLLER_TOOLS_VERSION)
	@touch $@

$(STAMP)/helm-docs-$(HELM_DOCS_VERSION): | $(STAMP)
	$(GO) install github.com/norwoodj/helm-docs/cmd/helm-docs@$(HELM_DOCS_VERSION)
	@touch $@

$(STAMP)/staticcheck-$(STATICCHECK_VERSION): | $(STAMP)
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	@touch $@

$(STAMP)/versitygw-$(VERSITYGW_VERSION): | $(STAMP)
	$(GO) install github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
	@touch $@

# Only the CRD manifests of the module (example/prometheus-operator-crd/), into
# bin/prometheus-operator-crds/; the chart's tests install them next to our own CRDs.
$(STAMP)/prometheus-operator-crds-$(PROMETHEUS_OPERATOR_VERSION): | $(STAMP)
	dir=$$($(GO) mod download -json github.com/prometheus-operator/prometheus-operator@$(PROMETHEUS_OPERATOR_VERSION) | sed -n 's/^\s*"Dir": "\(.*\)",$$/\1/p'); \
	  rm -rf $(BIN)/prometheus-operator-crds && mkdir -p $(BIN)/prometheus-operator-crds && \
	  install -m 0644 "$$dir"/example/prometheus-operator-crd/*.yaml $(BIN)/prometheus-operator-crds/
	@touch $@

# Built static: the same binaries go into FROM-scratch images for kind.
# The version variables make /version report the real release (charts check kubeVersion
# against it); without them a source build reports v0.0.0-master.
KUBE_LDFLAGS = -X k8s.io/component-base/version.gitVersion=$(KUBE_VERSION) \
	-X k8s.io/component-base/version.gitMajor=$(word 2,$(subst ., ,$(subst v,v ,$(KUBE_VERSION)))) \
	-X k8s.io/component-base/version.gitMinor=$(word 3,$(subst ., ,$(subst v,v ,$(KUBE_VERSION)))) \
	-X k8s.io/component-base/version.gitTreeState=clean

$(STAMP)/kube-apiserver-$(KUBE_VERSION)-v: tests/tools/kube-apiserver/go.mod | $(STAMP)
	cd tests/tools/kube-apiserver && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" -o $(BIN)/kube-apiserver .
	@touch $@

$(STAMP)/etcd-$(ETCD_VERSION): tests/tools/etcd/go.mod | $(STAMP)
	cd tests/tools/etcd && CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/etcd .
	@touch $@

$(STAMP)/protoc-gen-go-$(PROTOC_GEN_GO_VERSION): | $(STAMP)
	$(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	@touch $@

$(STAMP)/protoc-gen-go-grpc-$(PROTOC_GEN_GO_GRPC_VERSION): | $(STAMP)
	$(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
	@touch $@

# The stamp names the package list, so adding a package installs it on the next run.
$(STAMP)/debian-packages-$(subst $(space),+,$(DEBIAN_PACKAGES)): | $(STAMP)
	missing=""; for c in $(DEBIAN_COMMANDS); do command -v $$c >/dev/null || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi
	@touch $@

# --- build ---------------------------------------------------------------------------------
.PHONY: build
# The product binaries, each a thin main under its component directory.
BINARIES := broker operator proxy console

build: ## build every KafScale binary into ./bin (kafscale-broker, kafscale-operator, kafscale-proxy, kafscale-console)
	$(GO) build ./...
	for b in $(BINARIES); do $(GO) build -trimpath -o $(BIN)/kafscale-$$b ./$$b; done

# --- generate ----------------------------------------------------------------------------
CHART := charts/kafscale
# Everything `generate` writes; `check-generated` fails when any of it differs from git.
GENERATED := operator/api/v1alpha1/zz_generated.deepcopy.go $(CHART)/files/crds \
	$(CHART)/values.schema.json $(CHART)/README.md broker/control/controlpb

.PHONY: generate
generate: tools ## regenerate deepcopy code, CRDs, gRPC code, values.schema.json and the chart README
	protoc --proto_path=broker/control/controlpb --go_out=broker/control/controlpb --go_opt=paths=source_relative \
	  --go-grpc_out=broker/control/controlpb --go-grpc_opt=paths=source_relative control.proto
	controller-gen object:headerFile=/dev/null paths=./operator/api/...
	rm -f $(CHART)/files/crds/*.yaml
	controller-gen crd paths=./operator/api/... output:crd:artifacts:config=$(CHART)/files/crds
	$(GO) run ./internal/tools/valuesschema -values $(CHART)/values.yaml -out $(CHART)/values.schema.json
	helm-docs --chart-search-root $(CHART) --template-files README.md.gotmpl --log-level warning

.PHONY: check-generated
check-generated: generate ## fail when generated files differ from what is committed
	@if ! git diff --quiet -- $(GENERATED) || [ -n "$$(git ls-files --others --exclude-standard -- $(GENERATED))" ]; then \
	  git --no-pager diff --stat -- $(GENERATED); git ls-files --others --exclude-standard -- $(GENERATED); \
	  echo "generated files are out of date: run 'make generate' and commit the result"; exit 1; \
	fi

# --- run -----------------------------------------------------------------------------------
BROKERS   ?= 1
CLEAN     ?=
RUN_FLAGS ?=

# Needs only Go: etcd (embedded) and the S3 store (gofakes3) run inside the broker process.
.PHONY: run
run: ## local platform on 127.0.0.1:9092 and the console on :8080, data in ./.kafscale (BROKERS=3 for three, CLEAN=1 to start afresh)
	$(GO) run ./broker local -brokers $(BROKERS) $(if $(CLEAN),-clean) $(RUN_FLAGS)

# --- lint ------------------------------------------------------------------------------------
.PHONY: lint
lint: tools check-generated ## gofmt, go vet, staticcheck, generated-file drift, helm lint --strict, ct lint
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...
	helm lint --strict $(CHART)
	for f in $(CHART)/ci/*-values.yaml; do helm lint --strict $(CHART) -f "$$f"; done
	ct lint --config ct.yaml

# --- tests -----------------------------------------------------------------------------------
GOTEST ?= $(GO) test
TEST_FLAGS ?= -count=1

.PHONY: test
test: tools lint test-unit fuzz test-render test-integration ## install tools, lint, then run every test tier

.PHONY: test-unit
test-unit: ## tier 1: unit tests (no outside processes)
	$(GOTEST) $(TEST_FLAGS) -race $$($(GO) list ./... | grep -v /tests/)

.PHONY: test-render
test-render: tools ## tier 2: the chart rendered and asserted, dry-run against kube-apiserver, release lifecycle
	$(GOTEST) $(TEST_FLAGS) -timeout 15m ./tests/chart/...

# Fuzzing budgets are execution counts (about 20 s each here), not durations: with a
# duration, go1.26's fuzz coordinator can report a bare "context deadline exceeded" failure
# when the time runs out while a worker is mid-input (go.dev/issue/75804, fixed in Go 1.27).
# FUZZTIME overrides both (e.g. FUZZTIME=2m or FUZZTIME=100000x).
FUZZ_REQUEST_TIME ?= $(or $(FUZZTIME),6000x)
FUZZ_PROXY_TIME ?= $(or $(FUZZTIME),1000000x)
FUZZ_SPLIT_TIME ?= $(or $(FUZZTIME),150000x)

.PHONY: fuzz
fuzz: ## fuzz Kafka request decoding and handling, PROXY header parsing and the proxy's request splitting (about 20 s each; FUZZTIME overrides)
	$(GOTEST) -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZ_REQUEST_TIME) -timeout 10m ./broker/server
	$(GOTEST) -run '^$$' -fuzz '^FuzzRead$$' -fuzztime $(FUZZ_PROXY_TIME) -timeout 10m ./internal/proxyproto
	$(GOTEST) -run '^$$' -fuzz '^FuzzSplit$$' -fuzztime $(FUZZ_SPLIT_TIME) -timeout 10m ./proxy/server

.PHONY: test-broker
test-broker: tools ## broker integration tests: kcat, franz-go, sarama, kafka-go, restarts, kill -9, bad input, make run
	$(GOTEST) $(TEST_FLAGS) -timeout 15m ./tests/broker/...

# tests/kgo runs after the other packages, not beside them: franz-go's suite is timing
# sensitive (session timeouts, rebalances) and would share the 2 cores with them.
.PHONY: test-integration
test-integration: tools ## tier 3: real etcd, S3 server and kube-apiserver on loopback (test-kgo included)
	$(GOTEST) $(TEST_FLAGS) -timeout 20m $$($(GO) list ./tests/... | grep -v -e /tests/chart -e /tests/kgo)
	$(MAKE) --no-print-directory test-kgo

.PHONY: test-kgo
test-kgo: tools ## franz-go's own kgo integration tests (group, consume, produce) against one broker
	$(GOTEST) $(TEST_FLAGS) -v -timeout 15m -run '^TestKgoSuite$$' ./tests/kgo

# --- benchmarks --------------------------------------------------------------------------
# One run, side by side: the ceilings (raw S3 PUT/GET against the same versitygw, loopback
# TCP), the broker binary under a franz-go load generator, and franz-go's kfake as a peer.
# Prints the table and writes it into docs/benchmarks.md; profiles and logs go to bench-out/.
# BENCH_* knobs (and any KAFSCALE_* broker setting) are listed in docs/benchmarks.md.
.PHONY: bench
bench: tools ## tier 5: ceilings, broker and kfake side by side (~10 min); writes docs/benchmarks.md and bench-out/
	$(GO) run ./tests/bench/cmd/bench -doc docs/benchmarks.md

.PHONY: clean
clean: ## remove build outputs (keeps ./bin tools)
	$(GO) clean ./...
