# The course's two commands (see README.md):
#   make lab    set everything up, then open the course in JupyterLab
#   make test   set everything up, then run the whole test suite (what CI runs)
#   make slides export every lesson as a reveal.js deck into build/slides/ (presents offline)
#   make site   build the course website into build/site/ (offline, from the executed notebooks)
#   make bench  measure the course's speed (benchmarks/run.py; BENCH_ARGS="--langs en ru" ...)
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: lab test bench slides site setup clean-venv

setup: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m ipykernel install --sys-prefix --name coursekit --display-name "Python (coursekit)" >/dev/null
	$(BIN)/python -c "import coursekit; coursekit.ensure_files()" || echo "(no data yet: see README, 'Data')"
	touch $(STAMP)

lab: $(STAMP)
	$(BIN)/jupyter lab notebooks $(if $(filter 0,$(shell id -u)),--allow-root,)

test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

slides: $(STAMP)
	$(BIN)/python tools/decks.py
	@echo "decks in build/slides/<lang>/*.slides.html: open one in a browser (no network needed)"

site: $(STAMP)
	$(BIN)/python tools/website.py
	@echo "website in build/site/: open build/site/index.html, or serve it: $(BIN)/python -m http.server -d build/site"

bench: $(STAMP)
	$(BIN)/python benchmarks/run.py $(BENCH_ARGS)

clean-venv:
	rm -rf $(VENV)
