# countersign — every entry point a user or CI needs. `make help` lists them.
SHELL := /bin/bash
NODE_MODULES := node_modules/.package-lock.json
BUILD_STAMP := dist/.built

.PHONY: help setup system-deps build test lint run demo bench fuzz soak e2e-envoy clean

help: ## list targets
	@grep -E '^[a-z0-9-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | column -t -s $$'\t'

$(NODE_MODULES): package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch $@

setup: $(NODE_MODULES) build ## install dependencies and build

build: $(NODE_MODULES) ## compile TypeScript (generates proto types first)
	npm run build
	@touch $(BUILD_STAMP)

lint: $(NODE_MODULES) ## eslint + type-check (src and tests)
	npm run gen:types
	npx eslint .
	npx tsc -p tsconfig.test.json

system-deps: ## boto3 and the AWS CLI from Debian, for the end-to-end tests (skips without root)
	@bash scripts/install-system-deps.sh

test: system-deps build lint ## unit, integration and end-to-end tests (the README's test command)
	npx vitest run

run: build ## serve with policies/aws.yaml (set COUNTERSIGN_AWS_* first)
	node dist/src/cli.js serve --policy $${COUNTERSIGN_POLICY:-policies/aws.yaml}

demo: build ## end-to-end demo: fake AWS + Envoy emulator + countersign + a real SDK upload
	node --import tsx test/demo.ts

bench: build ## benchmarks (ratios measured in one run); not part of make test
	node --import tsx bench/run.ts

fuzz: build ## long fuzz run (>= 100k cases)
	FUZZ_RUNS=$${FUZZ_RUNS:-100000} npx vitest run test/fuzz

SOAK_MINUTES ?= 10
soak: build ## steady load in every payload mode, credentials refreshed each minute (SOAK_MINUTES=10)
	SOAK_MINUTES=$(SOAK_MINUTES) node --import tsx test/soak.ts

e2e-envoy: build ## end-to-end suite against a real envoy binary from PATH (skips if none)
	@if ! command -v envoy >/dev/null 2>&1; then echo "e2e-envoy: SKIPPED — no 'envoy' binary on PATH"; exit 0; fi; \
	COUNTERSIGN_REAL_ENVOY=1 npx vitest run test/e2e

clean:
	rm -rf dist protos/generated
