# Spoor: `make run` starts the all-in-one daemon; `make test` runs everything CI runs.
# Every target installs what it needs itself (idempotently) on a fresh Debian machine with
# rustup, Node/npm and Python.

SHELL := /bin/bash
CARGO ?= cargo
DATA_DIR ?= ./spoor-data
CLIENTS := tests/clients
VENV := $(CLIENTS)/.venv
export CARGO_TERM_COLOR ?= never

.PHONY: run build test tools test-clients lint nostd cross unit e2e bench bench-smoke clean-data

## run: build, then start the all-in-one daemon on embedded sled (query API on :16686)
run: build
	./target/release/spoor all-in-one --storage sled --data-dir $(DATA_DIR)

## build: everything `run` needs, without starting it
build:
	$(CARGO) build --release -p spoor

## test: formatting, lints, no_std and cross-target builds, unit, conformance and end-to-end tests
test: tools test-clients lint nostd cross unit bench-smoke e2e

# Rust targets used to prove no_std and the Windows build.
tools:
	@rustup target list --installed | grep -qx wasm32-unknown-unknown || rustup target add wasm32-unknown-unknown
	@rustup target list --installed | grep -qx thumbv7em-none-eabi || rustup target add thumbv7em-none-eabi
	@rustup target list --installed | grep -qx x86_64-pc-windows-gnu || rustup target add x86_64-pc-windows-gnu
	@rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt
	@rustup component list --installed | grep -q '^clippy' || rustup component add clippy
	@command -v x86_64-w64-mingw32-gcc >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gcc-mingw-w64-x86-64 >/dev/null; }

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
	$(CARGO) build -p spoor
	$(CARGO) test -p spoor-tests -- --test-threads 2

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
