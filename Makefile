# The two commands of README.md: `make run` and `make test`.
#
# One cargo profile (release) for everything: rocksdb's C++ build takes ~25
# minutes on two cores and must happen once per machine, not once per
# profile. The target dir lives outside the clone so that later clones
# (and CI on this machine) reuse it; a fresh machine simply builds it.
export CARGO_TARGET_DIR ?= $(HOME)/.cache/bulkhead/target
# The Python SDK's tests and buf run from here (scripts/setup.sh makes it).
PY_VENV ?= $(or $(BULKHEAD_PY_VENV),$(HOME)/.cache/bulkhead/py-venv)
export BULKHEAD_PY_VENV := $(PY_VENV)
# A recipe line whose pipeline fails anywhere fails.
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
CARGO := cargo
PROFILE := --release --locked
# Every command selects the whole workspace: the set of selected packages
# decides the features of bindgen's build dependencies, and with them the
# hash of librocksdb-sys. Building `-p bulkhead` alone would compile
# rocksdb a second time.
WS := --workspace

.PHONY: setup run test bench
setup:
	@./scripts/setup.sh

# The server and the embedding sidecar it starts when the model is there.
run:
	@./scripts/setup.sh run
	$(CARGO) build $(PROFILE) $(WS) --bin bulkhead --bin bulkhead-embedder
	$(CARGO_TARGET_DIR)/release/bulkhead serve

test: setup
	@./scripts/test-setup.sh
	$(CARGO) fmt --all --check
	# The proto contract: buf from the virtualenv (PyPI buf-bin), lint and,
	# once a release is tagged, no breaking change against it.
	$(PY_VENV)/bin/buf lint && echo "buf lint: ok"
	@tag=$$(git describe --tags --abbrev=0 --match 'v*' 2>/dev/null || true); \
	if [ -n "$$tag" ]; then $(PY_VENV)/bin/buf breaking --against ".git#tag=$$tag" && echo "buf breaking against $$tag: ok"; \
	else echo "buf breaking: no release tag yet"; fi
	$(CARGO) clippy $(PROFILE) $(WS) --all-targets -- -D warnings
	$(CARGO) test $(PROFILE) $(WS)
	$(CARGO) build $(PROFILE) $(WS) --bin bulkhead --bin bulkhead-embedder
	# The Python SDK, LangChain's standard suite and LlamaIndex, against
	# that binary.
	cd sdk/python && PYTHONPATH=src $(PY_VENV)/bin/python -m pytest -q
	# Superseded builds of the workspace leave the target dir (the builds
	# below are the ones above, fresh: they only name their artifacts).
	@state=$$(mktemp) && \
	$(CARGO) test $(PROFILE) $(WS) --no-run -q --message-format=json | ./scripts/prune-target.py collect $$state && \
	$(CARGO) build $(PROFILE) $(WS) --bin bulkhead --bin bulkhead-embedder -q --message-format=json | ./scripts/prune-target.py collect $$state && \
	./scripts/prune-target.py apply $$state

bench:
	@./scripts/setup.sh run
	$(CARGO) bench --locked $(WS) --bench tenant
