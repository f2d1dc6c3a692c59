# teleus: the two set-up commands are `make demo` and `make test` (README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The console's type checker: TypeScript pinned to an exact version, installed outside expert_console/ (served at /static/).
TYPESCRIPT_VERSION := 7.0.2
NODE_TOOLS := .tools/node
TSC := $(NODE_TOOLS)/node_modules/.bin/tsc
APT_PACKAGES := chromium dcmtk dicom3tools orthanc orthanc-dicomweb haproxy nftables coturn libpango-1.0-0 libpangoft2-1.0-0 fonts-noto-cjk poppler-utils
APT_BINARIES := /usr/bin/chromium /usr/bin/dciodvfy /usr/bin/storescu /usr/sbin/Orthanc /usr/sbin/haproxy /usr/sbin/nft /usr/bin/turnserver /usr/bin/pdftoppm

.PHONY: demo test deps system-deps python-deps lint console-check fuzz bench-live bench-capture bench-qc bench-dashboard bench-load clean

demo: python-deps
	$(BIN)/teleus demo

# Three pytest-xdist workers (each with its own temp folders, ephemeral ports, databases and Chromium) on this
# 2-core machine: the suite waits on servers, browsers and sockets about half the time, so a third worker fills the
# idle core. Grouped by file so module fixtures are made once; the folders of the longest files (end-to-end,
# benchmark smoke runs, recordings) are named first so that they start first, rather than leave one worker running
# alone at the end (pytest collects a path named twice only once). TEST_JOBS=0 runs in one process.
# Beside them, in two more processes whose output is shown when they end: the linters, and the tests that add and
# remove network namespaces and veth links on the host (marker `netlab`, one at a time: they wait on cut links and
# ICE timeouts, a minute of CPU in three of waiting). The other tests' Chromium gathers ICE candidates on the default
# route's interface only (tests/e2e/browser.py HOST_NETWORK) and their aiortc peers on 127.0.0.1, so a lab's link
# coming and going never carries their calls.
TEST_JOBS ?= 3
TEST_ORDER := tests/e2e tests/bench tests/recordings tests

test: deps
	@logs=$$(mktemp -d); \
	$(MAKE) --no-print-directory lint > $$logs/lint 2>&1 & lint=$$!; \
	$(BIN)/pytest -q -p no:cacheprovider --basetemp=$$logs/netlab-tmp -m netlab tests > $$logs/netlab 2>&1 & lab=$$!; \
	$(BIN)/pytest -q -n $(TEST_JOBS) --dist loadfile -m "not netlab" $(TEST_ORDER); suite=$$?; \
	wait $$lab; labrc=$$?; wait $$lint; lintrc=$$?; \
	echo "== lint (exit $$lintrc) =="; cat $$logs/lint; echo "== the netlab tests (exit $$labrc) =="; cat $$logs/netlab; \
	rm -rf $$logs; test $$suite = 0 -a $$labrc = 0 -a $$lintrc = 0

# System packages (Debian): installed when a binary is missing; a failed install stops the build.
system-deps:
	@missing=0; for b in $(APT_BINARIES); do [ -x "$$b" ] || missing=1; done; \
	if [ $$missing = 1 ]; then \
	  echo "installing Debian packages: $(APT_PACKAGES)"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	fi; \
	for b in $(APT_BINARIES); do [ -x "$$b" ] || { echo "missing $$b after install" >&2; exit 1; }; done

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q -U pip

# Installed once per change of pyproject.toml (a stamp in the venv): `make test` runs lint beside the suite, and a
# second pip install there cost the suite half a minute of CPU.
python-deps: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'
	touch $@

deps: system-deps python-deps

lint: python-deps console-check
	$(BIN)/ruff check signaling_server edge_capture qc recordings tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

# `tsc --noEmit` over the console's JSDoc-typed ES modules (expert_console/tsconfig.json); npm installs the pinned
# TypeScript only when it is missing or another version.
console-check:
	@[ "$$($(TSC) --version 2>/dev/null)" = "Version $(TYPESCRIPT_VERSION)" ] || \
	  npm install --prefix $(NODE_TOOLS) --no-save --no-audit --no-fund --silent typescript@$(TYPESCRIPT_VERSION)
	$(TSC) -p expert_console/tsconfig.json

# Hostile input (docs/SECURITY.md §10): the property tests with many more examples, then FUZZ_CASES malformed cases
# against a live server (bench/fuzz.py; report in bench/out/fuzz-*.json). A few minutes; not part of `make test`,
# which runs both in short.
FUZZ_CASES ?= 10000

fuzz: python-deps
	HYPOTHESIS_PROFILE=fuzz $(BIN)/pytest -q -p no:randomly \
	  tests/signaling_server/test_strictjson.py tests/signaling_server/signaling/test_messages_properties.py \
	  tests/signaling_server/api/test_body.py tests/signaling_server/dicomstore/test_multipart_properties.py \
	  tests/signaling_server/dicomstore/test_parsing_properties.py
	$(BIN)/python -m bench.fuzz --cases $(FUZZ_CASES)

bench-live: deps
	$(BIN)/python -m bench.live

bench-capture: deps
	$(BIN)/python -m bench.capture

bench-qc: deps
	$(BIN)/python -m bench.qc --edge

bench-dashboard: python-deps
	$(BIN)/python -m bench.dashboard

bench-load: python-deps
	$(BIN)/python -m bench.load

clean:
	rm -rf $(VENV) $(NODE_TOOLS) *.egg-info .pytest_cache .ruff_cache .mypy_cache
