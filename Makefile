# keyservice — run `make help` for the targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help

GO      ?= go
BIN     := $(CURDIR)/bin
export PATH := $(BIN):$(PATH)

# Pinned tool versions: codegen output depends on them, so CI and every
# developer build the same ones (go install, from the Go module proxy).
BUF_VERSION                 := v1.75.0
SQLC_VERSION                := v1.31.1
PROTOC_GEN_GO_VERSION       := v1.36.12
PROTOC_GEN_GO_GRPC_VERSION  := v1.6.2
GRPC_GATEWAY_VERSION        := v2.33.0
GRPCURL_VERSION             := v1.9.4
# The google/api annotation protos are copied from this module.
GOOGLEAPIS_MODULE           := github.com/grpc-ecosystem/grpc-gateway@v1.16.0

# Python and Java stubs come from the distribution's own toolchain (Debian's
# protoc 3.21 and its gRPC plugins), as polyglot callers build them.
PROTOC             ?= /usr/bin/protoc
GRPC_PYTHON_PLUGIN ?= /usr/bin/grpc_python_plugin
GRPC_JAVA_PLUGIN   ?= /usr/bin/grpc_java_plugin
PROTO_FILES        := keyservice/v1/keyservice.proto google/api/annotations.proto google/api/http.proto
# The Python kit (clients/python) carries its own copy of the stubs, made from
# api/gen/python by py-kit-stubs: one flat private package whose imports are
# relative, so installing the kit adds no top-level `google` or `keyservice`
# package (a `google` package would shadow google.protobuf). Where
# googleapis-common-protos is installed its google.api modules are used, so
# google/api/http.proto is never registered twice in protobuf's pool.
PY_KIT_GEN         := clients/python/src/keyservice_client/_gen

TOOLS := $(BIN)/buf $(BIN)/sqlc $(BIN)/protoc-gen-go $(BIN)/protoc-gen-go-grpc \
         $(BIN)/protoc-gen-grpc-gateway $(BIN)/protoc-gen-openapiv2 $(BIN)/grpcurl

.PHONY: help
help: ## Show this help (colours only on a terminal)
	@if [ -t 1 ]; then c='\033[36m'; r='\033[0m'; else c=; r=; fi; \
	grep -hE '^[a-zA-Z_-]+:.*?## ' $(MAKEFILE_LIST) | awk -v c="$$c" -v r="$$r" 'BEGIN {FS = ":.*?## "}; {printf "  %s%-14s%s %s\n", c, $$1, r, $$2}'

.PHONY: run
run: $(BIN)/grpcurl ## Run the service (private Postgres unless DATABASE_URL is set); print its DATABASE_URL and commands to paste (docs/cli.md); installs the pinned grpcurl the tour uses
	$(GO) build -o $(BIN)/keyservice ./cmd/keyservice
	exec $(BIN)/keyservice dev

.PHONY: test
test: node_modules ## Run all tests against real Postgres and Redis, race detector on (~9 min on 2 cores)
	@echo "make test: every package against real PostgreSQL and Redis, race detector on; about 9 minutes on 2 cores from a warm build cache (8 min 47 s measured; internal/server, with its browser tests, alone takes 5 to 6), about 10 on a clean clone (CI=true .ci/run, builds included)."
	@echo "Packages print 'ok' as they finish, then every skipped test with its reason; run one with go test -race ./internal/NAME/"
	mkdir -p $(BIN) && $(GO) build -o $(BIN)/testreport ./internal/testreport
	$(GO) test -race -count=1 -json ./... | $(BIN)/testreport
	cd deploy && $(GO) test -count=1 ./...   # the manifests, a module of their own
	$(GO) test -count=1 -run 'NoAllocations' ./internal/...   # allocation counts, judged without the race detector (it drops pooled items)

# The console's pictures in docs/console/, taken by the browser tests
# (internal/server/browser_test.go) in headless Chromium, 1280 wide.
.PHONY: screenshots
screenshots: ## Refresh the console's screenshots in docs/console/ (the browser tests, headless Chromium)
	KEYSERVICE_SCREENSHOTS=$(CURDIR)/docs/console $(GO) test -count=1 -run 'Browser' ./internal/server

# The TypeScript generator and the Node.js client test's runtime, pinned in
# package-lock.json.
node_modules: package.json package-lock.json
	npm ci --no-audit --no-fund
	@touch node_modules

# Java callers need no Maven: Debian's jars (clients/java/classpath.sh names
# the package of any that is missing) and the stubs in api/gen/java, compiled
# once into build/java/keyservice-stubs.jar.
JAVA_STUBS_JAR := $(CURDIR)/build/java/keyservice-stubs.jar
.PHONY: java-jar java-classpath
java-jar: $(JAVA_STUBS_JAR) ## Compile the Java stubs (api/gen/java) into build/java/keyservice-stubs.jar with Debian's jars
$(JAVA_STUBS_JAR): $(shell find api/gen/java -name '*.java' 2>/dev/null)
	@cp=$$(clients/java/classpath.sh) && rm -rf build/java/classes && mkdir -p build/java/classes && \
		javac -nowarn -d build/java/classes -cp "$$cp" $$(find api/gen/java -name '*.java') && \
		jar --create --file $@ -C build/java/classes . && rm -rf build/java/classes
java-classpath: $(JAVA_STUBS_JAR) ## Print the classpath for a Java caller: Debian's gRPC jars and the stubs' jar (make -s java-classpath)
	@echo "$$(clients/java/classpath.sh):$(JAVA_STUBS_JAR)"

# The TypeScript kit's npm tarball (clients/typescript): its own pinned
# toolchain (TypeScript), the generated client copied in at build time.
TS_KIT := $(CURDIR)/build/keyservice-client-0.1.0.tgz
.PHONY: ts-kit
ts-kit: ## Build the TypeScript kit's npm tarball: build/keyservice-client-0.1.0.tgz (npm install it into your project)
	cd clients/typescript && npm ci --no-audit --no-fund --loglevel=error >/dev/null && mkdir -p ../../build && npm pack --silent --pack-destination ../../build >/dev/null
	@echo "$(TS_KIT)"

.PHONY: build
build: ## Build bin/keyservice
	$(GO) build -o $(BIN)/keyservice ./cmd/keyservice

IMAGE ?= localhost/keyservice:latest
.PHONY: image
IMAGE_CONTEXT ?= .image
image: ## Build the container image (static binary, non-root, CA certificates, tzdata; no shell) with podman
	rm -rf $(IMAGE_CONTEXT) && mkdir -p $(IMAGE_CONTEXT)
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o $(IMAGE_CONTEXT)/keyservice ./cmd/keyservice
	cp /etc/ssl/certs/ca-certificates.crt $(IMAGE_CONTEXT)/
	cp -rL /usr/share/zoneinfo $(IMAGE_CONTEXT)/zoneinfo
	printf 'root:x:0:0:root:/:/sbin/nologin\nkeyservice:x:65532:65532:keyservice:/:/sbin/nologin\n' > $(IMAGE_CONTEXT)/passwd
	printf 'root:x:0:\nkeyservice:x:65532:\n' > $(IMAGE_CONTEXT)/group
	cp Containerfile $(IMAGE_CONTEXT)/
	podman build --quiet -t $(IMAGE) -f $(IMAGE_CONTEXT)/Containerfile $(IMAGE_CONTEXT)

.PHONY: tools
tools: $(TOOLS) ## Install the pinned code generators and grpcurl into bin/

$(BIN)/buf:
	GOBIN=$(BIN) $(GO) install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
$(BIN)/sqlc:
	GOBIN=$(BIN) $(GO) install github.com/sqlc-dev/sqlc/cmd/sqlc@$(SQLC_VERSION)
$(BIN)/protoc-gen-go:
	GOBIN=$(BIN) $(GO) install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
$(BIN)/protoc-gen-go-grpc:
	GOBIN=$(BIN) $(GO) install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GO_GRPC_VERSION)
$(BIN)/protoc-gen-grpc-gateway:
	GOBIN=$(BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
$(BIN)/protoc-gen-openapiv2:
	GOBIN=$(BIN) $(GO) install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
$(BIN)/grpcurl:
	GOBIN=$(BIN) $(GO) install github.com/fullstorydev/grpcurl/cmd/grpcurl@$(GRPCURL_VERSION)

.PHONY: generate
generate: tools node_modules ## Regenerate protobuf/gRPC/gateway/OpenAPI code (buf), Python and Java stubs (Debian's protoc), queries (sqlc), the settings table (docs/configuration.md)
	@[ -x $(PROTOC) ] && [ -x $(GRPC_PYTHON_PLUGIN) ] && [ -x $(GRPC_JAVA_PLUGIN) ] || { \
		echo "make generate: Debian's protoc and gRPC plugins are needed:"; \
		echo "  apt-get install protobuf-compiler protobuf-compiler-grpc protobuf-compiler-grpc-java-plugin"; exit 1; }
	rm -rf api/gen
	$(BIN)/buf generate
	mkdir -p api/gen/python api/gen/java
	$(PROTOC) -I api -I third_party/googleapis --python_out=api/gen/python --grpc_python_out=api/gen/python \
		--plugin=protoc-gen-grpc_python=$(GRPC_PYTHON_PLUGIN) $(PROTO_FILES)
	$(MAKE) --no-print-directory py-kit-stubs
	$(PROTOC) -I api -I third_party/googleapis --java_out=api/gen/java --grpc-java_out=api/gen/java \
		--plugin=protoc-gen-grpc-java=$(GRPC_JAVA_PLUGIN) $(PROTO_FILES)
	$(BIN)/sqlc generate -f db/sqlc.yaml
	$(GO) generate ./internal/config   # docs/configuration.md's settings table, from the declarations
	$(GO) generate ./internal/outcome  # docs/api.md's table of answers, from the outcome table

.PHONY: py-kit-stubs
py-kit-stubs: ## Copy api/gen/python into the Python kit's private package, imports made relative (make generate runs it)
	rm -rf $(PY_KIT_GEN)
	mkdir -p $(PY_KIT_GEN)
	echo '"""Generated by make py-kit-stubs from api/gen/python: do not edit."""' > $(PY_KIT_GEN)/__init__.py
	for f in keyservice/v1/keyservice_pb2.py keyservice/v1/keyservice_pb2_grpc.py google/api/annotations_pb2.py google/api/http_pb2.py; do \
		sed -E -e 's/^from keyservice\.v1 import /from . import /' \
			-e 's/^from google\.api import (.*)$$/try:\n    from google.api import \1\nexcept ImportError:  # no googleapis-common-protos: the copy bundled here\n    from . import \1/' \
			api/gen/python/$$f > $(PY_KIT_GEN)/$$(basename $$f) || exit 1; \
	done

.PHONY: googleapis
googleapis: ## Refresh third_party/googleapis from the pinned grpc-gateway v1 module
	dir=$$($(GO) mod download -json $(GOOGLEAPIS_MODULE) | sed -n 's/.*"Dir": "\(.*\)".*/\1/p'); \
	install -m 644 $$dir/third_party/googleapis/google/api/{annotations,http}.proto third_party/googleapis/google/api/

.PHONY: lint
lint: tools lint-openapi ## gofmt, go vet, buf lint, redocly lint
	@fmt=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$fmt" ]; then echo "gofmt needed:"; echo "$$fmt"; exit 1; fi
	$(GO) vet ./...
	$(BIN)/buf lint

# Redocly CLI is pinned in package.json; its rules and the findings left on
# purpose (each with its reason) are in redocly.yaml and .redocly.lint-ignore.yaml.
.PHONY: lint-openapi
lint-openapi: node_modules ## redocly lint of the generated OpenAPI file (about 2 s)
	@out=$$(REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true node_modules/.bin/redocly lint --format=summary 2>&1); rc=$$?; \
	echo "$$out" | grep -E '^(error|warning) |problems are explicitly ignored|valid|failed'; \
	if [ $$rc -ne 0 ] || echo "$$out" | grep -q '^warning '; then echo "lint-openapi: fix the findings above or justify them in .redocly.lint-ignore.yaml"; exit 1; fi

.PHONY: check
check: lint generate breaking ## Lint, breaking-change check, then fail if generated code differs from its sources
	$(GO) mod tidy -diff
	cd deploy && $(GO) mod tidy -diff && $(GO) vet ./...
	@if [ -n "$$(git status --porcelain -- api $(PY_KIT_GEN) db internal/store/dbsqlc package-lock.json docs/configuration.md)" ]; then \
		echo "generated code is out of date: run 'make generate' and commit"; \
		git status --porcelain -- api $(PY_KIT_GEN) db internal/store/dbsqlc package-lock.json docs/configuration.md; git diff --stat; exit 1; fi
	@echo "check: ok"

# The proto is compared with the last committed one: HEAD while api/ has
# uncommitted changes, else the commit before HEAD (so a clean checkout,
# as in CI, checks the last commit's change). Override with
# BUF_AGAINST='.git#branch=main' to compare with a branch.
# (\043 is "#", which make would take for a comment.)
BUF_AGAINST ?= $(shell if [ -n "$$(git status --porcelain -- api/keyservice 2>/dev/null)" ]; then printf '.git\043ref=HEAD'; \
	elif git rev-parse -q --verify HEAD~1 >/dev/null 2>&1; then printf '.git\043ref=HEAD~1'; fi)

.PHONY: breaking
breaking: tools ## buf breaking: the API change is additive (wire and JSON) against the last committed proto
	@if [ -z "$(BUF_AGAINST)" ]; then echo "breaking: no earlier commit to compare with"; else \
		echo "buf breaking --against '$(BUF_AGAINST)'"; $(BIN)/buf breaking --against '$(BUF_AGAINST)'; fi

BENCH_FLAGS ?=
# New runs go to .bench/ (git-ignored); BENCH_OUT=docs replaces the
# committed reports beside docs/benchmarks.md.
BENCH_OUT ?= .bench
.PHONY: bench
bench: ## Measure every scenario over gRPC and REST against the ceiling and naive baselines, then start-up
	mkdir -p $(BENCH_OUT)
	$(GO) run ./cmd/keybench --json $(BENCH_OUT)/bench.json --svg $(BENCH_OUT)/bench.svg $(BENCH_FLAGS)
	$(MAKE) bench-startup

STARTUP_SIZES ?= 1000000,10000000
.PHONY: bench-startup
bench-startup: ## Seed 1M, then 10M keys (COPY) and time replicas to ready: table read vs the fleet's snapshot
	mkdir -p $(BENCH_OUT)
	$(GO) build -o $(BIN)/keybench ./cmd/keybench
	$(BIN)/keybench --startup $(STARTUP_SIZES) --json $(BENCH_OUT)/bench-startup.json $(BENCH_FLAGS)

.PHONY: bench-latency
bench-latency: ## The same with 0.5 ms added each way between the service and Postgres
	mkdir -p $(BENCH_OUT)
	$(GO) run ./cmd/keybench --db-latency 0.5ms --json $(BENCH_OUT)/bench-latency.json --svg $(BENCH_OUT)/bench-latency.svg $(BENCH_FLAGS)

.PHONY: bench-faults
bench-faults: ## Postgres outage, LISTEN killed, replica propagation, admin calls under a flood
	mkdir -p $(BENCH_OUT)
	$(GO) run ./cmd/keybench --faults --json $(BENCH_OUT)/bench-faults.json $(BENCH_FLAGS)

.PHONY: bench-fleet
bench-fleet: ## Rolling restart of 3 replica processes behind nginx (with Redis) under load through it
	mkdir -p $(BENCH_OUT)
	$(GO) build -o $(BIN)/keybench ./cmd/keybench
	$(BIN)/keybench --fleet --keys 100000 --json $(BENCH_OUT)/bench-fleet.json $(BENCH_FLAGS)

.PHONY: bench-console
bench-console: ## Every console page's p50/p99 on 100,000 keys with 30 days of usage, against REST ListKeys in the same run
	$(GO) test -count=1 -run '^$$' -bench BenchmarkConsolePages -benchtime 300x ./internal/server

.PHONY: fuzz
fuzz: ## Fuzz the key parser for 30s
	$(GO) test ./internal/keys -run '^$$' -fuzz FuzzParse -fuzztime 30s
