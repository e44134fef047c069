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
	$(STAMP)/versitygw-$(VERSITYGW_VERSION)-static \
	$(STAMP)/prometheus-operator-crds-$(PROMETHEUS_OPERATOR_VERSION) \
	$(STAMP)/kube-apiserver-$(KUBE_VERSION)-v \
	$(STAMP)/kubectl-$(KUBE_VERSION) \
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

# Static, so the same binary goes into the S3 server image of local clusters (make images).
$(STAMP)/versitygw-$(VERSITYGW_VERSION)-static: | $(STAMP)
	CGO_ENABLED=0 $(GO) install -trimpath github.com/versity/versitygw/cmd/versitygw@$(VERSITYGW_VERSION)
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

# kubectl of the same release, for the operator tests that scale the way users do
# (tests/operator TestOutsideScaling); the kind tools put it beside the node binaries.
$(STAMP)/kubectl-$(KUBE_VERSION): tests/tools/kube-apiserver/go.mod | $(STAMP)
	mkdir -p $(BIN)/kube
	cd tests/tools/kube-apiserver && CGO_ENABLED=0 $(GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" -o $(BIN)/kube/kubectl k8s.io/kubernetes/cmd/kubectl
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
# The product binaries, each a thin main under its component directory; only those whose
# main package exists are built. The one list: `make build` and `make images` follow it.
PRODUCTS := operator broker proxy console check
BINARIES := $(patsubst %/main.go,%,$(wildcard $(addsuffix /main.go,$(PRODUCTS))))

build: ## build every KafScale binary into ./bin (kafscale-broker, -operator, -proxy, -console, -check)
	$(GO) build ./...
	for b in $(BINARIES); do $(GO) build -trimpath -o $(BIN)/kafscale-$$b ./$$b; done

# --- images --------------------------------------------------------------------------------
# One docker-archive per image in $(IMAGES_DIR), assembled in Go (internal/tools/images), no
# container engine: every product binary, plus the etcd (managed etcd) and versitygw (S3 on
# local clusters) images from the pinned tool builds. Same commit, same digests.
IMAGES_DIR ?= $(BIN)/images

.PHONY: images
images: $(STAMP)/etcd-$(ETCD_VERSION) $(STAMP)/versitygw-$(VERSITYGW_VERSION)-static ## build the image archives into bin/images (docker/podman load, kind load image-archive)
	$(GO) run ./internal/tools/images -out $(IMAGES_DIR) -binaries "$(BINARIES)" \
	  -etcd $(BIN)/etcd -etcd-version $(ETCD_VERSION) -versitygw $(BIN)/versitygw -versitygw-version $(VERSITYGW_VERSION)

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

# Needs only Go: etcd (embedded), the S3 store (gofakes3), the brokers, the proxy and the
# console run inside one broker process (`broker local`, package broker/local).
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
	$(GOTEST) $(TEST_FLAGS) -timeout 20m $$($(GO) list ./tests/... | grep -v -e /tests/chart -e /tests/kgo -e /tests/e2e)
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

# --- kind ------------------------------------------------------------------------------------
# A local cluster running the chart (kind/README.md, README "Try it on kind"). With internet
# kind's own node image; without, a node image built here (kind/node/build.sh), tagged with a
# hash of its inputs so it is rebuilt only when one changes. podman is the provider unless a
# working docker is there; CONTAINERS_CONF points podman at kind/containers.conf.
KIND_VERSION    := v0.33.0
KIND_CLUSTER    ?= kafscale
# Debian packages for kind on this kind of host, pinned to bookworm's versions.
KIND_DEBIAN_PACKAGES := podman=4.3.1+ds1-8+deb12u1+b3 runc=1.1.5+ds1-1+deb12u1 debootstrap=1.0.128+nmu2+deb12u2
# What the offline node's rootfs installs on top of debootstrap's minbase.
NODE_DEBIAN_PACKAGES := systemd dbus containerd=1.6.20~ds1-1+deb12u3 runc=1.1.5+ds1-1+deb12u1 \
	containernetworking-plugins=1.1.1+ds1-3+b5 iptables nftables conntrack iproute2 ethtool util-linux mount \
	kmod libseccomp2 pigz bash ca-certificates procps jq
DEBIAN_MIRROR          ?= http://deb.debian.org/debian
DEBIAN_SECURITY_MIRROR ?= http://deb.debian.org/debian-security
COREDNS_VERSION := $(call module_version,github.com/coredns/coredns,kind/node/go.mod)
KUBE_NODE_BINARIES := kubeadm kubelet kube-controller-manager kube-scheduler kube-proxy
# The node image's tag: Kubernetes' version and a hash of every input of build.sh.
NODE_IMAGE_INPUTS = $(sort $(shell git ls-files kind/node internal/ociimage internal/tools/images)) \
	tests/tools/kube-apiserver/go.mod tests/tools/kube-apiserver/go.sum tests/tools/etcd/go.mod
NODE_IMAGE_HASH = $(shell { cat $(NODE_IMAGE_INPUTS); echo "$(KIND_VERSION) $(KUBE_VERSION) $(ETCD_VERSION) $(NODE_DEBIAN_PACKAGES) $$($(GO) env GOVERSION)"; } | sha256sum | cut -c1-12)
NODE_IMAGE = localhost/kafscale/kind-node:$(KUBE_VERSION)-$(NODE_IMAGE_HASH)
# The Debian part of the node's rootfs, cached apart: it depends only on packages and mirrors.
KIND_CACHE   ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/kafscale/kind-node
ROOTFS_CACHE  = $(KIND_CACHE)/rootfs-$(shell echo "$(NODE_DEBIAN_PACKAGES) $(DEBIAN_MIRROR) $(DEBIAN_SECURITY_MIRROR)" | sha256sum | cut -c1-12).tar
export CONTAINERS_CONF := $(CURDIR)/kind/containers.conf

$(STAMP)/kind-$(KIND_VERSION): | $(STAMP)
	$(GO) install sigs.k8s.io/kind@$(KIND_VERSION)
	@touch $@

$(STAMP)/kind-debian-$(subst $(space),+,$(subst :,_,$(KIND_DEBIAN_PACKAGES))): | $(STAMP)
	@if docker info >/dev/null 2>&1; then echo "docker works: kind uses it, podman is not needed"; \
	elif ! dpkg-query -W -f='$${Package}=$${Version}\n' $(foreach p,$(KIND_DEBIAN_PACKAGES),$(firstword $(subst =, ,$(p)))) 2>/dev/null | sort | diff -q - <(printf '%s\n' $(KIND_DEBIAN_PACKAGES) | sort) >/dev/null; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(KIND_DEBIAN_PACKAGES); \
	fi
	@touch $@

# kubeadm, kubelet and the control plane (kube-apiserver and kubectl are the tools' builds)
# from the same module and release, static, into bin/kube/. CPU-heavy: about 4 min cold after
# kube-apiserver's build (docs/development.md).
# One `go build` for all five, so their compiles and links share both cores; the packages
# they share with kube-apiserver come from the build cache (same module, same flags).
$(STAMP)/kube-node-$(KUBE_VERSION): tests/tools/kube-apiserver/go.mod $(STAMP)/kubectl-$(KUBE_VERSION) | $(STAMP)
	mkdir -p $(BIN)/kube
	cd tests/tools/kube-apiserver && CGO_ENABLED=0 nice -n 10 $(GO) build -trimpath -ldflags "$(KUBE_LDFLAGS)" \
	  -o $(BIN)/kube/ $(addprefix k8s.io/kubernetes/cmd/,$(KUBE_NODE_BINARIES))
	@touch $@

KIND_TOOLS := $(STAMP)/kind-$(KIND_VERSION) $(STAMP)/kind-debian-$(subst $(space),+,$(subst :,_,$(KIND_DEBIAN_PACKAGES))) \
	$(STAMP)/helm-$(HELM_VERSION)-kube$(HELM_KUBE_MINOR) $(STAMP)/kube-node-$(KUBE_VERSION)

.PHONY: kind-tools
kind-tools: $(KIND_TOOLS) ## install kind, podman, runc, debootstrap, helm and the Kubernetes node binaries (pinned)

.PHONY: kind-node-image
kind-node-image: $(KIND_TOOLS) $(STAMP)/etcd-$(ETCD_VERSION) $(STAMP)/kube-apiserver-$(KUBE_VERSION)-v ## build the offline kind node image unless its inputs' hash is built (~8 min cold)
	@ln -sf ../kube-apiserver $(BIN)/kube/kube-apiserver
	@if podman image exists $(NODE_IMAGE); then echo "node image $(NODE_IMAGE) is current"; else \
	  NODE_IMAGE=$(NODE_IMAGE) WORK=$(CURDIR)/.kind-node-build ROOTFS_CACHE=$(ROOTFS_CACHE) KIND_MODULE=$$($(GO) list -m -f '{{.Dir}}' sigs.k8s.io/kind@$(KIND_VERSION) 2>/dev/null || $(GO) mod download -json sigs.k8s.io/kind@$(KIND_VERSION) | sed -n 's/^\s*"Dir": "\(.*\)",$$/\1/p') \
	  KUBE_BIN=$(BIN)/kube KUBE_VERSION=$(KUBE_VERSION) ETCD_BIN=$(BIN)/etcd ETCD_VERSION=$(ETCD_VERSION) COREDNS_VERSION=$(COREDNS_VERSION) \
	  DEBIAN_MIRROR=$(DEBIAN_MIRROR) DEBIAN_SECURITY_MIRROR=$(DEBIAN_SECURITY_MIRROR) NODE_DEBIAN_PACKAGES="$(NODE_DEBIAN_PACKAGES)" \
	  REPO=$(CURDIR) GO=$(GO) nice -n 10 kind/node/build.sh; fi

# KIND_NODE_IMAGE=<image> forces a node image; KIND_OFFLINE=1 (or =0) forces the choice.
.PHONY: kind-up
kind-up: images $(KIND_TOOLS) ## local kind cluster: operator, brokers, managed etcd, S3, proxy, console (offline node image when needed)
	@offline=$${KIND_OFFLINE:-}; if [ -z "$$offline" ] && [ -z "$${KIND_NODE_IMAGE:-}" ]; then \
	  if curl -s -o /dev/null --max-time 5 https://registry-1.docker.io/v2/; then offline=0; else offline=1; fi; fi; \
	if [ "$$offline" = 1 ] && [ -z "$${KIND_NODE_IMAGE:-}" ]; then $(MAKE) --no-print-directory kind-node-image; fi; \
	KIND_OFFLINE=$$offline KIND_NODE_IMAGE=$${KIND_NODE_IMAGE:-$$([ "$$offline" = 1 ] && echo $(NODE_IMAGE))} \
	  KIND_CLUSTER=$(KIND_CLUSTER) IMAGES_DIR=$(IMAGES_DIR) KUBECTL=$(BIN)/kube/kubectl ETCD_VERSION=$(ETCD_VERSION) \
	  COREDNS_VERSION=$(COREDNS_VERSION) kind/up.sh

# --- e2e: install, upgrade, rollback on one kind cluster (tests/e2e, docs/upgrades.md) -------
E2E_CLUSTER   ?= kafscale-e2e
E2E_DIR       ?= $(CURDIR)/.e2e
# Release A: the commit named in tests/e2e/release-a; its images are cached by commit.
E2E_RELEASE_A  = $(shell sed -n '/^[0-9a-f]\{40\}$$/p' tests/e2e/release-a)
E2E_TEST_FLAGS ?=

.PHONY: e2e
e2e: $(KIND_TOOLS) $(STAMP)/etcd-$(ETCD_VERSION) $(STAMP)/versitygw-$(VERSITYGW_VERSION)-static ## tier 4: release A installed, upgraded to this commit, rolled back and forward on a kind cluster
	@test -n "$(E2E_RELEASE_A)" || { echo "tests/e2e/release-a names no commit" >&2; exit 1; }
	@echo "e2e: $$(date -u +%H:%M:%S) images of this commit (release B)"
	$(MAKE) --no-print-directory images IMAGES_DIR=$(E2E_DIR)/images-B
	@echo "e2e: $$(date -u +%H:%M:%S) images of release A ($(E2E_RELEASE_A))"
	tests/e2e/release-images.sh $(E2E_RELEASE_A) $(E2E_DIR)/releases
	@echo "e2e: $$(date -u +%H:%M:%S) node image and the test"
	@offline=$${KIND_OFFLINE:-}; if [ -z "$$offline" ] && [ -z "$${KIND_NODE_IMAGE:-}" ]; then \
	  if curl -s -o /dev/null --max-time 5 https://registry-1.docker.io/v2/; then offline=0; else offline=1; fi; fi; \
	if [ "$$offline" = 1 ] && [ -z "$${KIND_NODE_IMAGE:-}" ]; then $(MAKE) --no-print-directory kind-node-image; fi; \
	KIND_OFFLINE=$$offline KIND_NODE_IMAGE=$${KIND_NODE_IMAGE:-$$([ "$$offline" = 1 ] && echo $(NODE_IMAGE))} \
	  E2E_CLUSTER=$(E2E_CLUSTER) E2E_RELEASE_A=$(E2E_DIR)/releases/$(E2E_RELEASE_A) E2E_IMAGES_B=$(E2E_DIR)/images-B \
	  KUBECTL=$(BIN)/kube/kubectl ETCD_VERSION=$(ETCD_VERSION) COREDNS_VERSION=$(COREDNS_VERSION) \
	  $(GOTEST) -v -count=1 -timeout 80m $(E2E_TEST_FLAGS) ./tests/e2e

.PHONY: kind-down
kind-down: $(STAMP)/kind-$(KIND_VERSION) ## delete the kind cluster (and everything in it)
	KIND_CLUSTER=$(KIND_CLUSTER) kind/down.sh

.PHONY: kind-smoke
kind-smoke: ## check a kind-up cluster from the host: 10,000 records through the proxy with kcat, the console page, etcd members and brokers
	KIND_CLUSTER=$(KIND_CLUSTER) KUBECTL=$(BIN)/kube/kubectl kind/smoke.sh
