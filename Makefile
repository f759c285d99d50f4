# The few commands a person types. Java 17 is the only prerequisite; everything else lands in .venv/.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
DIST ?= dist
CHECKSUM := $(shell cat setup.cfg pyproject.toml | cksum | cut -d' ' -f1)
STAMP := $(VENV)/.installed-$(CHECKSUM)
AIRFLOW_STAMP := $(VENV)/.airflow-$(CHECKSUM)
TEST_WORKERS ?= 2

.PHONY: setup demo test lint format dist bench bench-reco clean check-java

check-java:
	@command -v java >/dev/null 2>&1 || [ -x "$$JAVA_HOME/bin/java" ] || { \
	  echo "o2o: Java 17 is required and was not found (PATH or JAVA_HOME)."; \
	  echo "     Install it: Debian/Ubuntu 'apt-get install openjdk-17-jre-headless', macOS 'brew install openjdk@17'."; \
	  exit 2; }

$(STAMP): setup.cfg pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	@rm -f $(VENV)/.installed-*; touch $@

# Airflow and its Spark provider, for the DAG's tests (not needed to run the pipeline itself).
$(AIRFLOW_STAMP): $(STAMP)
	$(BIN)/python -m pip install --quiet -e ".[dev,airflow]"
	@rm -f $(VENV)/.airflow-*; touch $@

# Install into .venv and resolve the Delta jars once into .cache/spark-jars (later runs are offline).
setup: check-java $(STAMP)
	@$(BIN)/python -c "from o2o.config import load_config; from o2o.spark import ensure_java, cached_delta_jars, get_spark; \
	cfg = load_config('local'); ensure_java(); \
	cached_delta_jars(cfg) or get_spark(cfg).stop(); print('o2o: Delta jars cached in', cfg.resolve(cfg.spark.jar_cache))" 

demo: setup
	$(BIN)/o2o demo

# The test suite in TEST_WORKERS processes (pytest-xdist), each with its own local[2] Spark: most of a small
# stage's time is single-threaded driver work (planning, Delta log, Great Expectations), so two processes
# keep both cores busy. The sample lake's tests share one worker (one build). Airflow is installed for the
# DAG's tests (spark-submit and the whole DAG on a standalone cluster among them).
test: setup $(AIRFLOW_STAMP)
	$(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadgroup --durations=15

lint:
	$(BIN)/ruff check lib jobs tests dags bench
	$(BIN)/ruff format --check lib jobs tests dags bench

format:
	$(BIN)/ruff format lib jobs tests dags bench
	$(BIN)/ruff check --fix lib jobs tests dags bench

dist: setup
	rm -rf $(DIST) build && $(BIN)/python -m pip wheel --no-deps --wheel-dir $(DIST) . --quiet
	@# The same archive under the name --py-files documents (.zip): executors put only .zip/.egg on sys.path.
	cp $(DIST)/o2o_lakehouse-*.whl $(DIST)/o2o.zip
	cp -r jobs conf $(DIST)/
	@echo "$(DIST)/: wheel (pip install on cluster images), o2o.zip (--py-files), jobs/, conf/ (see README: Running on a cluster)"

# RFM vs pandas/DuckDB, ALS vs implicit and Surprise, start-up and memory -> bench/results/<date>.{json,md}.
# Options go in BENCH_ARGS, e.g. make bench BENCH_ARGS="--scales 100000,1000000" (see bench/run.py --help).
bench: setup
	$(BIN)/python -m pip install --quiet -e ".[dev,bench]"
	$(BIN)/python bench/run.py $(BENCH_ARGS)

bench-reco: setup
	$(BIN)/python bench/movielens_bench.py

clean:
	rm -rf lake landing .cache/spark-warehouse dist build
