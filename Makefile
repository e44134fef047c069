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

# --- pinned tool versions (see docs/development.md for why each was chosen) -------------
HELM_VERSION             := v3.22.0
CT_VERSION               := v3.14.0
CONTROLLER_TOOLS_VERSION := v0.23.0
HELM_DOCS_VERSION        := v1.14.2
STATICCHECK_VERSION      := v0.8.2
VERSITYGW_VERSION        := v1.8.0
# kube-apiserver and etcd are built from the modules pinned in their own go.mod files.
module_version = $(shell awk '{for (i = 1; i < NF; i++) if ($$i == "$(1)") {print $$(i+1); exit}}' $(2))
KUBE_VERSION             := $(call module_version,k8s.io/kubernetes,tests/tools/kube-apiserver/go.mod)
ETCD_VERSION             := $(call module_version,go.etcd.io/etcd/server/v3,tests/tools/etcd/go.mod)
DEBIAN_PACKAGES          := kcat yamllint

TOOL_STAMPS := \
	$(STAMP)/helm-$(HELM_VERSION) \
	$(STAMP)/ct-$(CT_VERSION) \
	$(STAMP)/controller-gen-$(CONTROLLER_TOOLS_VERSION) \
	$(STAMP)/helm-docs-$(HELM_DOCS_VERSION) \
	$(STAMP)/staticcheck-$(STATICCHECK_VERSION) \
	$(STAMP)/versitygw-$(VERSITYGW_VERSION) \
	$(STAMP)/kube-apiserver-$(KUBE_VERSION) \
	$(STAMP)/etcd-$(ETCD_VERSION) \
	$(STAMP)/debian-packages

.PHONY: help
help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  %-18s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

# --- tools -------------------------------------------------------------------------------
.PHONY: tools
tools: $(TOOL_STAMPS) ## install every pinned tool the tests need into ./bin

$(STAMP):
	@mkdir -p $@

$(STAMP)/helm-$(HELM_VERSION): | $(STAMP)
	$(GO) install -ldflags "-X helm.sh/helm/v3/internal/version.version=$(HELM_VERSION)" helm.sh/helm/v3/cmd/helm@$(HELM_VERSION)
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

# Built static: the same binaries go into FROM-scratch images for kind.
$(STAMP)/kube-apiserver-$(KUBE_VERSION): tests/tools/kube-apiserver/go.mod | $(STAMP)
	cd tests/tools/kube-apiserver && CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/kube-apiserver .
	@touch $@

$(STAMP)/etcd-$(ETCD_VERSION): tests/tools/etcd/go.mod | $(STAMP)
	cd tests/tools/etcd && CGO_ENABLED=0 $(GO) build -trimpath -o $(BIN)/etcd .
	@touch $@

$(STAMP)/debian-packages: | $(STAMP)
	if ! command -v $(firstword $(DEBIAN_PACKAGES)) >/dev/null || ! command -v $(lastword $(DEBIAN_PACKAGES)) >/dev/null; then \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  $$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq --no-install-recommends $(DEBIAN_PACKAGES); \
	fi
	@touch $@

# --- build ---------------------------------------------------------------------------------
.PHONY: build
build: ## build every KafScale binary into ./bin
	$(GO) build ./...

# --- run -----------------------------------------------------------------------------------
BROKERS   ?= 1
CLEAN     ?=
RUN_FLAGS ?=

# Needs only Go: etcd (embedded) and the S3 store (gofakes3) run inside the broker process.
.PHONY: run
run: ## local platform on 127.0.0.1:9092, data in ./.kafscale (BROKERS=3 for three, CLEAN=1 to start afresh)
	$(GO) run ./broker local -brokers $(BROKERS) $(if $(CLEAN),-clean) $(RUN_FLAGS)

# --- lint ------------------------------------------------------------------------------------
.PHONY: lint
lint: tools ## gofmt, go vet, staticcheck (and helm lint / ct lint once the chart exists)
	@unformatted=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './bin/*')); \
	  if [ -n "$$unformatted" ]; then echo "gofmt would change: $$unformatted"; exit 1; fi
	$(GO) vet ./...
	staticcheck ./...

# --- tests -----------------------------------------------------------------------------------
GOTEST ?= $(GO) test
TEST_FLAGS ?= -count=1

.PHONY: test
test: tools lint test-unit fuzz test-integration ## install tools, lint, then run every test tier

.PHONY: test-unit
test-unit: ## tier 1: unit tests (no outside processes)
	$(GOTEST) $(TEST_FLAGS) -race $$($(GO) list ./... | grep -v /tests/)

FUZZTIME ?= 20s

.PHONY: fuzz
fuzz: ## fuzz Kafka request decoding and handling for FUZZTIME (default 20s)
	$(GOTEST) -run '^$$' -fuzz '^FuzzRequest$$' -fuzztime $(FUZZTIME) ./broker/server

.PHONY: test-broker
test-broker: tools ## broker integration tests: kcat, franz-go, sarama, kafka-go, restarts, kill -9, bad input, make run
	$(GOTEST) $(TEST_FLAGS) -timeout 15m ./tests/broker/...

.PHONY: test-integration
test-integration: tools ## tier 3: real etcd, S3 server and kube-apiserver on loopback
	$(GOTEST) $(TEST_FLAGS) -timeout 20m ./tests/...

.PHONY: clean
clean: ## remove build outputs (keeps ./bin tools)
	$(GO) clean ./...
