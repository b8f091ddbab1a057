# factorlab: two commands for learners, `make lab` and `make test`.
# Needs only Python 3.11, git and make; everything else goes into .venv.

.DEFAULT_GOAL := help

VENV  := .venv
STAMP := $(VENV)/.stamp
VPY   := $(VENV)/bin/python

# The interpreter that builds the venv: python3.11, or python3 if that is 3.11.
# Override with `make PYTHON=/path/to/python3.11 ...`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || { python3 -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null && command -v python3; })

IS_311 := import sys; sys.exit(sys.version_info[:2] != (3, 11))

PYTEST_ARGS := -p no:cacheprovider --nbval --nbval-current-env \
	--nbval-sanitize-with notebooks/sanitize.cfg tests notebooks -q -rs --durations=15

.PHONY: help venv lab test notebooks clean

help:
	@echo "factorlab: learn the Twelve-Factor App by refactoring one Flask app"
	@echo
	@echo "  make lab    open the course in JupyterLab (builds .venv on first use)"
	@echo "  make test   run the course's tests and notebooks (builds .venv on first use)"
	@echo
	@echo "  make venv   only build or refresh .venv"
	@echo "  make notebooks  rebuild the notebooks from notebooks/source and run them (for course authors)"
	@echo "  make clean  remove .venv and build leftovers (your progress is kept)"

venv: $(STAMP)

# Rebuilt only when the lock or the package metadata changed.
$(STAMP): requirements.txt pyproject.toml
	@if [ -z "$(PYTHON)" ]; then \
	  echo "error: Python 3.11 not found." >&2; \
	  echo "  Looked for 'python3.11', then for a 'python3' that is 3.11." >&2; \
	  echo "  Install Python 3.11 (https://www.python.org/downloads/), or point make at it:" >&2; \
	  echo "    make PYTHON=/path/to/python3.11 $(MAKECMDGOALS)" >&2; \
	  exit 1; \
	fi
	@"$(PYTHON)" -c '$(IS_311)' 2>/dev/null || { \
	  echo "error: $(PYTHON) is not Python 3.11 (the course uses 3.11 everywhere)." >&2; exit 1; }
	@if [ -x "$(VPY)" ] && "$(VPY)" -c '$(IS_311)' 2>/dev/null; then \
	  echo "Updating $(VENV) ..."; \
	else \
	  echo "Creating $(VENV) with $(PYTHON) ..."; \
	  rm -rf "$(VENV)"; \
	  "$(PYTHON)" -m venv "$(VENV)" || { rm -rf "$(VENV)"; \
	    echo "error: $(PYTHON) could not create a virtual environment." >&2; \
	    echo "  On Debian/Ubuntu: sudo apt install python3.11-venv" >&2; exit 1; }; \
	fi
	"$(VPY)" -m pip install --disable-pip-version-check -q -r requirements.txt
	"$(VPY)" -m pip install --disable-pip-version-check -q -e .
	@touch "$(STAMP)"
	@echo "$(VENV) is ready."

lab: venv
	$(VENV)/bin/jupyter lab notebooks/00_welcome.ipynb

# One pytest run (unit tests + notebooks), so the last line is pytest's summary.
test: venv
	$(VPY) -m pytest $(PYTEST_ARGS)

# For course authors: each notebook is built from its text source and executed, outputs stored.
notebooks: venv
	$(VPY) -m factorlab.dev.notebooks

clean:
	rm -rf "$(VENV)" build dist src/*.egg-info .pytest_cache
	find . -name __pycache__ -type d -prune -not -path './.git/*' -exec rm -rf {} +
