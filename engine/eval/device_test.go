package eval

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestSystemGPUs(t *testing.T) {
	root := t.TempDir()
	write := func(rel, content string) {
		t.Helper()
		p := filepath.Join(root, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	smiCalls := 0
	smi := func() []string { smiCalls++; return []string{"from nvidia-smi"} }
	if got := systemGPUs(root, smi); !reflect.DeepEqual(got, []string{"from nvidia-smi"}) || smiCalls != 1 {
		t.Fatalf("no driver listing: got %q after %d nvidia-smi calls, want nvidia-smi's answer", got, smiCalls)
	}
	// The NVIDIA driver's listing (format of /proc/driver/nvidia/gpus/*/information).
	write("proc/driver/nvidia/gpus/0000:3b:00.0/information", "Model: \t\t NVIDIA H100 80GB HBM3\nIRQ:   \t\t 42\nGPU UUID: \t GPU-1\n")
	write("proc/driver/nvidia/gpus/0000:5e:00.0/information", "IRQ: 7\n")
	write("sys/class/drm/card0/device/vendor", "0x1002\n")
	write("sys/class/drm/card0/device/product_name", "AMD Instinct MI300X\n")
	write("sys/class/drm/card1/device/vendor", "0x8086\n") // Intel: not counted
	write("sys/class/drm/card2/device/vendor", "0x1002\n")
	got := systemGPUs(root, smi)
	want := []string{"NVIDIA H100 80GB HBM3", "NVIDIA GPU", "AMD Instinct MI300X", "AMD GPU"}
	if !reflect.DeepEqual(got, want) || smiCalls != 1 {
		t.Fatalf("got %q (nvidia-smi calls %d), want %q without asking nvidia-smi again", got, smiCalls, want)
	}
}

func TestGPUBackendFiles(t *testing.T) {
	a, b := t.TempDir(), t.TempDir()
	for _, f := range []string{filepath.Join(a, "libggml-base.so"), filepath.Join(b, "libggml-cuda.so"), filepath.Join(b, "libggml-hip.so")} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got := GPUBackendFiles([]string{a, b, filepath.Join(a, "missing")})
	want := []string{filepath.Join(b, "libggml-cuda.so"), filepath.Join(b, "libggml-hip.so")}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %q, want %q", got, want)
	}
}

func TestPlacement(t *testing.T) {
	cpu := Device{Name: "CPU", Description: "AMD EPYC 7B13", Type: "cpu", MemoryTotal: 64 << 30}
	h100 := Device{Name: "CUDA0", Description: "NVIDIA H100 80GB HBM3", Type: "gpu", MemoryTotal: 80 << 30, MemoryFree: 79 << 30}
	h100b := h100
	h100b.Name = "CUDA1"
	model := ModelInfo{Layers: 6, Offloadable: 7}
	offloaded := func(n int) ModelInfo { m := model; m.Offloaded = n; return m }
	tests := []struct {
		name         string
		h            Health
		m            ModelInfo
		workers      int
		long, short  string
		onGPU        bool
		unusedSubstr string
	}{
		{name: "CPU only, no GPU on the machine",
			h: Health{Threads: 16, GPULayers: -1, Devices: []Device{cpu}}, m: model, workers: 2,
			long: "CPU, 16 threads (AMD EPYC 7B13); 2 workers", short: "CPU · 16 threads · 2 workers"},
		{name: "all layers on one GPU",
			h: Health{Threads: 16, GPULayers: -1, Devices: []Device{cpu, h100}}, m: offloaded(7), workers: 1,
			long: "NVIDIA H100 80GB HBM3 (80.0 GiB), 7/7 layers offloaded; 1 worker", short: "GPU NVIDIA H100 80GB HBM3 · 7/7 layers", onGPU: true},
		{name: "part of the layers on two GPUs",
			h: Health{Threads: 8, GPULayers: 3, Devices: []Device{cpu, h100, h100b}}, m: offloaded(3), workers: 1,
			long: "2× NVIDIA H100 80GB HBM3 (80.0 GiB), 3/7 layers offloaded, the rest on the CPU (8 threads); 1 worker", short: "GPU 2× NVIDIA H100 80GB HBM3 · 3/7 layers", onGPU: true},
		{name: "GPU present, no backend built",
			h: Health{Threads: 16, GPULayers: -1, Devices: []Device{cpu}, SystemGPUs: []string{"NVIDIA H100 80GB HBM3"}}, m: model, workers: 1,
			short: "CPU · 16 threads · GPU unused", unusedSubstr: "GPU NVIDIA H100 80GB HBM3 present but unused: no GPU backend built"},
		{name: "GPU present, backend did not load",
			h: Health{Threads: 16, GPULayers: -1, Devices: []Device{cpu}, SystemGPUs: []string{"NVIDIA H100 80GB HBM3"}, Backends: []string{"/x/lib/ollama/cuda/libggml-cuda.so"}}, m: model, workers: 1,
			short: "CPU · 16 threads · GPU unused", unusedSubstr: "the GPU backend /x/lib/ollama/cuda/libggml-cuda.so did not load"},
		{name: "--gpu-layers 0, workers without the backend",
			h: Health{Threads: 16, GPULayers: 0, Devices: []Device{cpu}, SystemGPUs: []string{"NVIDIA H100 80GB HBM3"}}, m: model, workers: 1,
			short: "CPU · 16 threads · GPU unused", unusedSubstr: "present but unused: --gpu-layers 0"},
		{name: "--gpu-layers 0 with the backend loaded",
			h: Health{Threads: 16, GPULayers: 0, Devices: []Device{cpu, h100}}, m: model, workers: 1,
			short: "CPU · 16 threads · GPU unused", unusedSubstr: "GPU NVIDIA H100 80GB HBM3 present but unused: --gpu-layers 0"},
		{name: "load onto the GPU failed",
			h: Health{Threads: 16, GPULayers: -1, Devices: []Device{cpu, h100}}, m: ModelInfo{Offloadable: 7, GPUFallback: "loading the model onto the GPU failed"}, workers: 1,
			short: "CPU · 16 threads · GPU unused", unusedSubstr: "present but unused: loading the model onto the GPU failed"},
		{name: "GPU backend loaded, no model yet",
			h: Health{Threads: 4, GPULayers: -1, Devices: []Device{cpu, h100}}, workers: 1,
			long: "CPU, 4 threads (AMD EPYC 7B13); 1 worker", short: "CPU · 4 threads"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := NewPlacement(tc.h, tc.m, tc.workers)
			if tc.long != "" && p.String() != tc.long {
				t.Errorf("String() = %q, want %q", p.String(), tc.long)
			}
			if p.Short() != tc.short {
				t.Errorf("Short() = %q, want %q", p.Short(), tc.short)
			}
			if p.OnGPU() != tc.onGPU {
				t.Errorf("OnGPU() = %v, want %v", p.OnGPU(), tc.onGPU)
			}
			if tc.unusedSubstr == "" && p.Unused != "" || !strings.Contains(p.Unused, tc.unusedSubstr) {
				t.Errorf("Unused = %q, want it to contain %q", p.Unused, tc.unusedSubstr)
			}
			if tc.unusedSubstr != "" && !strings.HasSuffix(p.String(), "; "+p.Unused) {
				t.Errorf("String() = %q does not end with the reason", p.String())
			}
		})
	}
}
