# MixDVAE — the two commands a new user needs:
#   make demo   set up (venv, Python and Debian dependencies) and run the demo on embedded data
#   make test   set up and run the test suite
PY      := .venv/bin/python
STAMP   := .venv/.installed

.PHONY: demo test setup sysdeps lint bench clean-demo

$(STAMP): requirements.txt
	test -x $(PY) || python3 -m venv .venv
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	touch $(STAMP)

sysdeps:
	@bash tools/install_system_deps.sh

setup: $(STAMP) sysdeps

demo: setup
	$(PY) tools/demo.py

test: setup
	$(PY) -m ruff check .
	$(PY) -m pytest tests

bench: setup
	$(PY) bench/bench_pretrain.py
	$(PY) bench/bench_vem_mot.py
	$(PY) bench/bench_vem_scass.py

clean-demo:
	rm -rf data/generated/demo output/demo
