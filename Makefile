# A thin driver over the CMake presets in CMakePresets.json. Each target first installs the Debian packages that
# are missing (scripts/install-deps.sh; a no-op when all are there).
#   make build   Release with assertions (-O2 -g, assert() kept) into build/
#   make test    build, the whole suite, the thread tests under TSan (build-tsan/), the suite under ASan+UBSan
#                (build-asan/)
#   make run     the main program: builds the line chat (examples/chat) alone, runs it on $(RUN_HOST):$(RUN_PORT)
#   make bench   every Google Benchmark binary under build/bench/; BENCH_ARGS passes options to each
.PHONY: all build test run bench deps clean build-asan build-tsan

RUN_HOST ?= 127.0.0.1
RUN_PORT ?= 7070
RUN_BIN := build/examples/chat/tulipa_chat
BENCH_ARGS ?=

all: build

deps:
	@scripts/install-deps.sh run bench test

# A preset is configured once; after that ninja re-runs CMake by itself when a CMakeLists.txt or a glob changes.
build/build.ninja: CMakePresets.json | deps
	cmake --preset release
build-asan/build.ninja: CMakePresets.json | deps
	cmake --preset asan
build-tsan/build.ninja: CMakePresets.json | deps
	cmake --preset tsan

build: build/build.ninja
	cmake --build --preset release
build-asan: build-asan/build.ninja
	cmake --build --preset asan
build-tsan: build-tsan/build.ninja
	cmake --build --preset tsan

# The ASan+UBSan suite runs last: it is the whole suite, so the last summary line counts every test.
test: build
	@echo "== tests (build/)"
	ctest --preset release
	@$(MAKE) --no-print-directory build-tsan
	@echo "== tests touching threads, under ThreadSanitizer (build-tsan/)"
	ctest --preset tsan
	@$(MAKE) --no-print-directory build-asan
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
	ctest --preset asan

# Builds only what the chat needs, not the tests and benchmarks.
run: build/build.ninja
	cmake --build --preset release --target tulipa_chat
	$(RUN_BIN) --host $(RUN_HOST) --port $(RUN_PORT)

bench: build
	@set -e; found=0; \
	for b in build/bench/*_bench; do \
	  [ -x "$$b" ] || continue; found=1; \
	  echo "== $$b"; "$$b" $(BENCH_ARGS); \
	done; \
	[ $$found = 1 ] || { echo "make bench: no benchmark under build/bench/" >&2; exit 1; }

clean:
	rm -rf build build-asan build-tsan
