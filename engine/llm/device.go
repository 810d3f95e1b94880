package llm

/*
#include <stddef.h>

struct ggml_backend_device;
typedef struct ggml_backend_device * ggml_backend_dev_t;
size_t             ggml_backend_dev_count(void);
ggml_backend_dev_t ggml_backend_dev_get(size_t index);
const char *       ggml_backend_dev_name(ggml_backend_dev_t device);
const char *       ggml_backend_dev_description(ggml_backend_dev_t device);
void               ggml_backend_dev_memory(ggml_backend_dev_t device, size_t * free, size_t * total);
int                ggml_backend_dev_type(ggml_backend_dev_t device); // enum ggml_backend_dev_type
*/
import "C"

import "strings"

// DeviceType is ggml's device class.
type DeviceType string

// Device types, as ggml_backend_dev_type names them.
const (
	DeviceCPU   DeviceType = "cpu"   // the host CPU
	DeviceGPU   DeviceType = "gpu"   // a discrete GPU with its own memory
	DeviceIGPU  DeviceType = "igpu"  // an integrated GPU sharing host memory
	DeviceAccel DeviceType = "accel" // an accelerator used beside the CPU (BLAS, AMX)
)

// Device is one compute device of the loaded ggml backends.
type Device struct {
	Name        string     // ggml's name: "CPU", "CUDA0", "Metal"
	Description string     // the model: "NVIDIA H100 80GB HBM3", the CPU's brand string
	Type        DeviceType //
	MemoryTotal uint64     // bytes (host memory for the CPU)
	MemoryFree  uint64     // bytes free when asked
}

// IsGPU reports whether llama.cpp offloads layers to the device.
func (d Device) IsGPU() bool { return d.Type == DeviceGPU || d.Type == DeviceIGPU }

// Library is the backend family of a GPU: the device name without its
// index ("CUDA0" → "CUDA").
func (d Device) Library() string { return strings.TrimRight(d.Name, "0123456789") }

// Devices lists every device of the loaded backends (ggml's enumeration:
// the CPU, then GPUs of backends found under OLLAMA_LIBRARY_PATH or
// <exe>/../lib/ollama, then accelerators).
func Devices() []Device {
	Init()
	var out []Device
	for i := range C.ggml_backend_dev_count() {
		d := C.ggml_backend_dev_get(i)
		var free, total C.size_t
		C.ggml_backend_dev_memory(d, &free, &total)
		dev := Device{
			Name:        C.GoString(C.ggml_backend_dev_name(d)),
			Description: strings.TrimSpace(C.GoString(C.ggml_backend_dev_description(d))),
			MemoryTotal: uint64(total),
			MemoryFree:  uint64(free),
		}
		switch C.ggml_backend_dev_type(d) {
		case 0:
			dev.Type = DeviceCPU
		case 1:
			dev.Type = DeviceGPU
		case 2:
			dev.Type = DeviceIGPU
		default:
			dev.Type = DeviceAccel
		}
		out = append(out, dev)
	}
	return out
}

// GPUs lists the GPU devices of the loaded backends: the devices layers
// can be offloaded to.
func GPUs() []Device {
	var out []Device
	for _, d := range Devices() {
		if d.IsGPU() {
			out = append(out, d)
		}
	}
	return out
}
