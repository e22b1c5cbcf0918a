# Doseport: `make run` starts everything, `make test` checks everything.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# The data folder of this install, read by lib/env.py when DOSEPORT_HOME is unset, so that
# $(BIN)/doseport finds it from any folder (docs/configuration.md).
HOME_FILE = $(VENV)/doseport-home
# Where `make install-launcher` writes the `doseport` command; `make run` refreshes it there
# when that folder is on PATH.
LAUNCHER_DIR ?= $(HOME)/.local/bin
LAUNCHER_MARK := \# Doseport launcher

.PHONY: run test lint typecheck pytest clean remember-home install-launcher

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	@$(MAKE) --no-print-directory remember-home
	@case ":$$PATH:" in *":$(LAUNCHER_DIR):"*) \
	  $(MAKE) --no-print-directory install-launcher || true ;; \
	*) echo "Run Doseport's commands as $(CURDIR)/$(BIN)/doseport (or: make install-launcher)" ;; \
	esac
	$(BIN)/doseport run

# DOSEPORT_HOME given to make wins; otherwise the folder already remembered, else ./var here.
remember-home:
	@if [ -n "$(DOSEPORT_HOME)" ]; then \
	  (cd "$(CURDIR)" && mkdir -p "$(DOSEPORT_HOME)" && cd "$(DOSEPORT_HOME)" && pwd -P) \
	    > "$(HOME_FILE)"; \
	elif [ ! -s "$(HOME_FILE)" ]; then \
	  echo "$(CURDIR)/var" > "$(HOME_FILE)"; \
	fi
	@echo "Data folder: $$(cat "$(HOME_FILE)") (remembered in $(HOME_FILE))"

# A small sh script that runs this install's doseport; never replaces a file it did not write.
install-launcher:
	@mkdir -p "$(LAUNCHER_DIR)"
	@if [ -e "$(LAUNCHER_DIR)/doseport" ] && ! grep -q "^$(LAUNCHER_MARK)" "$(LAUNCHER_DIR)/doseport"; then \
	  echo "$(LAUNCHER_DIR)/doseport exists and is not a Doseport launcher: left alone" >&2; \
	  exit 1; \
	fi
	@printf '%s\n' '#!/bin/sh' \
	  "$(LAUNCHER_MARK) for $(CURDIR) (make install-launcher). Its data folder is" \
	  "# remembered in $(CURDIR)/$(HOME_FILE); DOSEPORT_HOME, when set, wins." \
	  "exec '$(CURDIR)/$(BIN)/doseport' \"\$$@\"" > "$(LAUNCHER_DIR)/doseport.tmp"
	@chmod 755 "$(LAUNCHER_DIR)/doseport.tmp"
	@mv "$(LAUNCHER_DIR)/doseport.tmp" "$(LAUNCHER_DIR)/doseport"
	@echo "Launcher: $(LAUNCHER_DIR)/doseport runs $(CURDIR)/$(BIN)/doseport"

lint: $(STAMP)
	$(BIN)/ruff check .

typecheck: $(STAMP)
	$(BIN)/mypy .

# The receive-path tests once more with the fast lane off (stock pynetdicom behind
# store/acceptor, as a node runs when an internal the lane needs is missing); only on a
# full run (no PYTEST_ARGS).
STORE_LANE_OFF_TESTS = tests/test_store_interop.py tests/test_store_bad_input.py \
	tests/test_store_limits.py tests/test_store_fuzz.py tests/test_store_spool_errors.py \
	tests/test_store_acceptor.py

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)
	$(if $(PYTEST_ARGS),,DOSEPORT_STORE_FAST_LANE=false $(BIN)/pytest $(STORE_LANE_OFF_TESTS))

test: lint typecheck pytest

# Keeps the remembered data folder: without it the next `make run` would start an empty
# ./var instead of the install's data.
clean:
	@if [ -s "$(HOME_FILE)" ]; then cp "$(HOME_FILE)" .doseport-home.keep; fi
	rm -rf $(VENV) build *.egg-info
	@if [ -f .doseport-home.keep ]; then \
	  mkdir -p $(VENV) && mv .doseport-home.keep "$(HOME_FILE)"; \
	  echo "kept $(HOME_FILE): $$(cat "$(HOME_FILE)")"; \
	fi
