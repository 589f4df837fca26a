# The two set-up commands: `make run` and `make test`. Both install what they need first.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-$(shell sha256sum requirements.txt | cut -c1-12)
DB     ?= $(or $(KAOPING_DB),data/kaoping.duckdb)
PORT   ?= 8501

.PHONY: install system-deps run test bench demo clean

install: $(STAMP) system-deps

$(STAMP): requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements.txt
	rm -f $(VENV)/.installed-* && touch $(STAMP)

# Debian packages: chromium (browser tests, chart images) and Noto CJK (Chinese in charts and documents).
system-deps:
	@if ! command -v chromium >/dev/null 2>&1 || ! fc-list 2>/dev/null | grep -qi "Noto Sans CJK"; then \
		echo "安装系统依赖 chromium、fonts-noto-cjk …"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-noto-cjk >/dev/null; \
	fi

demo: install
	@test -f $(DB) || $(PY) -m scoring --db $(DB) init --demo

run: demo
	KAOPING_DB=$(DB) $(PY) -m streamlit run dashboard/app.py --server.port $(PORT) --server.headless true

test: install
	$(PY) -m pytest -q

bench: install
	$(PY) -m bench --scale C
	$(PY) -m bench --scale P

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis tests/artifacts
