#!/usr/bin/env bash
# gpu-backend.sh — build llama.cpp's GPU backend for evomerge's evaluation
# workers when a GPU toolkit is installed; do nothing when none is.
#
#   scripts/gpu-backend.sh [auto|cuda|rocm|none]
#
# `make` runs it with $(GPU_BACKEND), auto unless set.
#
#   auto  CUDA when nvcc is found (on PATH or in $CUDA_HOME/bin, default
#         /usr/local/cuda/bin), ROCm when hipcc is found (PATH or
#         $ROCM_PATH/bin, default /opt/rocm/bin);
#         with neither it does nothing and prints nothing.
#   cuda, rocm  that backend; a missing toolkit is an error.
#   none  nothing.
#
# The backends are CMake-only shared modules (libggml-cuda.so, libggml-hip.so)
# built from the ollama module source the Go build uses — the same pinned
# llama.cpp — and installed into $GPU_LIB_DIR/<backend>/ (default
# lib/ollama/cuda, lib/ollama/rocm), which is where workers started from
# bin/evomerge-tui look for them (<exe>/../lib/ollama). A stamp file there
# records what the build was made from (ollama source, architectures,
# compiler version, options); when it matches, nothing is rebuilt.
#
# Environment:
#   CUDA_ARCHITECTURES    e.g. "90" or "86;90" (default: the compute
#                         capabilities nvidia-smi reports for this machine's GPUs)
#   CUDA_FLASH_ATTENTION  ON (default) or OFF (fewer kernels, faster build)
#   AMDGPU_TARGETS        e.g. "gfx942" (default: what amdgpu-arch or rocminfo report)
#   GPU_LIB_DIR           where backends are installed (default lib/ollama)
#   GPU_BUILD_DIR         CMake build trees (default build)
#   OLLAMA_SRC            the ollama module source (default: go list -m)
#   JOBS                  parallel compile jobs (default: nproc)
#   GO                    the go command (default go)
#
# Without a GPU on the machine (nvidia-smi/amdgpu-arch find none) and no
# architectures given, auto mode prints one line and builds nothing: there
# is nothing to build for.
set -euo pipefail

mode=${1:-auto}
# RECIPE changes whenever the way the backend is built changes, so a stamp
# written by an older recipe triggers a rebuild.
RECIPE=1
lib_dir=${GPU_LIB_DIR:-lib/ollama}
build_dir=${GPU_BUILD_DIR:-build}
GO=${GO:-go}

say() { echo "gpu-backend: $*" >&2; }
die() { say "$*"; exit 1; }

find_tool() { # find_tool NAME DIR... — first executable NAME on PATH or in a DIR
	local name=$1 d
	shift
	if command -v "$name" >/dev/null 2>&1; then command -v "$name"; return 0; fi
	for d in "$@"; do
		if [ -n "$d" ] && [ -x "$d/$name" ]; then echo "$d/$name"; return 0; fi
	done
	return 1
}

nvcc_path() { find_tool nvcc "${CUDA_HOME:-/usr/local/cuda}/bin"; }
hipcc_path() { find_tool hipcc "${ROCM_PATH:-/opt/rocm}/bin"; }

# ensure_cmake installs cmake the way the Makefile installs build packages
# (as root or with password-less sudo), else stops with the command to run.
ensure_cmake() {
	command -v cmake >/dev/null 2>&1 && return 0
	say "cmake is needed to build the $1 backend; installing it"
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
	elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq cmake
	else
		die "cmake is missing: run  sudo apt-get install -y cmake  (or build without the GPU backend: make GPU_BACKEND=none)"
	fi
}

ollama_src() {
	if [ -n "${OLLAMA_SRC:-}" ]; then echo "$OLLAMA_SRC"; return; fi
	"$GO" list -m -f '{{.Dir}}' github.com/ollama/ollama
}

# cuda_archs prints the CUDA architectures to build for, "" when unknown.
cuda_archs() {
	if [ -n "${CUDA_ARCHITECTURES:-}" ]; then echo "$CUDA_ARCHITECTURES"; return; fi
	local smi caps
	smi=$(find_tool nvidia-smi) || return 0
	caps=$("$smi" --query-gpu=compute_cap --format=csv,noheader 2>/dev/null) || return 0
	# "9.0" → "90"; one entry per distinct GPU model, sorted, ';'-joined.
	echo "$caps" | tr -d ' .' | grep -E '^[0-9]+[a-z]?$' | sort -u | paste -sd ';' - || true
}

amdgpu_targets() {
	if [ -n "${AMDGPU_TARGETS:-}" ]; then echo "$AMDGPU_TARGETS"; return; fi
	local tool out=""
	if tool=$(find_tool amdgpu-arch "${ROCM_PATH:-/opt/rocm}/llvm/bin"); then
		out=$("$tool" 2>/dev/null || true)
	elif tool=$(find_tool rocminfo "${ROCM_PATH:-/opt/rocm}/bin"); then
		out=$("$tool" 2>/dev/null | grep -oE '\bgfx[0-9a-f]+\b' || true)
	fi
	echo "$out" | grep -E '^gfx[0-9a-f]+$' | grep -v '^gfx000$' | sort -u | paste -sd ';' - || true
}

# copy_source copies what CMake needs from the (read-only) module source
# into the build directory once per ollama version.
copy_source() {
	local src=$1 dst=$build_dir/ollama-src
	if [ -f "$dst/.source" ] && [ "$(cat "$dst/.source")" = "$src" ]; then return; fi
	rm -rf "$dst"
	mkdir -p "$dst/ml/backend/ggml"
	cp "$src/CMakeLists.txt" "$dst/"
	cp -r "$src/ml/backend/ggml/ggml" "$dst/ml/backend/ggml/"
	chmod -R u+w "$dst"
	echo "$src" >"$dst/.source"
}

# install_backend NAME FILE LDPATHS — copy the built module and ggml-base
# into $lib_dir/NAME (replaced whole), with the runtime library directories
# workers must put on LD_LIBRARY_PATH and the stamp.
install_backend() {
	local name=$1 built=$2 ldpaths=$3 stamp=$4 dest=$lib_dir/$1
	local tmp=$lib_dir/.$name.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	cp -a "$built" "$(dirname "$built")"/libggml-base.so* "$tmp/"
	printf '%s\n' "$ldpaths" | grep . >"$tmp/ld_library_path" || true
	printf '%s\n' "$stamp" >"$tmp/build-stamp"
	rm -rf "$dest"
	mv "$tmp" "$dest"
	say "$name backend installed in $dest"
}

up_to_date() { # up_to_date NAME LIB STAMP
	[ -f "$lib_dir/$1/$2" ] && [ -f "$lib_dir/$1/build-stamp" ] && [ "$(cat "$lib_dir/$1/build-stamp")" = "$3" ]
}

build_cuda() {
	local required=$1 nvcc archs src fa stamp tree cache dirs
	if ! nvcc=$(nvcc_path); then
		[ "$required" = yes ] && die "the CUDA backend needs the CUDA toolkit: nvcc is neither on PATH nor in ${CUDA_HOME:-/usr/local/cuda}/bin"
		return 0
	fi
	archs=$(cuda_archs)
	if [ -z "$archs" ]; then
		[ "$required" = yes ] && die "found $nvcc but no NVIDIA GPU (nvidia-smi reports none): set CUDA_ARCHITECTURES, e.g. CUDA_ARCHITECTURES=90"
		say "found $nvcc but no NVIDIA GPU (nvidia-smi reports none); not building the CUDA backend (set CUDA_ARCHITECTURES to build it anyway)"
		return 0
	fi
	fa=${CUDA_FLASH_ATTENTION:-ON}
	src=$(ollama_src)
	stamp="recipe=$RECIPE backend=cuda source=$src architectures=$archs flash_attention=$fa nvcc=$("$nvcc" --version | tail -n 1)"
	if up_to_date cuda libggml-cuda.so "$stamp"; then return 0; fi
	ensure_cmake CUDA
	say "building the CUDA backend for architectures $archs with $nvcc (a few minutes, once)"
	copy_source "$src"
	sed -i "s/^set(GGML_CUDA_FA .*)/set(GGML_CUDA_FA $fa)/" "$build_dir/ollama-src/CMakeLists.txt"
	tree=$build_dir/cuda
	cmake -S "$build_dir/ollama-src" -B "$tree" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_CUDA_COMPILER="$nvcc" -DCMAKE_CUDA_ARCHITECTURES="$archs" -DOLLAMA_RUNNER_DIR=cuda >&2
	cmake --build "$tree" --target ggml-cuda --parallel "${JOBS:-$(nproc)}" >&2
	# The CUDA runtime libraries the backend was linked against: workers
	# need their directories on LD_LIBRARY_PATH before they start.
	cache=$tree/CMakeCache.txt
	dirs=$({
		sed -n 's/^CUDAToolkit_LIBRARY_DIR:[A-Z]*=//p' "$cache"
		sed -n 's/^CUDA_\(cudart\|cublas\|cublasLt\)_LIBRARY:[A-Z]*=//p' "$cache" | xargs -r -n1 dirname
	} 2>/dev/null | grep . | awk '!seen[$0]++' || true)
	install_backend cuda "$tree/lib/ollama/libggml-cuda.so" "$dirs" "$stamp"
}

# ROCm is the same kind of step in ollama's CMakeLists (check_language(HIP)
# → ggml-hip); it has not been run on an AMD GPU here.
build_rocm() {
	local required=$1 hipcc targets src stamp tree rocm
	if ! hipcc=$(hipcc_path); then
		[ "$required" = yes ] && die "the ROCm backend needs ROCm: hipcc is neither on PATH nor in ${ROCM_PATH:-/opt/rocm}/bin"
		return 0
	fi
	targets=$(amdgpu_targets)
	if [ -z "$targets" ]; then
		[ "$required" = yes ] && die "found $hipcc but no AMD GPU (amdgpu-arch/rocminfo report none): set AMDGPU_TARGETS, e.g. AMDGPU_TARGETS=gfx942"
		say "found $hipcc but no AMD GPU (amdgpu-arch/rocminfo report none); not building the ROCm backend (set AMDGPU_TARGETS to build it anyway)"
		return 0
	fi
	rocm=$(dirname "$(dirname "$hipcc")")
	src=$(ollama_src)
	stamp="recipe=$RECIPE backend=rocm source=$src targets=$targets hipcc=$("$hipcc" --version 2>/dev/null | head -n 1)"
	if up_to_date rocm libggml-hip.so "$stamp"; then return 0; fi
	ensure_cmake ROCm
	say "building the ROCm backend for $targets with $hipcc (a few minutes, once)"
	copy_source "$src"
	tree=$build_dir/rocm
	HIPCXX=${HIPCXX:-$rocm/llvm/bin/clang} HIP_PATH=${HIP_PATH:-$rocm} \
		cmake -S "$build_dir/ollama-src" -B "$tree" -DCMAKE_BUILD_TYPE=Release \
		-DCMAKE_HIP_PLATFORM=amd -DAMDGPU_TARGETS="$targets" -DOLLAMA_RUNNER_DIR=rocm >&2
	cmake --build "$tree" --target ggml-hip --parallel "${JOBS:-$(nproc)}" >&2
	install_backend rocm "$tree/lib/ollama/libggml-hip.so" "$rocm/lib" "$stamp"
}

case $mode in
auto)
	build_cuda no
	build_rocm no
	;;
cuda) build_cuda yes ;;
rocm) build_rocm yes ;;
none) ;;
*) die "unknown mode '$mode' (auto, cuda, rocm or none)" ;;
esac
