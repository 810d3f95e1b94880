package eval

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Where evaluation runs. A worker reports what its llama.cpp enumerated
// (Health.Devices), what the machine has whether or not a backend can use
// it (Health.SystemGPUs, read from the kernel drivers, not llama.cpp), and
// which GPU backend libraries it could have loaded (Health.Backends).
// Placement combines that with a loaded model's offload count into what
// the run header, the status bar, summary.json and the report say — and,
// when a GPU sits idle, why: no backend built, a backend that did not
// load, --gpu-layers 0, or a model that could not be loaded onto it.

// Device is one compute device of a worker's llama.cpp (ggml's device
// enumeration).
type Device struct {
	Name        string `json:"name"`        // ggml's name: "CPU", "CUDA0"
	Description string `json:"description"` // "NVIDIA H100 80GB HBM3", the CPU's brand string
	Type        string `json:"type"`        // "cpu", "gpu", "igpu", "accel"
	MemoryTotal uint64 `json:"memory_total"`
	MemoryFree  uint64 `json:"memory_free"`
}

// IsGPU reports whether layers can be offloaded to the device.
func (d Device) IsGPU() bool { return d.Type == "gpu" || d.Type == "igpu" }

// Placement says where a run's (or one evaluation's) model runs.
type Placement struct {
	Workers int    `json:"workers"`
	Threads int    `json:"threads_per_worker"`
	CPU     string `json:"cpu"` // the CPU's description
	// GPUs are the devices the model's layers are offloaded to (each
	// worker uses all of them; llama.cpp splits the layers between them).
	GPUs      []Device `json:"gpus,omitempty"`
	Offloaded int      `json:"layers_offloaded"`
	Layers    int      `json:"layers"` // offloadable: blocks + the output layer
	// Unused says why a GPU this machine has is not used ("" when there is
	// none or it is used).
	Unused string `json:"gpu_unused,omitempty"`
}

// OnGPU reports whether any layer runs on a GPU.
func (p Placement) OnGPU() bool { return p.Offloaded > 0 && len(p.GPUs) > 0 }

// String is the one-line description: "NVIDIA H100 80GB HBM3 (79.2 GiB),
// 7/7 layers offloaded; 1 worker" or "CPU, 16 threads (AMD EPYC 7B13); 2
// workers", followed by why a GPU is unused when one is.
func (p Placement) String() string {
	var b strings.Builder
	if p.OnGPU() {
		fmt.Fprintf(&b, "%s, %d/%d layers offloaded", gpuNames(p.GPUs, true), p.Offloaded, p.Layers)
		if p.Offloaded < p.Layers {
			fmt.Fprintf(&b, ", the rest on the CPU (%d threads)", p.Threads)
		}
	} else {
		fmt.Fprintf(&b, "CPU, %d threads", p.Threads)
		if p.CPU != "" {
			fmt.Fprintf(&b, " (%s)", p.CPU)
		}
	}
	fmt.Fprintf(&b, "; %d worker%s", p.Workers, plural(p.Workers))
	if p.Unused != "" {
		b.WriteString("; " + p.Unused)
	}
	return b.String()
}

// Short is the status bar's form: "GPU NVIDIA H100 80GB HBM3 · 7/7 layers"
// or "CPU · 16 threads", with "· GPU unused" when one is.
func (p Placement) Short() string {
	s := fmt.Sprintf("CPU · %d threads", p.Threads)
	if p.OnGPU() {
		s = fmt.Sprintf("GPU %s · %d/%d layers", gpuNames(p.GPUs, false), p.Offloaded, p.Layers)
	}
	if p.Workers > 1 {
		s += fmt.Sprintf(" · %d workers", p.Workers)
	}
	if p.Unused != "" {
		s += " · GPU unused"
	}
	return s
}

func gpuNames(gpus []Device, memory bool) string {
	var parts []string
	for i := 0; i < len(gpus); {
		j := i
		for j < len(gpus) && gpus[j].Description == gpus[i].Description {
			j++
		}
		name := gpus[i].Description
		if name == "" {
			name = gpus[i].Name
		}
		if j-i > 1 {
			name = fmt.Sprintf("%d× %s", j-i, name)
		}
		if memory && gpus[i].MemoryTotal > 0 {
			name += fmt.Sprintf(" (%.1f GiB)", float64(gpus[i].MemoryTotal)/(1<<30))
		}
		parts = append(parts, name)
		i = j
	}
	return strings.Join(parts, " + ")
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// NewPlacement describes where a model runs, from a worker's health and
// its answer to loading the model (zero ModelInfo: no model, devices only).
func NewPlacement(h Health, m ModelInfo, workers int) Placement {
	p := Placement{Workers: workers, Threads: h.Threads, Offloaded: m.Offloaded, Layers: m.Offloadable}
	var gpus []Device
	for _, d := range h.Devices {
		switch {
		case d.Type == "cpu" && p.CPU == "":
			p.CPU = d.Description
		case d.IsGPU():
			gpus = append(gpus, d)
		}
	}
	if m.Offloaded > 0 {
		p.GPUs = gpus
		return p
	}
	var why string
	switch {
	case m.GPUFallback != "":
		why = m.GPUFallback
	case h.GPULayers == 0 && (len(gpus) > 0 || len(h.SystemGPUs) > 0):
		why = "--gpu-layers 0"
	case len(gpus) > 0:
		return p // a GPU backend but a model not loaded yet: nothing to say
	case len(h.SystemGPUs) == 0:
		return p
	case len(h.Backends) > 0:
		why = fmt.Sprintf("the GPU backend %s did not load (its runtime libraries, e.g. the CUDA toolkit's, not found? the worker log at debug level says why)", strings.Join(h.Backends, ", "))
	default:
		why = "no GPU backend built (run make on this machine with the CUDA toolkit installed: it builds one when nvcc is found)"
	}
	name := strings.Join(h.SystemGPUs, ", ")
	if len(gpus) > 0 {
		name = gpuNames(gpus, false)
	}
	p.Unused = fmt.Sprintf("GPU %s present but unused: %s", name, why)
	return p
}

// Placement loads model on a worker and describes where it runs. The
// model stays loaded (a following evaluation of it reuses it).
func (p *Pool) Placement(ctx context.Context, model string) (Placement, error) {
	info, err := p.Load(ctx, model)
	if err != nil {
		return Placement{}, err
	}
	h, err := PoolHealth(ctx, p)
	if err != nil {
		return Placement{}, err
	}
	return NewPlacement(h, info, p.Size()), nil
}

// SystemGPUs names the GPUs this machine has, whether or not any llama.cpp
// backend can use them: NVIDIA GPUs from the driver's
// /proc/driver/nvidia/gpus/*/information (else nvidia-smi), AMD GPUs from
// /sys/class/drm/card*/device (vendor 0x1002). Empty when there are none
// or the system says nothing.
func SystemGPUs() []string { return systemGPUs("/", lookNvidiaSMI) }

// systemGPUs reads the listings under root (a test's fake tree); smi is
// the nvidia-smi fallback.
func systemGPUs(root string, smi func() []string) []string {
	var out []string
	infos, _ := filepath.Glob(filepath.Join(root, "proc/driver/nvidia/gpus/*/information"))
	for _, f := range infos {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		name := "NVIDIA GPU"
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Model" {
				name = strings.TrimSpace(v)
			}
		}
		out = append(out, name)
	}
	if len(infos) == 0 && smi != nil {
		out = append(out, smi()...)
	}
	cards, _ := filepath.Glob(filepath.Join(root, "sys/class/drm/card[0-9]*/device/vendor"))
	for _, f := range cards {
		b, err := os.ReadFile(f)
		if err != nil || strings.TrimSpace(string(b)) != "0x1002" {
			continue
		}
		name := "AMD GPU"
		if pn, err := os.ReadFile(filepath.Join(filepath.Dir(f), "product_name")); err == nil && strings.TrimSpace(string(pn)) != "" {
			name = strings.TrimSpace(string(pn))
		}
		out = append(out, name)
	}
	return out
}

// lookNvidiaSMI asks nvidia-smi for GPU names (a machine whose driver
// listing is not visible, as in some containers).
func lookNvidiaSMI() []string {
	path, err := exec.LookPath("nvidia-smi")
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, "--query-gpu=name", "--format=csv,noheader").Output()
	if err != nil {
		return nil
	}
	var names []string
	for _, l := range strings.Split(string(out), "\n") {
		if l = strings.TrimSpace(l); l != "" {
			names = append(names, l)
		}
	}
	return names
}

// GPUBackendFiles are the llama.cpp GPU backend libraries in dirs (the
// directories a worker's llama.cpp searches).
func GPUBackendFiles(dirs []string) []string {
	var out []string
	for _, d := range dirs {
		for _, name := range []string{"libggml-cuda.so", "libggml-hip.so", "libggml-vulkan.so"} {
			if _, err := os.Stat(filepath.Join(d, name)); err == nil {
				out = append(out, filepath.Join(d, name))
			}
		}
	}
	return out
}
