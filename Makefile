# attnviz build. `make` builds libattnviz.a, libattnviz.so and the attnviz command; `make test` builds and runs
# the tests; `make SANITIZE=1 all-tests` builds them under AddressSanitizer + UndefinedBehaviorSanitizer (in
# build-asan/; with CC=clang BUILD=build-clang also float-cast-overflow), run by `BUILDS=build-asan sh tests/run.sh`.
# `make fuzz` builds the libFuzzer harnesses into build-fuzz/ (docs/SECURITY.md).
CC      ?= cc
SANITIZE ?= 0
ifeq ($(SANITIZE),1)
BUILD   ?= build-asan
SANFLAGS = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# clang also checks float-to-int conversions of out-of-range values (gcc's UBSan has no such check)
ifneq ($(findstring clang,$(CC)),)
SANFLAGS += -fsanitize=float-cast-overflow -fno-sanitize-recover=float-cast-overflow
endif
OPT     ?= -O1 -g
else
BUILD   ?= build
SANFLAGS =
OPT     ?= -O2 -g -march=x86-64-v3
endif
WARN    = -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes -Wvla -Wformat=2 \
          -Wno-unused-parameter
CFLAGS  ?= $(OPT)
# One set of objects serves libattnviz.a (the CLI, the tests) and libattnviz.so (Python): position-independent,
# with -fno-semantic-interposition so calls inside the library stay direct and inlinable (callgrind: the CLI
# runs the same instruction counts as without -fPIC, docs/ARCHITECTURE.md).
PIC     = -fPIC -fno-semantic-interposition
ALL_CFLAGS = -std=c11 -D_DEFAULT_SOURCE $(CFLAGS) $(PIC) $(WARN) $(SANFLAGS) -Iinclude -Isrc -I$(BUILD)/gen -pthread \
             -I/usr/include/openblas -I/usr/include/x86_64-linux-gnu/openblas-pthread -MMD -MP
LIBS    = -lopenblas -ljansson -lonig -lutf8proc -lm -pthread -lpng -lz -lfreetype -lmicrohttpd -ljpeg
LDFLAGS += $(SANFLAGS)

# Layers of src/, lowest first: core io kernels tok chat model trace attrib analysis render server cli. A folder
# includes its own headers, include/attnviz.h and the headers of folders before it, never one after it;
# tests/cli/test_layers.sh (run by `make test`) fails on an upward include.
LIB_SRC  = $(sort $(wildcard src/core/*.c src/io/*.c src/tok/*.c src/chat/*.c src/kernels/*.c src/model/*.c \
                             src/trace/*.c src/attrib/*.c src/analysis/*.c src/render/*.c src/server/*.c))
CLI_SRC  = $(sort $(wildcard src/cli/*.c))
TEST_SRC = $(sort $(wildcard tests/test_*.c))
LIB_OBJ  = $(LIB_SRC:%.c=$(BUILD)/%.o)
CLI_OBJ  = $(CLI_SRC:%.c=$(BUILD)/%.o)
TEST_BIN = $(TEST_SRC:tests/%.c=$(BUILD)/tests/%)
LIB      = $(BUILD)/libattnviz.a
BIN      = $(BUILD)/attnviz
# the shared library (rules at the end)
AV_VER   := $(shell sed -n 's/^\#define AV_VERSION "\([0-9.]*\)".*/\1/p' include/attnviz.h)
SO_MAJOR := $(word 1,$(subst ., ,$(AV_VER)))
SO_MINOR := $(word 2,$(subst ., ,$(AV_VER)))
SONAME    = libattnviz.so.$(SO_MAJOR)
SO        = $(BUILD)/libattnviz.so.$(SO_MAJOR).$(SO_MINOR)
ifeq ($(SANITIZE),0)
SO_ALL    = $(SO)
endif

.PHONY: all test test-quick all-tests clean deps demo bench format format-check FORCE fuzz fuzz-bins fuzz-smoke \
        fuzz-long
all: $(BIN) $(SO_ALL)
	@if [ "$(BUILD)" = build ]; then ln -sf build/attnviz attnviz; fi

deps:
	@sh scripts/install-deps.sh

# Objects are rebuilt when the compiler or its flags change: a stamp file holds them.
FLAGS_STAMP = $(BUILD)/flags.stamp
STAMP_TEXT  = $(CC) $(CFLAGS) $(PIC) $(SANFLAGS) $(WARN)
$(FLAGS_STAMP): FORCE
	@mkdir -p $(dir $@)
	@echo '$(STAMP_TEXT)' | cmp -s - $@ || echo '$(STAMP_TEXT)' > $@
FORCE:

$(BUILD)/%.o: %.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

# The weight-type conversions must not fuse multiply-adds: they reproduce ggml's float operations bit for bit.
$(BUILD)/src/kernels/quants%.o: ALL_CFLAGS += -ffp-contract=off -O3

# The AMX kernel is the one file built for AVX-512 + AMX; it runs only after a runtime CPU check.
$(BUILD)/src/kernels/gemm_amx.o: ALL_CFLAGS += -mavx512f -mavx512bw -mavx512vl -mamx-tile -mamx-bf16
# The vector micro-kernels and their packing likewise (gemm_cpu.c checks CPUID and XCR0 before choosing them;
# AVX2 is the release build's baseline, but the sanitizer build compiles for plain x86-64).
$(BUILD)/src/kernels/gemm_avx2.o $(BUILD)/src/kernels/gemm_pack_avx2.o $(BUILD)/src/kernels/matvec_avx2.o: ALL_CFLAGS += -mavx2 -mfma -mf16c
$(BUILD)/src/kernels/gemm_avx512.o: ALL_CFLAGS += -mavx512f
$(BUILD)/src/kernels/gemm_pack_avx512.o $(BUILD)/src/kernels/matvec_avx512.o: ALL_CFLAGS += -mavx512f -mavx512bw -mavx512vl
$(BUILD)/src/kernels/ops_avx512.o: ALL_CFLAGS += -mavx512f

$(LIB): $(LIB_OBJ)
	@mkdir -p $(dir $@)
	rm -f $@ && ar rcs $@ $^

# MPI for `attnviz corpus` across processes and machines (docs/CORPUS.md): used when mpicc (OpenMPI's
# --showme) is found, unless MPI=0. Only src/cli/corpus_mpi.c includes mpi.h; only the attnviz binary links it.
MPI ?= $(if $(shell command -v mpicc 2>/dev/null),1,0)
ifeq ($(MPI),1)
MPI_CFLAGS := $(shell mpicc --showme:compile 2>/dev/null) -DAV_HAVE_MPI
MPI_LIBS   := $(shell mpicc --showme:link 2>/dev/null)
endif
$(BUILD)/src/cli/corpus_mpi.o: ALL_CFLAGS += $(MPI_CFLAGS)
$(BUILD)/src/cli/corpus_mpi.o: Makefile

$(BIN): $(CLI_OBJ) $(LIB)
	$(CC) $(LDFLAGS) -o $@ $(CLI_OBJ) $(LIB) $(LIBS) $(MPI_LIBS)

$(BUILD)/tests/%: tests/%.c tests/harness.h tests/tiny_ref.h $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Itests -o $@ $< $(LIB) $(LIBS) $(LDFLAGS)

# The whole suite (what CI runs): the format check, every test binary in the normal build and again under
# ASan + UBSan, then the CLI and browser tests and the fuzz corpus replay (fuzz-smoke). Ends with "N passed,
# N failed, N skipped".
test: deps
	@$(MAKE) --no-print-directory format-check
	@$(MAKE) --no-print-directory -j2 all-tests
	@$(MAKE) --no-print-directory -j2 SANITIZE=1 all-tests
	@BUILDS="build build-asan" FUZZ_SMOKE=1 sh tests/run.sh

# Only the normal build (faster while developing).
test-quick: deps
	@$(MAKE) --no-print-directory -j2 all-tests
	@BUILDS=build sh tests/run.sh

all-tests: $(BIN) $(SO_ALL) $(TEST_BIN)

demo: deps
	@$(MAKE) --no-print-directory all
	@sh scripts/demo.sh

bench: all
	@sh bench/run.sh

# Every C file of the project, formatted by the repo's .clang-format (clang-format 14, Debian's).
FORMAT_FILES = $(sort $(wildcard include/*.h src/*/*.c src/*/*.h tests/*.c tests/*.h tools/*.c bench/*.c fuzz/*.c))

format:
	clang-format -i $(FORMAT_FILES)

# Fails, naming the files, when one is not clang-format clean (`make test` runs it first).
format-check:
	@out=$$(clang-format --dry-run -Werror $(FORMAT_FILES) 2>&1) || { \
	    files=$$(printf '%s\n' "$$out" | sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: code should be clang-formatted.*/\1/p' | sort -u); \
	    if [ -n "$$files" ]; then printf 'not clang-format clean: %s\n' $$files; else printf '%s\n' "$$out" | head -3; fi; \
	    echo "format-check failed: run 'make format' (clang-format -i on those files), then commit"; exit 1; }

clean:
	rm -rf build build-asan build-fuzz attnviz

# ---- fuzzing (docs/SECURITY.md) ---------------------------------------------------------------------------
# Every fuzz/<name>.c is a libFuzzer harness built with clang into build-fuzz/fuzz_<name>, the library with it,
# under ASan + UBSan (float-cast-overflow included), every finding fatal. Run a binary on files to replay them,
# on a directory to fuzz. fuzz-smoke replays fuzz/corpus and fuzz/regress (part of `make test`; SKIP without
# clang); fuzz-long fuzzes each harness FUZZ_SECONDS seconds and keeps findings in fuzz/regress/<name>/.
FUZZ_CC      ?= clang
FUZZ_SAN      = -fsanitize=address,undefined,float-cast-overflow -fno-sanitize-recover=all -fno-omit-frame-pointer
FUZZ_SRC      = $(sort $(wildcard fuzz/*.c))
FUZZ_SECONDS ?= 60

fuzz:
	@sh fuzz/run.sh check
	@$(MAKE) --no-print-directory -j2 BUILD=build-fuzz CC=$(FUZZ_CC) OPT="-O1 -g -march=x86-64-v3" \
	    SANFLAGS="$(FUZZ_SAN) -fsanitize=fuzzer-no-link" fuzz-bins

fuzz-bins: $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz_%)

$(BUILD)/fuzz_%: fuzz/%.c $(wildcard fuzz/*.h) $(LIB)
	$(CC) $(ALL_CFLAGS) -Werror=int-conversion -Werror=incompatible-pointer-types -DFUZZ_ROOT='"$(CURDIR)"' \
	    -fsanitize=fuzzer -o $@ $< $(LIB) $(LIBS) $(LDFLAGS)

fuzz-smoke:
	@sh fuzz/run.sh smoke

fuzz-long:
	@sh fuzz/run.sh long $(FUZZ_SECONDS)

# ---- generated assets: the web viewer (web/) and the DejaVu Sans font, embedded into the library --------
# tools/embed.c turns files into C arrays in $(BUILD)/gen/; their objects are added to libattnviz.a.
FONT_TTF   ?= /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
WEB_FILES   = web/index.html web/viewer.css web/data.js web/heatmap.js web/analysis.js web/modelview.js \
              web/headview.js web/imageview.js web/summary.js web/rollout.js web/normview.js web/steps.js \
              web/attribution.js web/lens.js web/daamview.js web/neuronview.js web/rowview.js web/qkmap.js web/viewer.js
WEB_FILES  += web/serve.html web/serve.css web/serve.js web/zoom.js
WEB_FILES  += web/corpus.html web/corpus.css web/corpus.js
EMBED       = $(BUILD)/tools/embed
GEN_OBJ     = $(BUILD)/gen/web_assets.o $(BUILD)/gen/font_data.o
ALL_CFLAGS += -I/usr/include/freetype2

$(EMBED): tools/embed.c src/core/path.c src/core/core.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -D_DEFAULT_SOURCE -O1 $(WARN) -Iinclude -Isrc -o $@ tools/embed.c src/core/path.c

$(BUILD)/gen/web_assets.c: $(WEB_FILES) $(EMBED)
	@mkdir -p $(dir $@)
	$(EMBED) $@ --table av_web_assets $(WEB_FILES)

$(BUILD)/gen/font_data.c: $(wildcard $(FONT_TTF)) $(EMBED)
	@test -r $(FONT_TTF) || { echo "missing $(FONT_TTF): run 'make deps' (Debian fonts-dejavu-core)"; exit 1; }
	@mkdir -p $(dir $@)
	$(EMBED) $@ --blob av_font_dejavu_sans $(FONT_TTF)

$(BUILD)/gen/%.o: $(BUILD)/gen/%.c $(FLAGS_STAMP)
	$(CC) $(ALL_CFLAGS) -g0 -c $< -o $@

$(LIB): $(GEN_OBJ)
# ---- end of generated assets ----------------------------------------------------------------------------

# ---- the shared library: libattnviz.so.MAJOR.MINOR, soname libattnviz.so.MAJOR, from AV_VERSION -------
# It exports exactly the functions include/attnviz.h declares (a version script made from the header), so
# internal av_ symbols stay private; -z defs refuses undefined references. Sanitized builds make none (a
# sanitized .so cannot be loaded by an uninstrumented Python).
$(BUILD)/attnviz.map: include/attnviz.h
	@mkdir -p $(dir $@)
	@{ echo 'ATTNVIZ_$(SO_MAJOR) {'; echo '  global:'; \
	   sed -e '/^typedef/d' -n -e 's/^[a-z][^(]*[ *]\(av_[a-z0-9_]*\)(.*/    \1;/p' $<; \
	   echo '  local: *;'; echo '};'; } > $@

$(SO): $(LIB_OBJ) $(GEN_OBJ) $(BUILD)/attnviz.map
	$(CC) -shared -Wl,-soname,$(SONAME) -Wl,--version-script=$(BUILD)/attnviz.map -Wl,-z,defs $(LDFLAGS) \
	    -o $@ $(LIB_OBJ) $(GEN_OBJ) $(LIBS)
	ln -sf $(notdir $@) $(BUILD)/$(SONAME)
	ln -sf $(SONAME) $(BUILD)/libattnviz.so

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) $(GEN_OBJ:.o=.d)
