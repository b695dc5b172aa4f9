# The two commands of the README. Each makes and fills .venv on first use.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: train test install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# Trains the default experiment on the embedded MNIST subset (about five minutes on 2 CPU cores).
train: $(STAMP)
	$(PY) -m gan_lab $(ARGS)

# Two worker processes, each test file on one worker (the files share module-scoped checkpoints).
test: $(STAMP)
	$(PY) -m pytest -n 2 --dist loadfile $(ARGS)

clean:
	rm -rf $(VENV) outputs multirun
