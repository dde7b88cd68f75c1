# Spoor: `make run` starts the all-in-one daemon; `make test` runs everything CI runs.
# Every target installs what it needs itself (idempotently) on a fresh Debian machine with
# rustup, Node/npm and Python.

SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= ./spoor-data
CLIENTS := tests/clients
VENV := $(CLIENTS)/.venv
export CARGO_TERM_COLOR ?= never
# CI builds each commit once from a fresh clone: incremental caches only cost disk there.
ifeq ($(CI),true)
export CARGO_INCREMENTAL ?= 0
endif

.PHONY: run build test tools test-clients lint nostd cross unit e2e bench bench-smoke clean-data

## run: build, then start the all-in-one daemon on embedded sled (UI and query API on :16686)
run: build
	./target/release/spoor all-in-one --storage sled --data-dir $(DATA_DIR) --query.static-files www/dist

## build: everything `run` needs, without starting it (the daemon and the web UI)
build: ui
	$(CARGO) build --release -p spoor

## test: formatting, lints, no_std and cross-target builds, unit, conformance and end-to-end tests
test: tools test-clients lint nostd cross plugins plugins-hostile unit fuzz-regress wasm-test bench-smoke e2e ui-test edge-test

GARAGE_VERSION = 2.5.0

# Rust targets used to prove no_std and the Windows build.
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	@rustup target list --installed | grep -qx thumbv7em-none-eabi || rustup target add thumbv7em-none-eabi
	@rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@command -v x86_64-w64-mingw32-gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64 >/dev/null; }
	@command -v openssl >/dev/null && command -v curl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl curl >/dev/null; }
	@# the span-log end-to-end tests start a 3-node JetStream cluster of Debian's nats-server
	@command -v nats-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null; }
	@# the object-storage end-to-end tests start a 3-node Garage cluster (S3-compatible; AGPL, run
	@# as a separate server, never linked): built once from crates.io (~7 min on 2 cores), reused
	@garage --version 2>/dev/null | grep -q 'cargo:$(GARAGE_VERSION) ' || \
		$(CARGO) install garage --locked --version $(GARAGE_VERSION) --no-default-features \
			--features bundled-libs,lmdb --target-dir target/tools/garage

# Real OpenTelemetry clients (Python SDK, JS SDK) for the end-to-end tests, in ignored folders.
test-clients: $(VENV)/.installed $(CLIENTS)/node_modules/.installed

$(VENV)/.installed: $(CLIENTS)/requirements.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q --disable-pip-version-check -r $(CLIENTS)/requirements.txt
	touch $@

$(CLIENTS)/node_modules/.installed: $(CLIENTS)/package.json $(CLIENTS)/package-lock.json
	cd $(CLIENTS) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

# The core must build with no std for a browser target and for bare metal.
nostd:
	$(CARGO) build -p spoor-core --no-default-features --target wasm32-unknown-unknown
	$(CARGO) build -p spoor-core --no-default-features --target thumbv7em-none-eabi

# The daemon must at least type-check for Windows.
cross:
	$(CARGO) check -p spoor --target x86_64-pc-windows-gnu

unit:
	$(CARGO) test --workspace --exclude spoor-tests

# End-to-end: the real daemon binary on free 127.0.0.1 ports, fed by real OTel clients.
e2e: test-clients
	$(CARGO) build -p spoor -p spoor-bench --bin spoor --bin spoor-loadgen
	$(CARGO) test -p spoor-tests -- --test-threads 2

## soak: the long reliability runs of RELIABILITY.md: the overload test for SOAK_SECS (60) at
## three times the measured capacity, then the kill -9 test with CRASH_KILLS (50) kills.
SOAK_SECS ?= 60
CRASH_KILLS ?= 50
.PHONY: soak
soak:
	$(CARGO) build -p spoor
	SPOOR_SOAK_SECS=$(SOAK_SECS) $(CARGO) test -p spoor-tests -- --nocapture overload
	SPOOR_CRASH_KILLS=$(CRASH_KILLS) $(CARGO) test -p spoor-tests -- --nocapture acknowledged_spans_survive

## bench: release builds, then the macro benchmarks (ingest, pipeline vs rotel, query latency,
## bytes on disk); rewrites the generated part of BENCHMARKS.md. Extra flags: BENCH_ARGS="--spans 1000000"
## bench: the macro benchmarks of BENCHMARKS.md (10M spans; minutes). BENCH_ARGS="--spans 1000000" for less
bench:
	python3 benches/macro.py $(BENCH_ARGS)

# The benchmark harness in a tiny mode (seconds after the release build) so it cannot rot;
# Criterion benches run once each in test mode (`cargo test --benches`).
bench-smoke:
	$(CARGO) test -p spoor-bench --benches
	python3 benches/macro.py --smoke

clean-data:
	rm -rf $(DATA_DIR)

# Hostile test plugins (plugins/tests/*, spoor-plugin-host's sandbox tests and the plugin bench)
# -> target/plugins/hostile/<name>.wasm. Never deployed.
HOSTILE_PLUGINS := loop membomb trap garbage oversize greedy snoop sleepy patchy badpolicy typed
.PHONY: plugins-hostile
plugins-hostile:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	$(CARGO) build --release --target wasm32-wasip2 $(foreach p,$(filter-out typed,$(HOSTILE_PLUGINS)),-p spoor-plugin-hostile-$(p)) -p spoor-plugin-bench-typed
	@mkdir -p target/plugins/hostile
	@for p in $(filter-out typed,$(HOSTILE_PLUGINS)); do cp target/wasm32-wasip2/release/spoor_plugin_hostile_$${p//-/_}.wasm target/plugins/hostile/$$p.wasm; done
	@cp target/wasm32-wasip2/release/spoor_plugin_bench_typed.wasm target/plugins/hostile/typed.wasm

# Example plugins (plugins/examples/*) -> target/plugins/<name>.wasm, WebAssembly components.
# rustc links wasm32-wasip2 cdylibs with the `wasm-component-ld` that rustup ships for the
# target, so the output is already a component (no wasm-tools needed); the check below refuses a
# core module (magic + version 1 instead of the component layer's `0d 00 01 00`).
PLUGINS := redact drop rename slo
.PHONY: plugins
plugins:
	@rustup target list --installed | grep -qx wasm32-wasip2 || rustup target add wasm32-wasip2
	$(CARGO) build --release --target wasm32-wasip2 $(foreach p,$(PLUGINS),-p spoor-plugin-$(p))
	@mkdir -p target/plugins
	@for p in $(PLUGINS); do \
		f=target/wasm32-wasip2/release/spoor_plugin_$$p.wasm; \
		[ "$$(head -c 8 $$f | od -An -tx1 | tr -d ' \n')" = 0061736d0d000100 ] \
			|| { echo "$$f is not a WebAssembly component" >&2; exit 1; }; \
		cp $$f target/plugins/$$p.wasm; \
		echo "target/plugins/$$p.wasm: $$(wc -c < target/plugins/$$p.wasm) bytes"; \
	done

# Browser module (wasm/, issue #7) -> target/wasm/pkg (ES module + .wasm for `--target web`).
# Installs what it needs once: the wasm32 target, wasm-bindgen-cli at exactly the version of
# the `wasm-bindgen` crate in Cargo.lock, and npm `binaryen` (wasm-opt) under target/wasm/tools.
WASM_BINDGEN_VERSION = $(shell awk '/^name = "wasm-bindgen"$$/{getline; gsub(/"/,"",$$3); print $$3}' Cargo.lock)
WASM_TOOLS := target/wasm/tools
WASM_OPT := $(WASM_TOOLS)/node_modules/.bin/wasm-opt
.PHONY: wasm wasm-tools wasm-test
wasm-tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@[ "$$(wasm-bindgen --version 2>/dev/null)" = "wasm-bindgen $(WASM_BINDGEN_VERSION)" ] \
		|| $(CARGO) install wasm-bindgen-cli --version $(WASM_BINDGEN_VERSION)
	@[ -x $(WASM_OPT) ] || { mkdir -p $(WASM_TOOLS) && cd $(WASM_TOOLS) \
		&& npm install --no-audit --no-fund --loglevel=error --prefix . binaryen >/dev/null; }

wasm: wasm-tools
	$(CARGO) build --profile wasm-release --target wasm32-unknown-unknown -p spoor-wasm
	wasm-bindgen --target web --out-dir target/wasm/pkg \
		target/wasm32-unknown-unknown/wasm-release/spoor_wasm.wasm
	$(WASM_OPT) -Oz --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
		--enable-mutable-globals --enable-reference-types --enable-multivalue \
		target/wasm/pkg/spoor_wasm_bg.wasm -o target/wasm/pkg/spoor_wasm_bg.wasm
	@f=target/wasm/pkg/spoor_wasm_bg.wasm; raw=$$(wc -c < $$f); gz=$$(gzip -9c $$f | wc -c); \
		echo "$$f: $$raw bytes raw, $$gz bytes gzipped ($$((gz / 1024)) KiB; goal <= 250 KiB)"; \
		[ $$gz -le 256000 ] || { echo "spoor_wasm_bg.wasm is over 250 KiB gzipped" >&2; exit 1; }

# The browser module's wasm-bindgen tests, in Node (parsing, timeline, critical path, diff,
# and timings on generated 10k- and 100k-span traces).
wasm-test: wasm-tools
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
		$(CARGO) test --release --target wasm32-unknown-unknown -p spoor-wasm -- --nocapture

# Web UI (www/: React + TypeScript, built by Vite, issue #7) -> www/dist, with the browser module
# from `make wasm`. npm ci runs again only when package.json or the lock file changes (stamp).
UI := www
UI_E2E := tests/ui
.PHONY: ui ui-test chromium
$(UI)/node_modules/.installed: $(UI)/package.json $(UI)/package-lock.json
	cd $(UI) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(UI_E2E)/node_modules/.installed: $(UI_E2E)/package.json $(UI_E2E)/package-lock.json
	cd $(UI_E2E) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ui: $(UI)/node_modules/.installed wasm
	cd $(UI) && npm run build
	@echo "www/dist: $$(du -sk $(UI)/dist | cut -f1) KiB"

# Debian's Chromium for the browser tests (driven by npm playwright-core; no browser downloads).
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Component tests (Vitest, jsdom, the real wasm module) and browser end-to-end tests (the real
# daemon on free ports, fixture traces over OTLP/HTTP, headless Chromium).
ui-test: ui $(UI_E2E)/node_modules/.installed chromium
	cd $(UI) && npm test
	$(CARGO) build -p spoor
	cd $(UI_E2E) && node --test e2e.test.mjs
	node benches/ui/bench.mjs --smoke

## bench-ui: 10,000- and 100,000-span traces opened in headless Chromium (Inspect page and trace
## page), median time from data arrived to interactive; goals 1 s and 3 s. BENCH_UI_ARGS="--runs 9"
.PHONY: bench-ui
bench-ui: ui $(UI_E2E)/node_modules/.installed chromium
	node benches/ui/bench.mjs $(BENCH_UI_ARGS)

# Edge collector on Cloudflare Workers (wasm/edge, issue #8) -> wasm/edge/build (index.js +
# index_bg.wasm, what `wrangler deploy` uploads). Installs once: worker-build at exactly 0.8.7
# (cargo, into cargo's bin directory like wasm-bindgen-cli, so clones share it) and npm esbuild +
# wrangler (under target/edge/tools); worker-build is pointed at the local wasm-bindgen, wasm-opt
# and esbuild so it downloads nothing itself.
EDGE_TOOLS := target/edge/tools
EDGE_WORKER_BUILD := $(or $(CARGO_HOME),$(HOME)/.cargo)/bin/worker-build
EDGE_NPM := esbuild@0.28.2 wrangler@4.86.0
EDGE_E2E := tests/edge
.PHONY: edge edge-tools edge-test bench-edge
edge-tools: wasm-tools
	@[ "$$($(EDGE_WORKER_BUILD) --version 2>/dev/null)" = "0.8.7" ] \
		|| $(CARGO) install worker-build --version 0.8.7 --locked
	@[ -x $(EDGE_TOOLS)/node_modules/.bin/esbuild ] && [ -x $(EDGE_TOOLS)/node_modules/.bin/wrangler ] \
		|| { mkdir -p $(EDGE_TOOLS) && cd $(EDGE_TOOLS) && WRANGLER_SEND_METRICS=false \
			npm install --no-audit --no-fund --loglevel=error --prefix . $(EDGE_NPM) >/dev/null; }

edge: edge-tools
	cd wasm/edge && WASM_BINDGEN_BIN="$$(command -v wasm-bindgen)" WASM_OPT_BIN="$(CURDIR)/$(WASM_OPT)" \
		ESBUILD_BIN="$(CURDIR)/$(EDGE_TOOLS)/node_modules/.bin/esbuild" \
		"$(EDGE_WORKER_BUILD)" --profile wasm-release
	@raw=$$(cat wasm/edge/build/index.js wasm/edge/build/index_bg.wasm | wc -c); \
		gz=$$(( $$(gzip -9c wasm/edge/build/index.js | wc -c) + $$(gzip -9c wasm/edge/build/index_bg.wasm | wc -c) )); \
		echo "wasm/edge/build: $$raw bytes raw, $$gz bytes gzipped ($$((gz / 1024)) KiB; goal <= 1 MiB)"; \
		[ $$gz -le 1048576 ] || { echo "the edge worker bundle is over 1 MiB gzipped" >&2; exit 1; }

$(EDGE_E2E)/node_modules/.installed: $(EDGE_E2E)/package.json $(EDGE_E2E)/package-lock.json
	cd $(EDGE_E2E) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# End-to-end: the real daemon and the worker in workerd (miniflare), OTel JS SDK and plain OTLP,
# the collector stopped and restarted mid-stream, and the refusals (401/403/413, CORS). The worker
# forwards over TLS to the daemon (certificates made by `openssl` at test time).
edge-test: edge $(EDGE_E2E)/node_modules/.installed chromium
	@command -v openssl >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null; }
	$(CARGO) build -p spoor
	cd $(EDGE_E2E) && node --test e2e.test.mjs

# CPU per 100-span OTLP batch of the worker's request logic compiled to wasm (median of many
# runs in Node), and the gzipped bundle size of `make edge`.
bench-edge: edge
	$(CARGO) build --profile wasm-release --target wasm32-unknown-unknown -p spoor-edge \
		--no-default-features --features bench
	wasm-bindgen --target nodejs --out-dir target/edge/bench \
		target/wasm32-unknown-unknown/wasm-release/spoor_edge.wasm
	$(CARGO) run -q -p spoor-edge --example otlp_body -- 100 > target/edge/bench/body-100.bin
	node benches/edge/bench.mjs target/edge/bench target/edge/bench/body-100.bin wasm/edge/build

# Fuzzing (issue #9, tests/fuzz; results in RELIABILITY.md). tests/fuzz is its own cargo
# workspace with its own target dir. cargo-fuzz, exactly 0.13.1, is installed once into
# target/fuzz/tools; it runs on the stable toolchain with RUSTC_BOOTSTRAP=1 (for the -Z flags it
# passes), without a sanitizer (the crates under test deny unsafe code), optimised with debug
# assertions and overflow checks, all targets built once. `make fuzz` runs each target for
# FUZZ_SECONDS with the committed corpus (which it grows; minimise by hand with
# `cargo fuzz cmin`), prints its executions, and fails if any target crashed (the input is in
# tests/fuzz/artifacts/<target>/; minimise it with `cargo fuzz tmin` and keep it in
# tests/fuzz/regressions/<target>/). `make fuzz-regress` replays every corpus and regression
# file through the targets' library on stable, in seconds.
FUZZ_SECONDS ?= 60
FUZZ_TOOLS := target/fuzz/tools
FUZZ_DIR := tests/fuzz
CARGO_FUZZ := RUSTC_BOOTSTRAP=1 $(FUZZ_TOOLS)/bin/cargo-fuzz fuzz
CARGO_FUZZ_FLAGS := --fuzz-dir $(FUZZ_DIR) -O -a -s none
FUZZ_TARGETS = $(sort $(basename $(notdir $(wildcard $(FUZZ_DIR)/fuzz_targets/*.rs))))
.PHONY: fuzz fuzz-tools fuzz-regress
fuzz-tools:
	@[ "$$($(FUZZ_TOOLS)/bin/cargo-fuzz --version 2>/dev/null)" = "cargo-fuzz 0.13.1" ] \
		|| $(CARGO) install cargo-fuzz --version 0.13.1 --locked --root $(FUZZ_TOOLS)

fuzz: fuzz-tools
	$(CARGO_FUZZ) build $(CARGO_FUZZ_FLAGS)
	@mkdir -p target/fuzz/logs; failed=""; \
	for t in $(FUZZ_TARGETS); do \
		mkdir -p $(FUZZ_DIR)/corpus/$$t; \
		$(CARGO_FUZZ) run $(CARGO_FUZZ_FLAGS) $$t $(FUZZ_DIR)/corpus/$$t -- \
			-max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			> target/fuzz/logs/$$t.log 2>&1 || failed="$$failed $$t"; \
		echo "$$t: $$(sed -n 's/^stat::number_of_executed_units: *//p' target/fuzz/logs/$$t.log) executions" \
			"in $$(sed -n 's/^Done .* in \([0-9]*\) second.*/\1/p' target/fuzz/logs/$$t.log) s," \
			"corpus $$(ls $(FUZZ_DIR)/corpus/$$t | wc -l) files"; \
	done; \
	[ -z "$$failed" ] || { echo "crashed:$$failed (logs in target/fuzz/logs, inputs in $(FUZZ_DIR)/artifacts)" >&2; exit 1; }

fuzz-regress:
	cd $(FUZZ_DIR) && $(CARGO) test --no-default-features --lib -- --nocapture
