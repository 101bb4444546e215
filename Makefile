# Convenience targets around CMake. Each target installs missing Debian
# packages first (scripts/deps.sh), so they work on a fresh Debian 12 machine.
BUILD ?= build
ASAN_BUILD ?= build-asan
JOBS ?= $(shell nproc)

.PHONY: all deps build test lint demo bench fuzz clean

all: build

deps:
	@./scripts/deps.sh

build: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS)

# The test command of the README: ASan+UBSan build, every test (lab tests
# run when root, and skip otherwise). The plain build's slowdown is built
# too (only that target), for the valgrind test: memcheck cannot run a
# sanitized binary (tests/sh/valgrind.sh).
test: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	cmake --build $(BUILD) -j $(JOBS) --target slowdown
	cmake -S . -B $(ASAN_BUILD) -DCMAKE_BUILD_TYPE=Debug -DSD_SANITIZE=ON >/dev/null
	cmake --build $(ASAN_BUILD) -j $(JOBS)
	cd $(ASAN_BUILD) && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	  UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  SD_VALGRIND_BIN=$(CURDIR)/$(BUILD)/slowdown \
	  ctest --output-on-failure -j $(JOBS)

# Static analysis: cppcheck and clang-tidy over src/ (scripts/lint.sh).
lint: deps
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
	./scripts/lint.sh $(BUILD)

demo: build
	./$(BUILD)/slowdown demo

bench: build
	./bench/run.sh $(BUILD)

fuzz: deps
	CC=clang-14 cmake -S . -B build-fuzz -DSD_FUZZ=ON -DSD_TESTS=OFF -DCMAKE_BUILD_TYPE=Debug >/dev/null
	cmake --build build-fuzz -j $(JOBS)

clean:
	rm -rf $(BUILD) $(ASAN_BUILD) build-fuzz
