# driftd — the two commands a newcomer needs are `make run` and `make test`.
BUILD_DIR ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS ?= 2
PORT ?= 8080
ARGS ?=

.PHONY: all deps configure build run cluster test unit-test bench clean format

all: build

deps:
	@bash scripts/install-deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

## Installs what is missing, builds, and starts one node on 127.0.0.1:$(PORT).
run: build
	./$(BUILD_DIR)/driftd --port $(PORT) $(ARGS)

## Installs what is missing, builds, and starts a local 3-node cluster (8081-8083).
cluster: build
	bash scripts/local-cluster.sh $(ARGS)

## Installs what is missing, builds, and runs every test (unit, integration, cluster, compatibility).
test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure --timeout 900 $(CTEST_ARGS)

## Only the fast in-process tests.
unit-test: build
	@cd $(BUILD_DIR) && ctest --output-on-failure -L unit

## Runs one benchmark scenario (see BENCHMARKS.md): make bench SCENARIO=fanout RUNS=5
bench: build
	@cmake --build $(BUILD_DIR) --target driftbench send_floor cold_start -j $(JOBS)
	bash bench/run.sh $(or $(SCENARIO),fanout) $(or $(RUNS),5)

clean:
	rm -rf $(BUILD_DIR)

format:
	clang-format -i $$(git ls-files '*.cpp' '*.hpp')
