package scripts

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// sandbox is a machine as gpu-backend.sh sees it: a PATH holding only the
// basic tools it uses plus whatever fakes a test adds (nvcc, nvidia-smi,
// cmake), no CUDA or ROCm install directories, and a repository checkout
// of its own.
type sandbox struct {
	t        *testing.T
	bin      string // the PATH
	repo     string // working directory (lib/ollama and build/ appear here)
	src      string // the fake ollama module source
	cmakeLog string
}

func newSandbox(t *testing.T) *sandbox {
	t.Helper()
	root := t.TempDir()
	s := &sandbox{t: t, bin: filepath.Join(root, "bin"), repo: filepath.Join(root, "repo"), src: filepath.Join(root, "ollama@v0.24.0"),
		cmakeLog: filepath.Join(root, "cmake.log")}
	for _, d := range []string{s.bin, s.repo, filepath.Join(s.src, "ml", "backend", "ggml", "ggml", "src")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, tool := range []string{"bash", "sh", "cat", "cp", "mkdir", "rm", "mv", "sed", "grep", "awk", "sort", "paste", "tr",
		"dirname", "xargs", "nproc", "id", "tail", "head", "chmod"} {
		p, err := exec.LookPath(tool)
		if err != nil {
			t.Skipf("%s not installed: %v", tool, err)
		}
		if err := os.Symlink(p, filepath.Join(s.bin, tool)); err != nil {
			t.Fatal(err)
		}
	}
	s.write(filepath.Join(s.src, "CMakeLists.txt"), "project(Ollama C CXX)\nset(GGML_CUDA_FA ON)\n")
	s.write(filepath.Join(s.src, "ml", "backend", "ggml", "ggml", "src", "ggml.c"), "/* ggml */\n")
	return s
}

func (s *sandbox) write(path, content string) {
	s.t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o755); err != nil {
		s.t.Fatal(err)
	}
}

// tool adds a fake command.
func (s *sandbox) tool(name, script string) {
	s.write(filepath.Join(s.bin, name), "#!/bin/sh\n"+script)
}

// fakeCUDA installs nvcc, nvidia-smi reporting caps, and a cmake that
// logs its arguments and produces what the real build leaves behind.
func (s *sandbox) fakeCUDA(caps string) {
	s.tool("nvcc", "echo 'nvcc: NVIDIA (R) Cuda compiler driver'\necho 'Build cuda_13.0.r13.0/compiler.36260728_0'\n")
	if caps != "" {
		s.tool("nvidia-smi", "[ \"$1\" = --query-gpu=compute_cap ] || exit 9\nprintf '"+caps+"'\n")
	}
	s.tool("cmake", `echo "$*" >>`+s.cmakeLog+`
if [ "$1" = --build ]; then
	mkdir -p "$2/lib/ollama" && echo cuda >"$2/lib/ollama/libggml-cuda.so" && echo base >"$2/lib/ollama/libggml-base.so.0"
else
	while [ $# -gt 0 ]; do [ "$1" = -B ] && tree=$2; shift; done
	mkdir -p "$tree"
	printf 'CUDAToolkit_LIBRARY_DIR:PATH=/opt/cuda-13/lib64\nCUDA_cublas_LIBRARY:FILEPATH=/opt/venv/nvidia/cublas/lib/libcublas.so\nCUDA_cudart_LIBRARY:FILEPATH=/opt/cuda-13/lib64/libcudart.so\n' >"$tree/CMakeCache.txt"
fi
`)
}

// run runs the script in mode with extra environment; it returns the
// exit code and stderr (stdout must stay empty: make prints it).
func (s *sandbox) run(mode string, env ...string) (int, string) {
	s.t.Helper()
	script, err := filepath.Abs("gpu-backend.sh")
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "bash"), script, mode)
	cmd.Dir = s.repo
	cmd.Env = append([]string{"PATH=" + s.bin, "HOME=" + s.repo, "OLLAMA_SRC=" + s.src, "JOBS=2",
		"CUDA_HOME=" + filepath.Join(s.repo, "no-cuda"), "ROCM_PATH=" + filepath.Join(s.repo, "no-rocm")}, env...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	if stdout.Len() > 0 {
		s.t.Errorf("gpu-backend.sh %s wrote to stdout: %q", mode, stdout.String())
	}
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), stderr.String()
	} else if err != nil {
		s.t.Fatal(err)
	}
	return 0, stderr.String()
}

func (s *sandbox) cmakeCalls() []string {
	b, err := os.ReadFile(s.cmakeLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

func (s *sandbox) exists(rel string) bool {
	_, err := os.Stat(filepath.Join(s.repo, rel))
	return err == nil
}

// TestGPUBackendWithoutToolkitIsANoOp: on a machine without nvcc or hipcc
// `make` behaves as it always did — the script prints nothing, creates
// nothing, runs no cmake, and succeeds; asked for CUDA explicitly it fails
// with a message naming what is missing.
func TestGPUBackendWithoutToolkitIsANoOp(t *testing.T) {
	s := newSandbox(t)
	s.fakeCUDA("9.0\n")
	os.Remove(filepath.Join(s.bin, "nvcc"))
	for _, mode := range []string{"auto", "none"} {
		code, stderr := s.run(mode)
		if code != 0 || stderr != "" {
			t.Errorf("%s without a toolkit: exit %d, stderr %q; want silent success", mode, code, stderr)
		}
	}
	if s.exists("lib") || s.exists("build") || len(s.cmakeCalls()) > 0 {
		t.Fatalf("without a toolkit something was built: lib %v, build %v, cmake %q", s.exists("lib"), s.exists("build"), s.cmakeCalls())
	}
	code, stderr := s.run("cuda")
	if code == 0 || !strings.Contains(stderr, "the CUDA backend needs the CUDA toolkit: nvcc is neither on PATH nor in") {
		t.Fatalf("cuda without nvcc: exit %d, stderr %q", code, stderr)
	}
	if code, stderr := s.run("metal"); code == 0 || !strings.Contains(stderr, "unknown mode 'metal'") {
		t.Fatalf("unknown mode: exit %d, stderr %q", code, stderr)
	}
}

// TestGPUBackendBuildsOnceForTheDetectedGPUs: with nvcc and nvidia-smi,
// auto mode builds for the distinct compute capabilities (9.0 twice and
// 8.6 → "86;90") with that nvcc, installs the backend and ggml-base into
// lib/ollama/cuda with the CUDA runtime directories the build linked
// against, and does nothing on the next run; a different architecture or
// flash-attention setting rebuilds.
func TestGPUBackendBuildsOnceForTheDetectedGPUs(t *testing.T) {
	s := newSandbox(t)
	s.fakeCUDA(`9.0\n8.6\n9.0\n`)
	code, stderr := s.run("auto")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	calls := s.cmakeCalls()
	if len(calls) != 2 {
		t.Fatalf("cmake calls %q: want configure and build", calls)
	}
	for _, want := range []string{"-S build/ollama-src -B build/cuda", "-DCMAKE_CUDA_COMPILER=" + filepath.Join(s.bin, "nvcc"),
		"-DCMAKE_CUDA_ARCHITECTURES=86;90", "-DOLLAMA_RUNNER_DIR=cuda"} {
		if !strings.Contains(calls[0], want) {
			t.Errorf("configure %q lacks %q", calls[0], want)
		}
	}
	if calls[1] != "--build build/cuda --target ggml-cuda --parallel 2" {
		t.Errorf("build call %q", calls[1])
	}
	for _, f := range []string{"lib/ollama/cuda/libggml-cuda.so", "lib/ollama/cuda/libggml-base.so.0", "build/ollama-src/ml/backend/ggml/ggml/src/ggml.c"} {
		if !s.exists(f) {
			t.Errorf("%s missing", f)
		}
	}
	ld, _ := os.ReadFile(filepath.Join(s.repo, "lib/ollama/cuda/ld_library_path"))
	if string(ld) != "/opt/cuda-13/lib64\n/opt/venv/nvidia/cublas/lib\n" {
		t.Errorf("ld_library_path %q: want the toolkit's and cuBLAS's directories, once each", ld)
	}
	if !strings.Contains(stderr, "building the CUDA backend for architectures 86;90") || !strings.Contains(stderr, "installed in lib/ollama/cuda") {
		t.Errorf("stderr %q", stderr)
	}
	if code, stderr := s.run("auto"); code != 0 || stderr != "" || len(s.cmakeCalls()) != 2 {
		t.Fatalf("second run: exit %d, stderr %q, cmake calls %d; want nothing done", code, stderr, len(s.cmakeCalls()))
	}
	code, _ = s.run("auto", "CUDA_ARCHITECTURES=80", "CUDA_FLASH_ATTENTION=OFF")
	calls = s.cmakeCalls()
	if code != 0 || len(calls) != 4 || !strings.Contains(calls[2], "-DCMAKE_CUDA_ARCHITECTURES=80 ") {
		t.Fatalf("CUDA_ARCHITECTURES=80: exit %d, cmake calls %q", code, calls)
	}
	cm, _ := os.ReadFile(filepath.Join(s.repo, "build/ollama-src/CMakeLists.txt"))
	if !strings.Contains(string(cm), "set(GGML_CUDA_FA OFF)") {
		t.Errorf("CUDA_FLASH_ATTENTION=OFF not applied: %q", cm)
	}
}

// TestGPUBackendToolkitWithoutGPU: nvcc on a machine whose nvidia-smi
// finds no GPU (a build host) builds nothing in auto mode and says why in
// one line; explicit CUDA fails; CUDA_ARCHITECTURES builds anyway.
func TestGPUBackendToolkitWithoutGPU(t *testing.T) {
	s := newSandbox(t)
	s.fakeCUDA("")
	code, stderr := s.run("auto")
	if code != 0 || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "no NVIDIA GPU") || len(s.cmakeCalls()) != 0 {
		t.Fatalf("auto: exit %d, stderr %q, cmake %q", code, stderr, s.cmakeCalls())
	}
	if code, stderr := s.run("cuda"); code == 0 || !strings.Contains(stderr, "set CUDA_ARCHITECTURES") {
		t.Fatalf("cuda: exit %d, stderr %q", code, stderr)
	}
	if code, stderr := s.run("auto", "CUDA_ARCHITECTURES=90"); code != 0 || !s.exists("lib/ollama/cuda/libggml-cuda.so") {
		t.Fatalf("CUDA_ARCHITECTURES=90: exit %d, stderr %q", code, stderr)
	}
}

// TestMakeBuildRunsTheBackendStep: `make build` (and so run, test,
// install, which depend on it) runs the GPU backend step before compiling.
func TestMakeBuildRunsTheBackendStep(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed")
	}
	out, err := exec.Command(makeBin, "-C", "..", "-n", "build", "GO=go").CombinedOutput()
	if err != nil {
		t.Fatalf("make -n build: %v\n%s", err, out)
	}
	text := string(out)
	step, build := strings.Index(text, "scripts/gpu-backend.sh auto"), strings.Index(text, "go build -buildvcs=auto -o bin/evomerge-tui")
	if step < 0 || build < 0 || step > build {
		t.Fatalf("make -n build:\n%s\nwant the backend step (auto) before go build", text)
	}
	out, _ = exec.Command(makeBin, "-C", "..", "-n", "build", "GO=go", "GPU_BACKEND=none").CombinedOutput()
	if !strings.Contains(string(out), "scripts/gpu-backend.sh none") {
		t.Fatalf("GPU_BACKEND=none not passed on:\n%s", out)
	}
}

// TestGPUCheckWithoutToolkit: `make gpu-check` on a machine without nvcc
// says it was not run and why, and fails.
func TestGPUCheckWithoutToolkit(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Skip("make not installed")
	}
	s := newSandbox(t)
	if err := os.Symlink(makeBin, filepath.Join(s.bin, "make")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(s.bin, "make"), "-s", "-C", "..", "gpu-check")
	cmd.Env = []string{"PATH=" + s.bin, "HOME=" + s.repo, "CUDA_HOME=" + filepath.Join(s.repo, "no-cuda")}
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "nvcc is neither on PATH nor in") ||
		!strings.Contains(string(out), "gpu-check: not run: it needs an NVIDIA GPU and the CUDA toolkit") {
		t.Fatalf("make gpu-check without nvcc: %v\n%s", err, out)
	}
	if s.exists("lib") || strings.Contains(string(out), "go build") {
		t.Fatalf("make gpu-check without nvcc went on:\n%s", out)
	}
}
