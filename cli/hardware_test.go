package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackendEnv: workers get every GPU backend directory under lib/ollama
// on OLLAMA_LIBRARY_PATH, and on LD_LIBRARY_PATH those directories plus the
// runtime library directories the build recorded, before the caller's own.
func TestBackendEnv(t *testing.T) {
	lib := filepath.Join(t.TempDir(), "lib", "ollama")
	if got := backendEnv(lib, ""); got != nil {
		t.Fatalf("no lib/ollama: env %q, want none", got)
	}
	cuda := filepath.Join(lib, "cuda")
	if err := os.MkdirAll(cuda, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(lib, "unrelated"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(cuda, "ld_library_path"), []byte("/opt/cuda-13/lib64\n\n/opt/venv/nvidia/cublas/lib\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := backendEnv(lib, "/caller/lib")
	if len(env) != 2 {
		t.Fatalf("env %q", env)
	}
	if want := "OLLAMA_LIBRARY_PATH=" + cuda + ":" + lib; env[0] != want {
		t.Errorf("got %q, want %q", env[0], want)
	}
	ld := strings.Split(strings.TrimPrefix(env[1], "LD_LIBRARY_PATH="), ":")
	if len(ld) < 5 || ld[0] != cuda || ld[1] != "/opt/cuda-13/lib64" || ld[2] != "/opt/venv/nvidia/cublas/lib" || ld[3] != lib || ld[len(ld)-1] != "/caller/lib" {
		t.Errorf("LD_LIBRARY_PATH %q: want the backend, its recorded runtime directories, lib/ollama, …, the caller's", ld)
	}
}
