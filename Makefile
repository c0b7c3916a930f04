# A thin driver over the CMake presets in CMakePresets.json. Each target first installs the Debian packages that
# are missing (scripts/install-deps.sh; a no-op when all are there).
#   make build   Release with assertions (-O2 -g, assert() kept) into build/
#   make test    build, the whole suite, the thread tests under TSan (build-tsan/), the suite under ASan+UBSan
#                (build-asan/)
#   make run     the main program: builds the chat server (apps/chat) alone, runs it with line clients on
#                $(RUN_HOST):$(RUN_PORT), the page on $(RUN_HOST):$(RUN_HTTP_PORT), its history in build/chat-data/
#   make bench   every Google Benchmark binary under build/bench/; BENCH_ARGS passes options to each
#   make fuzz    every libFuzzer target (fuzz/, clang-19, build-fuzz/) for FUZZ_SECONDS seconds each, one after the
#                other, over a scratch copy of its corpus (build-fuzz/fuzz/corpus/<name>/); see fuzz/README.md
.PHONY: all build test run bench fuzz deps clean build-asan build-tsan build-fuzz

RUN_HOST ?= 127.0.0.1
RUN_PORT ?= 7070
RUN_HTTP_PORT ?= 8080
RUN_BIN := build/apps/chat/tulipa-chat
BENCH_ARGS ?=
FUZZ_SECONDS ?= 60

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
build-fuzz/build.ninja: CMakePresets.json | deps
	cmake --preset fuzz

build: build/build.ninja
	cmake --build --preset release
build-asan: build-asan/build.ninja
	cmake --build --preset asan
build-tsan: build-tsan/build.ninja
	cmake --build --preset tsan
build-fuzz: build-fuzz/build.ninja
	cmake --build --preset fuzz

# The ASan+UBSan suite runs last: it is the whole suite, so the last summary line counts every test.
test: build
	@echo "== tests (build/)"
	ctest --preset release
	@$(MAKE) --no-print-directory build-tsan
	@echo "== tests touching threads, under ThreadSanitizer (build-tsan/)"
	ctest --preset tsan
	@$(MAKE) --no-print-directory build-fuzz
	@echo "== fuzz targets, 5 s each over their corpora: regressions (build-fuzz/)"
	FUZZ_SECONDS=5 ctest --preset fuzz
	@$(MAKE) --no-print-directory build-asan
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer (build-asan/)"
	ctest --preset asan

# Builds only what the chat needs, not the tests and benchmarks.
run: build/build.ninja
	cmake --build --preset release --target tulipa-chat
	$(RUN_BIN) --tcp $(RUN_HOST):$(RUN_PORT) --http $(RUN_HOST):$(RUN_HTTP_PORT) --store sqlite:build/chat-data/chat.db

bench: build
	@set -e; found=0; \
	for b in build/bench/*_bench; do \
	  [ -x "$$b" ] || continue; found=1; \
	  echo "== $$b"; "$$b" $(BENCH_ARGS); \
	done; \
	[ $$found = 1 ] || { echo "make bench: no benchmark under build/bench/" >&2; exit 1; }

# One target at a time (-j1: each gets the CPU for its FUZZ_SECONDS); each prints runs and executions per second.
fuzz: build-fuzz
	@rm -f build-fuzz/fuzz/summary.txt
	@FUZZ_SECONDS=$(FUZZ_SECONDS) ctest --preset fuzz -j1 --timeout $$(( $(FUZZ_SECONDS) * 2 + 300 )); \
	  status=$$?; echo "== make fuzz: $(FUZZ_SECONDS) s a target"; cat build-fuzz/fuzz/summary.txt; exit $$status

clean:
	rm -rf build build-asan build-tsan build-fuzz
