# allocffi: `make test` and `make bench` set up everything on a fresh machine
# (Debian packages when run as root, a virtualenv in .venv, the extension).

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# Debian's libjemalloc.so.2 uses initial-exec TLS: dlopen() into a running
# process only works if the process started with room for it.
export GLIBC_TUNABLES := glibc.rtld.optional_static_tls=16384

SYSTEM_PACKAGES := libmimalloc2.0 libjemalloc2 libtcmalloc-minimal4
# The programs of `allocffi run --suite real` (make bench-real).
SYSTEM_PACKAGES += gcc perl sqlite3 python3 redis-server redis-tools \
                   z3 lua5.4 ghostscript rocksdb-tools
# The C sources of the library and of the engine: csrc/sources.txt, which the cffi build reads too.
# The C tests and tools link both.
sources_of = $(wildcard $(shell awk '$$1 == "$(1)" {print $$2}' csrc/sources.txt))
LIBRARY_SRCS := $(call sources_of,library)
ENGINE_SRCS  := $(call sources_of,engine)
LIB_SRCS   := $(LIBRARY_SRCS) $(ENGINE_SRCS)
LIB_HDRS   := $(wildcard csrc/include/*.h csrc/*.h csrc/engine/*.h csrc/tests/*.h csrc/tools/*.h csrc/trace/*.h)
CTEST_SRCS := $(wildcard csrc/tests/test_*.c)
# afmalloc (csrc/afmalloc): in the package as allocffi/_afmalloc.so (setup.py); its C test links
# the sources in under the names afm_malloc, afm_free, ... (AFM_TEST_NAMES), instrumented in make sanitize.
AFMALLOC_SRCS := $(wildcard csrc/afmalloc/*.c)
AFMALLOC_TEST := -DAFM_TEST_NAMES $(AFMALLOC_SRCS)
CC     ?= cc
CWARN  := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes
CFLAGS_COMMON := -std=gnu11 -g -Icsrc/include -Icsrc $(CWARN) -pthread
LDLIBS := -ldl -lpthread -lm

.PHONY: all setup system-libs build test ctest pytest test-afmalloc bench bench-scale bench-check entry-points entry-points-callgrind calibrate-callgrind sanitize sanitize-python valgrind lint format clean traces bench-trace

all: build

## setup: system libraries (as root), virtualenv, Python dependencies
setup: system-libs $(VENV)/.installed

system-libs:
	@missing=""; for p in $(SYSTEM_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing; \
	  else echo "note: missing Debian packages:$$missing (install them with: sudo apt-get install$$missing); those allocators will be unavailable"; fi; \
	fi

$(VENV)/.installed: pyproject.toml setup.py
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip setuptools wheel
	$(PY) -m pip install -q -e '.[dev]'
	touch $@

## build: compile the cffi modules (allocffi._native, the harness's allocffi.harness._engine) and the safe layer (allocffi._safe) in place, with the
## warnings of the C library as errors (a plain `pip install .` warns but does not fail)
EXT_CFLAGS := $(CWARN)
build: setup
	CFLAGS="$(EXT_CFLAGS)" $(PY) setup.py -q build_ext --inplace

## test: the C tests and the Python test suite
test: build ctest pytest

pytest: build
	$(PY) -m pytest tests

# The library and the engine are compiled once per flavour (plain, sanitized) into an archive that
# every C test links whole, as if its sources were on the test's command line.
CTEST_CFLAGS := $(CFLAGS_COMMON) -O2 -DAF_DEBUG=1
ASAN_CFLAGS  := $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined \
                -fno-sanitize-recover=all -DAF_DEBUG=2
whole_archive = -Wl,--whole-archive $(1) -Wl,--no-whole-archive
build/obj-ctest/%.o: %.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CTEST_CFLAGS) -c -o $@ $<
build/obj-asan/%.o: %.c $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -c -o $@ $<
build/obj-ctest/libaf.a: $(patsubst %.c,build/obj-ctest/%.o,$(LIB_SRCS))
	rm -f $@ && ar rcs $@ $^
build/obj-asan/libaf.a: $(patsubst %.c,build/obj-asan/%.o,$(LIB_SRCS))
	rm -f $@ && ar rcs $@ $^

build/ctest/%: csrc/tests/%.c build/obj-ctest/libaf.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CTEST_CFLAGS) -o $@ $< $(TEST_EXTRA) $(call whole_archive,build/obj-ctest/libaf.a) $(LDLIBS)

CTESTS := $(patsubst csrc/tests/%.c,build/ctest/%,$(CTEST_SRCS))
build/ctest/test_afmalloc build/asan/test_afmalloc: $(AFMALLOC_SRCS) $(wildcard csrc/afmalloc/*.h)
build/ctest/test_afmalloc build/asan/test_afmalloc: TEST_EXTRA = $(AFMALLOC_TEST)
ctest: system-libs $(CTESTS)
	@set -e; for t in $(CTESTS); do echo "== $$t"; $$t; done

## test-afmalloc: the Python test suite run by a python3 with afmalloc preloaded (every object
## through it: PYTHONMALLOC=malloc); the programs the tests start inherit the preload
test-afmalloc: build
	LD_PRELOAD=$(CURDIR)/allocffi/_afmalloc.so PYTHONMALLOC=malloc $(PY) -m pytest -q -p no:cacheprovider tests

## sanitize: the C tests under AddressSanitizer and UndefinedBehaviorSanitizer
build/asan/%: csrc/tests/%.c build/obj-asan/libaf.a $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(ASAN_CFLAGS) -o $@ $< $(TEST_EXTRA) $(call whole_archive,build/obj-asan/libaf.a) $(LDLIBS)

ASAN_TESTS := $(patsubst csrc/tests/%.c,build/asan/%,$(CTEST_SRCS))
sanitize: system-libs $(ASAN_TESTS) sanitize-stress
	@set -e; for t in $(ASAN_TESTS); do echo "== $$t"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 AF_SANITIZER=1 $$t; done

## sanitize-python: the Python suite with allocffi's C extensions (the cffi module, the Block
## exporter, the fast paths) built under ASan + UBSan, in a scratch copy (build/asan-py), with
## the sanitizer runtimes preloaded and PYTHONMALLOC=malloc so every Python object is checked too
ASAN_PY_DIR := build/asan-py
ASAN_PY_RUNTIME = $(shell $(CC) -print-file-name=libasan.so):$(shell $(CC) -print-file-name=libubsan.so)
# Left to make test: the tests that start whole programs (they exercise the harness and programs
# that are never instrumented, not the extensions, and each child would inherit the sanitizer
# runtimes) and the CLI fuzzer (pure Python).
ASAN_PY_IGNORE := tests/test_run.py tests/test_run_score.py tests/test_real_suite.py \
                  tests/test_stress_suite.py tests/test_afmalloc.py tests/test_trace_capture.py \
                  tests/test_fuzz_inputs.py
sanitize-python: setup
	rm -rf $(ASAN_PY_DIR) && mkdir -p $(ASAN_PY_DIR)
	tar --exclude=./.venv --exclude=./build --exclude=./.git --exclude='*.so' -cf - . | tar -xf - -C $(ASAN_PY_DIR)
	cd $(ASAN_PY_DIR) && CFLAGS="$(EXT_CFLAGS) -O1 -g -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all" \
	  LDFLAGS="-fsanitize=address,undefined" $(CURDIR)/$(PY) setup.py -q build_ext --inplace
	cd $(ASAN_PY_DIR) && LD_PRELOAD="$(ASAN_PY_RUNTIME)" PYTHONMALLOC=malloc \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CURDIR)/$(PY) -c "import allocffi, sys; assert '$(ASAN_PY_DIR)' in allocffi.__file__, allocffi.__file__"
	cd $(ASAN_PY_DIR) && LD_PRELOAD="$(ASAN_PY_RUNTIME)" PYTHONMALLOC=malloc \
	  ASAN_OPTIONS=detect_leaks=0:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	  $(CURDIR)/$(PY) -m pytest -q -p no:cacheprovider $(addprefix --ignore=,$(ASAN_PY_IGNORE)) tests

## valgrind: the C tests under memcheck (fewer operations: it is ~30x slower)
# somalloc=nouserintercepts: replace only glibc's malloc. By default memcheck
# also replaces malloc/free in every library, which are aliases of mi_malloc/
# mi_free and tc_malloc/tc_free: mimalloc would then mix two allocators.
valgrind: system-libs $(CTESTS) valgrind-stress
	@set -e; for t in $(CTESTS); do echo "== valgrind $$t"; \
	  AF_TEST_SCALE=0.05 AF_VALGRIND=1 valgrind -q --soname-synonyms=somalloc=nouserintercepts \
	  --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect $$t; done

# Where the suites write their results (the commands refuse to create directories themselves).
bench/results:
	mkdir -p $@

## sanitize-stress, valgrind-stress: the stress programs (csrc/stress) at a tiny scale, at 1 and 2
## threads, under ASan + UBSan and under memcheck (their own block checks stay on); part of make
## sanitize and make valgrind. The programs of the suite itself are built by build_ext.
## stress_scale: 1% of the work; 0.3 s for the programs that stop on time (larson's threads hand
## their blocks on at least once even under memcheck).
STRESS_SRCS  := $(wildcard csrc/stress/*.c)
STRESS_HDRS  := $(wildcard csrc/stress/*.h) csrc/engine/rng.h
stress_scale = case $$(basename $$p) in larson|xmalloc) s=0.3;; *) s=0.01;; esac
ASAN_STRESS  := $(patsubst csrc/stress/%.c,build/asan-stress/%,$(STRESS_SRCS))
PLAIN_STRESS := $(patsubst csrc/stress/%.c,build/stress/%,$(STRESS_SRCS))
build/asan-stress/%: csrc/stress/%.c $(STRESS_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O1 -fno-omit-frame-pointer -fsanitize=address,undefined -fno-sanitize-recover=all -o $@ $<
build/stress/%: csrc/stress/%.c $(STRESS_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O2 -o $@ $<

.PHONY: sanitize-stress valgrind-stress
sanitize-stress: $(ASAN_STRESS)
	@set -e; for p in $(ASAN_STRESS); do $(stress_scale); for t in 1 2; do echo "== $$p $$t $$s"; \
	  ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:halt_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
	  $$p $$t $$s; done; done

valgrind-stress: $(PLAIN_STRESS)
	@set -e; for p in $(PLAIN_STRESS); do $(stress_scale); for t in 1 2; do echo "== valgrind $$p $$t $$s"; \
	  valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect $$p $$t $$s; done; done

## bench: the comparison of every available allocator over every workload
bench: build | bench/results
	$(PY) -m allocffi bench --repeat 5 --targets --markdown bench/results/report.md --json bench/results/report.json \
	  --csv bench/results/report.csv --plot bench/results/report.png
	@echo "note: the scale suite (live sets of up to 1e6 blocks, random free order) is 'make bench-scale'"

## bench-scale: the scale suite (live-*: live sets of 1e2-1e6 blocks freed in a random or in
## allocation order), every available allocator; the plot draws ns/op over N (a few minutes)
bench-scale: build | bench/results
	$(PY) -m allocffi bench --scale --repeat 3 --markdown bench/results/scale.md --json bench/results/scale.json \
	  --plot bench/results/scale.png

## bench-noise: how often unchanged code gets a false verdict: two full runs, then allocffi compare
.PHONY: bench-noise
bench-noise: build | bench/results
	$(PY) -m allocffi bench --repeat 5 --quiet --json bench/results/self-a.json
	$(PY) -m allocffi bench --repeat 5 --quiet --json bench/results/self-b.json
	$(PY) -m allocffi compare bench/results/self-a.json bench/results/self-b.json \
	  --json bench/results/self-compare.json
## bench-real: the real-program suite (cc1, python3, perl, sqlite3, z3, lua, gs, rocksdb) under every
## allocator, by LD_PRELOAD
.PHONY: bench-real
bench-real: build
	mkdir -p bench/results
	$(PY) -m allocffi run --suite real --repeat 5 --markdown bench/results/real.md \
	  --json bench/results/real.json --plot bench/results/real.png
## bench-stress: the multi-threaded stress suite written here (csrc/stress: larson, cache-scratch,
## cache-thrash, xmalloc, mstress), each at 1, 2 and 4 threads, under every allocator, by LD_PRELOAD
.PHONY: bench-stress
bench-stress: build
	mkdir -p bench/results
	$(PY) -m allocffi run --suite stress --repeat 5 --markdown bench/results/stress.md \
	  --json bench/results/stress.json --plot bench/results/stress.png
## entry-points: every way of calling each system library for a 48 B block, timed in one
## process, interleaved (the evidence behind _af_entry_points in csrc/syslib.c)
build/tools/entry_points: csrc/tools/entry_points.c csrc/tools/entry_points.h $(LIB_SRCS) $(LIB_HDRS)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_COMMON) -O2 -o $@ $< $(LIB_SRCS) $(LDLIBS)

entry-points: system-libs build/tools/entry_points
	uptime
	build/tools/entry_points

## entry-points-callgrind: instructions per 48 B pair of each candidate (valgrind's callgrind;
## the difference of two runs, so start-up cancels out): a figure the load does not change
entry-points-callgrind: system-libs build/tools/entry_points
	@for c in $$(build/tools/entry_points --list); do \
	  a=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null build/tools/entry_points --only $$c --ops 100000 2>&1 | sed -n 's/.*Collected : //p'); \
	  b=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null build/tools/entry_points --only $$c --ops 200000 2>&1 | sed -n 's/.*Collected : //p'); \
	  echo "$$c $$(( (b - a) / 100000 )) instructions per pair"; done

## calibrate-callgrind: instructions per fixed-48 op of each library called directly and
## through allocffi's vtable (the calibration's two loops), and the difference: the wrapper
calibrate-callgrind: system-libs build/tools/entry_points
	@for lib in libc mimalloc jemalloc tcmalloc; do for loop in direct engine; do \
	  a=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null build/tools/entry_points --loop $$loop --library $$lib --ops 100000 2>&1 | sed -n 's/.*Collected : //p'); \
	  b=$$(valgrind --tool=callgrind --callgrind-out-file=/dev/null build/tools/entry_points --loop $$loop --library $$lib --ops 200000 2>&1 | sed -n 's/.*Collected : //p'); \
	  echo "$$lib $$loop $$(( (b - a) / 100000 )) instructions per op"; done; done

## afmalloc-compare: afmalloc beside the system's libraries on one small C driver (LD_PRELOAD):
## callgrind instructions per malloc/free pair (48 B, mixed sizes), and the wall-time ratio to
## glibc of a 2-thread churn with cross-thread frees (median of 5 interleaved runs, with the load)
build/tools/malloc_pairs: csrc/tools/malloc_pairs.c
	@mkdir -p $(dir $@)
	$(CC) -std=gnu11 -O2 -g $(CWARN) -pthread -o $@ $<

.PHONY: afmalloc-compare
afmalloc-compare: build build/tools/malloc_pairs
	$(PY) bench/afmalloc_compare.py build/tools/malloc_pairs 5

## bench-check: every pytest-benchmark suite body once, untimed (that `pytest bench/` works)
bench-check: build
	$(PY) -m pytest -q bench --benchmark-disable

## traces: regenerate the shipped traces in bench/traces (a Python JSON/AST workload, cc1)
traces: build
	$(PY) bench/traces/make_traces.py

## bench-trace: replay every shipped trace on every available allocator, a fresh process per run
## (--touch pages: every page of a block is touched, so RSS can be set against the ideal), then
## on the null allocator (the replay engine's own cost per call)
SHIPPED_TRACES := $(wildcard bench/traces/*.trace)
bench-trace: build
	@mkdir -p bench/results
	@set -e; for t in $(SHIPPED_TRACES); do n=$$(basename $$t .trace); \
	  $(PY) -m allocffi trace replay $$t --repeat 5 --touch pages --markdown bench/results/trace-$$n.md \
	    --json bench/results/trace-$$n.json --csv bench/results/trace-$$n.csv; \
	  $(PY) -m allocffi trace replay $$t --repeat 5 --allocators null -q --json bench/results/trace-$$n-null.json; \
	  $(PY) -c "import json,statistics,sys; m=json.load(open(sys.argv[1]))['results'][0]['metrics']['ns_per_call']; \
	    print(f\"  engine overhead (null allocator): {statistics.median(m['samples']):.1f} ns/call\")" bench/results/trace-$$n-null.json; \
	done

lint: setup
	$(VENV)/bin/ruff check allocffi tests bench
	$(VENV)/bin/ruff format --check allocffi tests bench
	$(VENV)/bin/mypy

format: setup
	$(VENV)/bin/ruff format allocffi tests bench

clean:
	rm -rf build allocffi/*.so allocffi/harness/*.so allocffi/harness/*/*.so allocffi/harness/core/_launcher allocffi/harness/core/_engine_worker allocffi/harness/run/_stress_* allocffi/_native.c allocffi/_native.o allocffi/harness/_engine.c allocffi/harness/_engine.o *.egg-info .pytest_cache .benchmarks

## The other figures of docs/methodology.md, one target each (its table says which is which);
## each writes under bench/results/, and `make results` turns the saved runs into dated reports
.PHONY: bench-touch bench-numpy bench-calibrate bench-python-cost bench-capture results

## bench-touch: what touching every page costs (large / large-cycle against their -pages variants)
bench-touch: build | bench/results
	$(PY) -m allocffi bench --workloads large,large-pages,large-cycle,large-cycle-pages \
	  --allocators libc,large,slab,mimalloc,jemalloc,tcmalloc,mmap --repeat 5 --no-overhead \
	  --markdown bench/results/touch.md --json bench/results/touch.json

## bench-numpy: NumPy workloads under every allocator and NumPy's default handler
bench-numpy: build | bench/results
	$(PY) -m allocffi numpy-bench --repeat 3 --json bench/results/numpy.json --markdown bench/results/numpy.md

## bench-calibrate: what the wrapper adds to each system library, in time (calibrate-callgrind counts it)
bench-calibrate: build | bench/results
	uptime
	$(PY) -m allocffi calibrate --repeat 5 --json bench/results/calibrate.json

## bench-python-cost: the Python layer's own cost per alloc + free (pytest-benchmark group python-cost)
bench-python-cost: build | bench/results
	uptime
	$(PY) -m pytest -q bench/test_python_cost.py --benchmark-json=bench/results/python-cost.json

## bench-capture: trace capture overhead and bytes per call on the Python workload (memray beside it
## when installed)
bench-capture: build
	uptime
	$(PY) bench/traces/capture_overhead.py --repeat 5 $$($(PY) -c 'import memray' 2>/dev/null && echo --memray)

## results: every saved run under bench/results/ into docs/results/DAY-NAME.md, DAY the run's own date
## (its JSON's "date", else the file's): `allocffi report` redraws the runs it reads; a run it cannot
## read keeps the Markdown its suite wrote beside it (NAME.md)
RUN_DAY = $(PY) -c 'import datetime as d, json, os, sys; p = sys.argv[1]; r = json.load(open(p)); \
  t = r.get("date") if isinstance(r, dict) else None; \
  print(str(t or d.datetime.fromtimestamp(os.path.getmtime(p), d.timezone.utc).isoformat())[:10])'
results: build
	@mkdir -p docs/results
	@set -e; written=0; for json in bench/results/*.json; do \
	  [ -e "$$json" ] || continue; base=$$(basename $$json .json); name=$$base; \
	  case $$name in report) name=bench;; esac; \
	  day=$$($(RUN_DAY) $$json 2>/dev/null || date -u -r $$json +%Y-%m-%d); out=docs/results/$$day-$$name.md; \
	  if $(PY) -m allocffi report $$json --markdown $$out >/dev/null 2>&1; then \
	    echo "$$out: allocffi report $$json"; written=1; \
	  elif [ -e bench/results/$$base.md ]; then \
	    cp bench/results/$$base.md $$out; echo "$$out: copied from bench/results/$$base.md"; written=1; \
	  else echo "skipped $$json: not a run allocffi report reads, and no Markdown beside it"; fi; \
	done; [ $$written = 1 ] || { echo "no saved runs in bench/results/: run make bench (or another suite) first"; exit 2; }
