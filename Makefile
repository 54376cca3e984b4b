# Bench targets only (see bench/README.md). The project's own commands live elsewhere.
PY ?= .venv/bin/python

.PHONY: bench bench-3 bench-smoke
bench:          ## the standard set, once each (< 10 min)
	$(PY) -m bench.run_all
bench-3:        ## the standard set, fan-out workloads 3x, medians
	$(PY) -m bench.run_all --repeat 3
bench-smoke:    ## small sizes, asserts nothing lost (the test suite runs the same)
	$(PY) -m pytest -q tests/bench/test_bench_smoke.py
