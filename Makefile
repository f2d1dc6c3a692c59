# teleus: the two set-up commands are `make demo` and `make test` (README.md).
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
APT_PACKAGES := chromium dcmtk dicom3tools orthanc orthanc-dicomweb
APT_BINARIES := /usr/bin/chromium /usr/bin/dciodvfy /usr/bin/storescu /usr/sbin/Orthanc

.PHONY: demo test deps system-deps python-deps lint bench-live bench-capture bench-qc bench-dashboard clean

demo: python-deps
	$(BIN)/teleus demo

test: deps lint
	$(BIN)/pytest -q

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

python-deps: $(BIN)/python
	$(BIN)/pip install -q -e '.[test]'

deps: system-deps python-deps

lint: python-deps
	$(BIN)/ruff check signaling_server edge_capture qc recordings tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

bench-live: deps
	$(BIN)/python -m bench.live

bench-capture: deps
	$(BIN)/python -m bench.capture

bench-qc: deps
	$(BIN)/python -m bench.qc --edge

bench-dashboard: python-deps
	$(BIN)/python -m bench.dashboard

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .ruff_cache .mypy_cache
