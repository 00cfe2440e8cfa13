# countersign — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
BUILD_STAMP := dist/.built
# Real Envoy, pinned in envoy/VERSION, in a project-local virtualenv (scripts/install-envoy.sh).
ENVOY := .venv/bin/envoy
# Real kubectl (kustomize built in), pinned in scripts/tool-versions.env, in .tools/bin (scripts/install-kubectl.sh).
KUBECTL := .tools/bin/kubectl
# Node 24 LTS, pinned in scripts/tool-versions.env, in .tools/node24 (scripts/install-node24.sh), for test-node24.
NODE24_BIN := .tools/node24/node_modules/node/bin
# The Kubernetes schema validator, the released CRDs and hadolint, pinned in scripts/tool-versions.env (scripts/install-validators.sh).
VALIDATORS := .tools/validators.versions

.PHONY: help setup system-deps envoy kubectl node24 validators build test test-node24 lint run demo bench fuzz soak clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

$(ENVOY): envoy/VERSION scripts/install-envoy.sh
	@bash scripts/install-envoy.sh
	@touch $@

envoy: $(ENVOY) ## install the pinned Envoy (envoy/VERSION) into .venv

$(KUBECTL): scripts/tool-versions.env scripts/install-kubectl.sh
	@bash scripts/install-kubectl.sh
	@touch $@

kubectl: $(KUBECTL) ## install the pinned kubectl (scripts/tool-versions.env) into .tools/bin

$(NODE24_BIN)/node: scripts/tool-versions.env scripts/install-node24.sh
	@bash scripts/install-node24.sh
	@touch $@

node24: $(NODE24_BIN)/node ## install the pinned Node 24 (scripts/tool-versions.env) into .tools/node24

$(VALIDATORS): scripts/tool-versions.env scripts/install-validators.sh
	@bash scripts/install-validators.sh
	@touch $@

validators: $(VALIDATORS) ## install the pinned Kubernetes schema validator, CRDs and hadolint (scripts/tool-versions.env) into .tools

setup: $(NODE_MODULES) $(ENVOY) build ## install dependencies (npm, Envoy) and build

build: $(NODE_MODULES) ## compile TypeScript (generates proto types first)
	npm run build
	@touch $(BUILD_STAMP)

lint: $(NODE_MODULES) ## eslint + type-check (src and tests)
	npm run gen:types
	npx eslint .
	npx tsc -p tsconfig.test.json

system-deps: ## boto3, python3-awscrt, the AWS CLI and promtool from Debian, for the tests (fails, saying why, when it cannot)
	@bash scripts/install-system-deps.sh

test: system-deps $(ENVOY) $(KUBECTL) $(VALIDATORS) build lint ## unit, integration and end-to-end tests (the README's test command)
	npx vitest run

# The same suite on Node 24 (the image's runtime): that node first on PATH, so vitest, its workers and
# every process a test spawns with process.execPath run on it; test/node/runtime.spec.ts checks they do.
test-node24: system-deps $(ENVOY) $(KUBECTL) $(VALIDATORS) $(NODE24_BIN)/node build ## the test suite again on the pinned Node 24 (CI runs it after make test)
	PATH="$(CURDIR)/$(NODE24_BIN):$$PATH" COUNTERSIGN_EXPECT_NODE_MAJOR=24 npx vitest run

run: build ## serve with policies/aws.yaml (set COUNTERSIGN_AWS_* first)
	node dist/src/cli.js serve --policy $${COUNTERSIGN_POLICY:-policies/aws.yaml}

# Without Envoy the demo still runs, on the Envoy emulator, and says so loudly.
demo: build ## end-to-end demo: a real SDK upload through real Envoy and countersign to the fake AWS
	@$(MAKE) -s --no-print-directory envoy || echo "make demo: Envoy could not be installed (see above); the demo falls back to the Envoy emulator" >&2
	node --import tsx test/demo.ts

bench: $(ENVOY) build ## benchmarks (ratios measured in one run); not part of make test
	node --import tsx bench/run.ts

fuzz: build ## long fuzz run (>= 100k cases)
	FUZZ_RUNS=$${FUZZ_RUNS:-100000} npx vitest run test/fuzz

SOAK_MINUTES ?= 10
SOAK_RATE ?= 1000
soak: $(ENVOY) build ## load through real Envoy in every payload mode, credentials refreshed each minute (SOAK_MINUTES=10 SOAK_RATE=1000)
	SOAK_MINUTES=$(SOAK_MINUTES) SOAK_RATE=$(SOAK_RATE) node --import tsx test/soak.ts

clean:
	rm -rf dist protos/generated .venv .tools
