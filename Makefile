# Two commands from nothing to green: `make setup`, then `make test`.
PY      := .venv/bin/python
PYTEST  := .venv/bin/pytest
JUNIT   ?= /usr/share/java/junit-platform-console-standalone.jar

.PHONY: setup system python web-deps test test-python android-test web-test ios-check bench demo golden clean

setup: python system web-deps

python: .venv/.installed
.venv/.installed: pyproject.toml
	python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[export,test]'
	$(PY) -m pip check
	touch $@

system:
	bash scripts/install_system.sh

web-deps:
	cd web && npm ci --no-audit --no-fund

test: test-python android-test web-test

test-python:
	$(PYTEST) -q -n 2 --dist loadgroup

android-test:
	$(MAKE) -C android/core test JUNIT=$(JUNIT)

web-test:
	cd web && npm test

# The full benchmark on the demo model (parity gate + latency), results under benchmarks/results/.
bench:
	$(PY) benchmarks.py --ci

# Regenerate the golden vectors every shell tests against.
golden:
	$(PY) -m neometer golden

clean:
	rm -rf .venv web/node_modules web/dist android/core/build .pytest_cache
