# Two commands a fresh machine needs: `make run` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint install docs screenshots bench bench-memory bench-routing model clean

$(STAMP): setup.cfg pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) on PATH"; exit 1; }
	@echo "installing maild and what it needs into $(VENV)/ (a minute or two; pip's log: $(VENV)/install.log)"
	@$(PYTHON) -m venv $(VENV)
	@{ $(BIN)/pip install --upgrade pip && $(BIN)/pip install -e '.[test]'; } > $(VENV)/install.log 2>&1 \
	  || { tail -n 15 $(VENV)/install.log; echo "the install failed: the whole of it is in $(VENV)/install.log"; exit 1; }
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	@$(BIN)/maild db init
	@$(BIN)/maild serve --web

test: $(STAMP)
	$(BIN)/pytest -q

# The pages in a real browser, their screenshots written into docs/screenshots/ (docs/web.md shows them).
screenshots: $(STAMP)
	MAILD_SCREENSHOTS=$(CURDIR)/docs/screenshots $(BIN)/pytest -q tests/test_web_browser.py

# Lint and type checks (configured in pyproject.toml); CI runs this before the tests.
lint: $(STAMP)
	$(BIN)/ruff check maild tests bench
	$(BIN)/mypy maild

# The configuration reference, written from the schema in maild/config_schema.py (a test compares).
docs: $(STAMP)
	$(BIN)/maild config reference > docs/config.md.tmp && mv docs/config.md.tmp docs/config.md

bench: $(STAMP)
	$(BIN)/python bench/ingest.py

bench-memory: $(STAMP)
	$(BIN)/python bench/memory.py

# Routing on the test part of tests/fixtures/routing, beside the version before the reading.
bench-routing: $(STAMP)
	$(BIN)/python bench/routing.py --baseline a62b421

# The shipped model from the examples under rules/ (needs the [train] extra; the tests have it).
model: $(STAMP)
	$(BIN)/maild rules train --no-db

clean:
	rm -rf $(VENV) var *.egg-info
