# evomerge — build, test and run.
#
#   make run    run the default tournament on the bundled zoo (builds what it needs)
#   make test   every test (installs missing system packages, builds the zoo)
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

.PHONY: build deps cgo-include run test test-short vet fmt bench fuzz clean zoo cuda

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

build: deps
	$(GO) build -o $(BIN) .

vet: deps
	$(GO) vet $(PKGS)

fmt:
	gofmt -l -w $$(git ls-files '*.go')

test: build
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -timeout 60m $(PKGS)

clean:
	rm -rf bin
