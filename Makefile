# istio-gateway-operator: `make help` lists the targets.

K8S_VERSION ?= v1.37.2
ETCD_VERSION ?= v3.7.3
IMG ?= istio-gateway-operator:dev
ARGS ?=
GO ?= go
TOOLS := $(GO) tool -modfile=hack/tools/go.mod

ROOT := $(abspath .)
BIN := $(ROOT)/bin
CHART := charts/istio-gateway-operator
ASSETS := $(BIN)/k8s/$(K8S_VERSION)
export KUBEBUILDER_ASSETS := $(ASSETS)

# `make run` targets the local control plane unless a cluster is named: CLUSTER=current,
# KUBECONFIG in the environment, or --kubeconfig in ARGS.
ifeq ($(origin CLUSTER),undefined)
  ifneq ($(or $(KUBECONFIG),$(findstring --kubeconfig,$(ARGS))),)
    CLUSTER := current
  else
    CLUSTER := local
  endif
endif

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show the targets.
	@awk 'BEGIN {FS = ":.*##"} /^[a-zA-Z0-9_-]+:.*##/ {printf "  %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

##@ Development

.PHONY: manifests
manifests: ## Regenerate config/rbac from the +kubebuilder markers, and the Helm chart's copy of it.
	$(TOOLS) controller-gen rbac:roleName=manager-role paths="./controllers/..." output:rbac:artifacts:config=config/rbac
	cp config/rbac/role.yaml $(CHART)/files/manager-role.yaml

.PHONY: generate
generate: manifests testdata docs ## Regenerate everything generated: manifests, golden files, README tables.

.PHONY: docs
docs: ## Regenerate the README's reference tables from the code (hack/docs).
	$(GO) test ./hack/docs/ -update

.PHONY: testdata
testdata: ## Regenerate the golden files under testdata/ from the current rendering.
	$(GO) test ./pkg/render/... -update

.PHONY: fmt
fmt: ## Format the code.
	gofmt -w $$(git ls-files '*.go')

.PHONY: vet
vet: ## Run go vet (the e2e, conformance and istiod suites included).
	$(GO) vet -tags e2e,conformance,istio ./...

.PHONY: lint
lint: vet ## Check formatting, vet, and that generated manifests are up to date.
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@$(MAKE) -s manifests && git diff --exit-code -- config/rbac $(CHART)/files || { echo "config/rbac or the chart's copy is stale: run make manifests"; exit 1; }

.PHONY: k8s-assets
k8s-assets: ## Build etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl into bin/k8s/$(K8S_VERSION) (no-op when present).
	@K8S_VERSION=$(K8S_VERSION) ETCD_VERSION=$(ETCD_VERSION) hack/k8s-assets.sh $(ASSETS)

.PHONY: e2e-tools
e2e-tools: ## Build kwok and MetalLB's controller from source into bin/e2e (no-op when present).
	@hack/e2e-tools.sh $(BIN)/e2e

.PHONY: istio-tools
istio-tools: ## Build istiod (pilot-discovery) and istioctl from istio.io/istio through the module proxy into bin/istio, with Istio's CRDs (no-op when present).
	@hack/istio-tools.sh $(BIN)/istio

.PHONY: helm
helm: ## Build Helm from helm.sh/helm/v4 through the module proxy into bin/helm (no-op when present).
	@hack/helm.sh $(BIN)/helm

.PHONY: test
test: test-integration test-e2e test-conformance ## Run every test: unit, envtest suites, the end-to-end suite, then the conformance tests.

.PHONY: test-integration
test-integration: k8s-assets helm ## Run the unit tests, the chart tests (helm lint, no drift from config/) and the envtest suites.
	$(GO) test ./... -count=1 -timeout 20m -coverprofile $(ROOT)/cover.out

.PHONY: test-e2e
test-e2e: build k8s-assets e2e-tools helm ## Run the end-to-end suite: bin/manager, installed from the Helm chart, on a control plane with kwok nodes and MetalLB, driven by kubectl.
	$(GO) test -tags e2e ./test/e2e/ -count=1 -timeout 15m -v -ginkgo.v

ISTIO_OBSERVE ?= 2m

.PHONY: test-istio
test-istio: build k8s-assets e2e-tools helm istio-tools ## Run the operator beside a real istiod in each documented setting and check who writes what (ISTIO_OBSERVE per scenario).
	$(GO) test -tags istio ./test/istio/ -count=1 -timeout 30m -v -ginkgo.v -args -observe=$(ISTIO_OBSERVE)

CONFORMANCE_ARGS ?=

.PHONY: conformance
conformance: build k8s-assets e2e-tools helm ## Run the Gateway API conformance tests that need no data plane on the end-to-end environment; writes conformance/report.yaml.
	@mkdir -p $(BIN)/conformance
	bash -o pipefail -c '$(GO) test -tags conformance ./test/conformance/ -count=1 -timeout 30m -v -args $(CONFORMANCE_ARGS) 2>&1 | tee $(BIN)/conformance/test.log'

.PHONY: test-conformance
test-conformance: ## The conformance tests as make test runs them: the report goes to bin/conformance, the checked-in one stays.
	@$(MAKE) -s conformance CONFORMANCE_ARGS="-report-output=$(BIN)/conformance/report.yaml $(CONFORMANCE_ARGS)"

.PHONY: demo
demo: build k8s-assets e2e-tools helm ## Play the walkthrough on the end-to-end environment, then keep it running (DEMO_EXIT=1 exits).
	@$(GO) build -o $(BIN)/demo ./hack/demo
	@$(BIN)/demo -dir $(BIN)/e2e/demo

.PHONY: test-unit
test-unit: ## Run only the tests that need no control plane.
	$(GO) test ./api/... ./pkg/... -count=1

##@ Performance

N ?= 1000
CURVE ?= 100,300
BENCH_ARGS ?=

.PHONY: codesize
codesize: ## Print the non-test lines and the longest function of controllers/ and pkg/ (hack/codesize).
	$(GO) run ./hack/codesize controllers pkg

.PHONY: bench
bench: build k8s-assets ## Measure convergence, requests, steady state, class change and memory for N=$(CURVE),$(N); writes bin/bench/results.md.
	$(GO) run ./test/bench -n $(CURVE),$(N) -manager $(BIN)/manager -out $(BIN)/bench/results.md $(BENCH_ARGS)

.PHONY: bench-fairness
bench-fairness: build k8s-assets ## Time probe Gateways in another namespace during a 1,000-Gateway burst (about 3 minutes); writes bin/bench/fairness.md.
	$(GO) run ./test/bench -n 1000 -probes -idle 10s -unrelated 0 -manager $(BIN)/manager -out $(BIN)/bench/fairness.md $(BENCH_ARGS)

.PHONY: bench-scale
bench-scale: build k8s-assets ## N=10,000 over 200 namespaces, then a restart and a failover (about 20 minutes); writes bin/bench/scale.md.
	$(GO) run ./test/bench -n 10000 -namespaces 200 -restart -idle 30s -unrelated 0 -manager $(BIN)/manager -out $(BIN)/bench/scale.md $(BENCH_ARGS)

FUZZTIME ?= 1m
FUZZ_TARGETS := ./pkg/customize:FuzzFilterNeverKeepsAnOffListPath ./pkg/customize:FuzzValidatorAgreesWithFilter \
	./pkg/customize:FuzzParseIsDeterministic ./pkg/customize:FuzzPolicyNeverAppliesAForbiddenValue \
	./pkg/render:FuzzMergeGatewayLevelWinsAndIsIdempotent

.PHONY: fuzz
fuzz: ## Fuzz the ConfigMap parsing, allowlist filter, validator and merge, each for FUZZTIME (seed corpora in testdata/fuzz run in make test).
	@for t in $(FUZZ_TARGETS); do pkg=$${t%%:*}; name=$${t##*:}; \
		echo "== $$name ($(FUZZTIME))"; \
		$(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) || exit 1; \
	done

##@ Build and run

.PHONY: build
build: ## Build the operator binary into bin/manager.
	$(GO) build -o $(BIN)/manager ./cmd/manager

.PHONY: run
run: build ## Run the operator: on a local control plane, or on the current cluster with CLUSTER=current.
ifeq ($(CLUSTER),local)
	@$(MAKE) -s k8s-assets
	@$(GO) build -o $(BIN)/run-local ./hack/run-local
	@$(BIN)/run-local -assets $(ASSETS) -kubeconfig-out $(BIN)/local/kubeconfig -manager $(BIN)/manager -- $(ARGS)
else
	$(BIN)/manager $(ARGS)
endif

.PHONY: docker-build
docker-build: ## Build the container image (needs a Docker engine).
	docker build -t $(IMG) .

##@ Deployment

.PHONY: deploy
deploy: ## Deploy the operator to the current cluster with kustomize (config/default; CERTS=cert-manager for config/with-cert-manager).
	kubectl apply -k $(if $(filter cert-manager,$(CERTS)),config/with-cert-manager,config/default)

.PHONY: undeploy
undeploy: ## Remove what deploy created.
	kubectl delete -k $(if $(filter cert-manager,$(CERTS)),config/with-cert-manager,config/default) --ignore-not-found

.PHONY: clean
clean: ## Remove build output, keeping the control-plane binaries.
	rm -rf $(BIN)/manager $(BIN)/run-local $(BIN)/demo $(BIN)/local $(BIN)/e2e/suite $(BIN)/e2e/demo $(BIN)/conformance cover.out
