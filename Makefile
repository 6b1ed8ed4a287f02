# make demo  -- set up .venv (pinned) and run the end-to-end demo on the embedded store
# make test  -- set up .venv and run the test suite (what .ci/run calls)
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false

.PHONY: demo test venv lock clean

venv: $(STAMP)

$(STAMP): requirements/lock.txt requirements/nodeps.txt pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools==81.0.0 wheel==0.48.0  # build tools (torch needs setuptools<82)
	$(PY) -m pip install -q -r requirements/lock.txt
	$(PY) -m pip install -q --no-deps -r requirements/nodeps.txt
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m ctxrec.cli demo

test: $(STAMP)
	$(PY) -m pytest

# regenerate the lock and environment.yml from the current .venv (requirements/nodeps.txt stays out:
# `pip install -r` would pull their declared dependencies)
lock:
	$(PY) -m pip freeze --exclude-editable | grep -v '^ctxrec' | grep -v -i -x -F -f requirements/nodeps.txt > requirements/lock.txt
	$(PY) scripts/write_environment_yml.py

clean:
	rm -rf runs .ctxrec

# the local Neo4j Community server (built from Maven Central, see tools/neo4j/README.md)
.PHONY: neo4j-start neo4j-stop neo4j-status neo4j-smoke
neo4j-start:
	scripts/neo4j.sh start
neo4j-stop:
	scripts/neo4j.sh stop
neo4j-status:
	scripts/neo4j.sh status
neo4j-smoke: $(STAMP)
	$(PY) tools/neo4j/smoke.py

# DGL round trip: .venv-dgl (torch 2.2.1 + dgl 2.1.0, built once, kept by its stamp) loads a
# bundle the core venv writes (tests/dgl/write_bundle.py)
DGL_VENV := .venv-dgl
DGL_STAMP := $(DGL_VENV)/.installed
DGL_OUT := runs/test-dgl
.PHONY: test-dgl
$(DGL_STAMP): scripts/dgl_env.sh requirements/dgl-lock.txt
	scripts/dgl_env.sh
test-dgl: $(STAMP) $(DGL_STAMP)
	rm -rf $(DGL_OUT)
	$(PY) tests/dgl/write_bundle.py $(DGL_OUT)
	DGLBACKEND=pytorch CTXREC_DGL_BUNDLE=$(CURDIR)/$(DGL_OUT) $(DGL_VENV)/bin/python -m pytest tests/dgl -q
