# A thin driver over the CMake presets in CMakePresets.json. Each target first installs the Debian packages that
# are missing (scripts/install-deps.sh; a no-op when all are there; TULIPA_NO_APT=1 only lists them).
#   make build    Release with assertions (-O2 -g, assert() kept) into build/
#   make test     build/ (g++) and the whole suite; the thread tests under TSan (build-tsan/, g++); the fuzz targets'
#                 short pass (build-fuzz/, clang-19); the whole suite under ASan+UBSan (build-asan/), built with
#                 clang++-19: library, tests, examples and the chat, so the second compiler costs no tree of its own
#                 (g++ 12, whose coroutine bugs docs/coroutines.md lists, builds build/ and build-tsan/). The TSan and
#                 fuzz trees build only what their tests run (the targets tulipa_tests and tulipa_fuzzers, not all:
#                 no http or redis library under TSan, no postgres in the fuzz tree): CI time is a budget
#   make run      the chat server (apps/chat) alone, built in build-run/ (library and applications, no tests or
#                 benchmarks: only the packages of scripts/deps/run.txt), with line clients on $(RUN_HOST):$(RUN_PORT),
#                 the page on $(RUN_HOST):$(RUN_HTTP_PORT), its history in build-run/chat-data/
#   make bench    every Google Benchmark binary under build/bench/; BENCH_ARGS passes options to each
#   make fuzz     every libFuzzer target (fuzz/, clang-19, build-fuzz/) for FUZZ_SECONDS seconds each, one after the
#                 other, over a scratch copy of its corpus (build-fuzz/fuzz/corpus/<name>/); see fuzz/README.md
#   make compare  tulipa beside other servers (bench/compare/): reruns the README's chart, docs/compare.svg
#   make format   applies .clang-format to the tree (scripts/format.sh)
# WERROR=ON turns warnings into errors (CI: .ci/run) in build/, build-run/, build-asan/ and build-fuzz/: every file
# of ours is compiled with -Werror by g++ (build/: library, tests, benchmarks, examples, chat) and by clang (build-asan/
# and build-fuzz/: clang's warnings come from its front end, sanitizers do not change them). The g++ TSan tree keeps
# warnings as warnings (instrumentation makes g++ report false -Wmaybe-uninitialized and the like); it compiles
# nothing that build/ does not. Changing WERROR configures the trees again.
.PHONY: all build test run bench fuzz compare format deps run-deps clean build-asan build-tsan build-fuzz

RUN_HOST ?= 127.0.0.1
RUN_PORT ?= 7070
RUN_HTTP_PORT ?= 8080
RUN_BIN := build-run/apps/chat/tulipa-chat
BENCH_ARGS ?=
FUZZ_SECONDS ?= 60
WERROR ?= OFF

all: build

deps:
	@scripts/install-deps.sh run bench test
run-deps:
	@scripts/install-deps.sh run

# A tree is configured once (after that ninja re-runs CMake by itself when a CMakeLists.txt or a glob changes), and
# again when the presets or WERROR change: its stamp file's name records WERROR.
# $(call preset,DIR,PRESET,DEPS-TARGET[,WERROR]) makes DIR/.configured-WERROR-$(WERROR); the fourth argument, when
# given, overrides WERROR for that tree.
define preset
$(1)/.configured-WERROR-$(WERROR): CMakePresets.json | $(3)
	cmake --preset $(2) -DTULIPA_WERROR=$(if $(4),$(4),$(WERROR))
	rm -f $(1)/.configured-WERROR-*
	touch $$@
endef
$(eval $(call preset,build,release,deps))
$(eval $(call preset,build-asan,asan,deps))
$(eval $(call preset,build-tsan,tsan,deps,OFF))
$(eval $(call preset,build-fuzz,fuzz,deps))
$(eval $(call preset,build-run,run,run-deps))

build: build/.configured-WERROR-$(WERROR)
	cmake --build --preset release
build-asan: build-asan/.configured-WERROR-$(WERROR)
	cmake --build --preset asan
build-tsan: build-tsan/.configured-WERROR-$(WERROR)
	cmake --build --preset tsan
build-fuzz: build-fuzz/.configured-WERROR-$(WERROR)
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
	@echo "== tests under AddressSanitizer + UndefinedBehaviorSanitizer, built with clang++-19 (build-asan/)"
	ctest --preset asan

# Builds only what the chat needs, in a tree of its own (build-run/: no tests or benchmarks, so no GoogleTest, Google
# Benchmark or libuv), which shares the compiled library with build/ through ccache.
run: build-run/.configured-WERROR-$(WERROR)
	cmake --build --preset run --target tulipa-chat
	$(RUN_BIN) --tcp $(RUN_HOST):$(RUN_PORT) --http $(RUN_HOST):$(RUN_HTTP_PORT) --store sqlite:build-run/chat-data/chat.db

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

# Builds tulipa's echo server, then bench/compare/compare.sh: every peer available here, docs/compare.dat and .svg.
compare: build
	@scripts/install-deps.sh compare || echo "make compare: some peers' packages are not installed; those peers are skipped" >&2
	bench/compare/compare.sh

format:
	scripts/format.sh

clean:
	rm -rf build build-run build-asan build-tsan build-fuzz
