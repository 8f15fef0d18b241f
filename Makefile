# Two entry points: `make demo` runs the demo, `make test` runs the tests. Both create .venv first.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch is pinned so that these machines install the CPU build from local disk.
TORCH := torch==2.13.0
# The demo needs the core only; the tests exercise every optional feature.
EXTRAS := test,encoders,ray,label,media,text,tensorboard,mlflow

.PHONY: demo test install clean

$(BIN)/activate:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-core: $(BIN)/activate pyproject.toml
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-$(EXTRAS): $(VENV)/.installed-core
	$(BIN)/python -m pip install --quiet -e ".[$(EXTRAS)]"
	touch $@

install: $(VENV)/.installed-$(EXTRAS)

demo: $(VENV)/.installed-core
	$(BIN)/bmmal demo

test: $(VENV)/.installed-$(EXTRAS)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) demo-output
