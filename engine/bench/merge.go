package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/llm"
	"github.com/evomerge/evomerge/engine/merge"
)

// benchShape sizes the generated models: llama-like blocks of width 1024
// with a 32000-token embedding (65 MB in F16, the largest tensor), and as
// many blocks as fit ModelMB in F16 — so a model is many times larger than
// any one tensor, which is what streaming is about.
func benchShape(modelMB int) synth.Model {
	const dim, ffn, vocab = 1024, 2816, 32000
	perLayer := 2*dim*dim + 2*dim*ffn + 2*dim
	embed := dim * vocab
	layers := max(1, (modelMB<<20/2-embed-dim)/perLayer)
	return synth.Model{Layers: layers, Dim: dim, FFN: ffn, Vocab: vocab}
}

func mergeBench(ctx context.Context, o *Options) ([]Row, error) {
	if o.Exe == "" {
		return nil, fmt.Errorf("the merge benchmarks need the evomerge-tui executable")
	}
	dir, err := os.MkdirTemp(o.Dir, "evomerge-bench-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	mem := memoryBandwidth(o.Threads, memBandwidthBytes)
	o.logf("memory bandwidth: %.1f GB/s (read + write, %d threads)", mem, o.Threads)
	rows := []Row{{Group: "merge", Name: "memory bandwidth (copy, read + write)", Value: mem, Unit: "GB/s",
		Note: fmt.Sprintf("%d threads over 2 × %d MiB", o.Threads, memBandwidthBytes>>20)}}
	for _, typ := range []gguf.Type{gguf.TypeF16, gguf.TypeQ8_0} {
		paths, err := writeModels(o, dir, typ)
		if err != nil {
			return nil, err
		}
		rs, err := childMerges(ctx, o, dir, typ, paths, mem)
		if err != nil {
			return nil, err
		}
		rows = append(rows, rs...)
		// A tournament's next candidate: TIES from the same sources with
		// other densities, in this process, after one execution filled the
		// source cache (magnitude profiles).
		fl, err := ioFloor(ctx, paths, tensorBytes(paths[1]), dir, o.Threads)
		if err != nil {
			return nil, err
		}
		wall, cpu, err := nextCandidate(ctx, o, paths, filepath.Join(dir, "next.gguf"))
		if err != nil {
			return nil, fmt.Errorf("ties %s, next candidate: %w", typ, err)
		}
		rows = append(rows, floorRows(o, fmt.Sprintf("ties %s, 4 inputs, next candidate", typ), inputBytes(paths), tensorBytes(paths[1]), wall, cpu, fl, mem)...)
		for _, p := range paths {
			os.Remove(p)
		}
	}
	return rows, nil
}

// writeModels generates the four models (a base and three) of one type.
func writeModels(o *Options, dir string, typ gguf.Type) ([]string, error) {
	shape := benchShape(o.ModelMB)
	shape.Type = typ
	var paths []string
	for i, name := range []string{"base", "a", "b", "c"} {
		m := shape
		m.Seed = uint64(i + 1)
		p := filepath.Join(dir, fmt.Sprintf("%s-%s.gguf", name, typ))
		if err := m.Write(p, name); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	st, err := os.Stat(paths[0])
	if err != nil {
		return nil, err
	}
	o.logf("%s: 4 generated models of %.0f MB (%d layers, largest tensor %.0f MB)", typ, float64(st.Size())/1e6, shape.Layers, float64(largestTensor(shape))/1e6)
	return paths, nil
}

func largestTensor(shape synth.Model) uint64 {
	largest := uint64(0)
	for _, t := range shape.Tensors() {
		t.Type = shape.Type
		if len(t.Shape) == 1 {
			t.Type = gguf.TypeF32
		}
		largest = max(largest, t.Bytes())
	}
	return largest
}

// childMerges runs linear (3 models) and TIES (a base and 3) as `merge`
// child processes, each after its I/O floor.
func childMerges(ctx context.Context, o *Options, dir string, typ gguf.Type, paths []string, mem float64) ([]Row, error) {
	shape := benchShape(o.ModelMB)
	shape.Type = typ
	recipes := []struct {
		method string
		inputs []string
		toml   string
	}{
		{"linear", paths[1:], fmt.Sprintf("merge_method = \"linear\"\n%s", models(paths[1:], "weight = 1.0"))},
		{"ties", paths, fmt.Sprintf("merge_method = \"ties\"\nbase_model = %q\n%s", paths[0], models(paths[1:], "weight = 0.5\ndensity = 0.5"))},
	}
	var rows []Row
	for _, rc := range recipes {
		in, out := inputBytes(rc.inputs), tensorBytes(paths[1])
		fl, err := ioFloor(ctx, rc.inputs, out, dir, o.Threads)
		if err != nil {
			return nil, err
		}
		recipe := filepath.Join(dir, rc.method+".toml")
		if err := os.WriteFile(recipe, []byte(rc.toml), 0o644); err != nil {
			return nil, err
		}
		outPath := filepath.Join(dir, "merged.gguf")
		run, err := runChild(ctx, o, o.Exe, "merge", recipe, "-o", outPath, "--threads", strconv.Itoa(o.Threads))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", rc.method, typ, err)
		}
		os.Remove(outPath)
		name := fmt.Sprintf("%s %s, %d inputs", rc.method, typ, len(rc.inputs))
		rows = append(rows, floorRows(o, name, in, out, run.wall, run.cpu, fl, mem)...)
		rows = append(rows, Row{Group: "merge", Name: name + ": peak RSS", Value: float64(run.rss) / 1e6, Unit: "MB",
			Note: fmt.Sprintf("inputs %.0f MB, largest tensor %.0f MB (f32: %.0f MB), %d threads", float64(in)/1e6,
				float64(largestTensor(shape))/1e6, float64(shape.Dim*shape.Vocab*4)/1e6, o.Threads)})
	}
	return rows, nil
}

// floorRows reports a merge of in bytes of input into out bytes in wall
// time (cpu: its CPU time, user and system) against the I/O floor and the
// memory bandwidth. The CPU times show what a merge costs when the
// machine is shared and wall times stretch.
func floorRows(o *Options, name string, in, out int64, wall, cpu time.Duration, fl floor, mem float64) []Row {
	gbps := float64(in) / 1e9 / wall.Seconds()
	moved := float64(in+out) / 1e9 / wall.Seconds()
	o.logf("%s: %.2f GB/s (I/O floor %.2f GB/s: reads %.2f GB/s, write+sync %.2f GB/s), %.2f GB/s of input and output", name, gbps,
		fl.InputsGBps, fl.ReadGBps, fl.WriteGBps, moved)
	return []Row{
		ratioRow("merge", name, gbps, "GB/s of input", fl.InputsGBps, "GB/s I/O floor",
			fmt.Sprintf("%.2f GB in %.2fs (cpu %.1fs); floor %.2fs (cpu %.1fs): reads %.2fs, write+sync %.2fs", float64(in)/1e9, wall.Seconds(), cpu.Seconds(),
				fl.Total.Seconds(), fl.CPU.Seconds(), fl.Read.Seconds(), fl.Write.Seconds())),
		ratioRow("merge", name+": memory", moved, "GB/s in+out", mem, "GB/s memory bandwidth", "input and output bytes over the merge's time"),
	}
}

// nextCandidate runs one TIES execution (density 0.5) from paths[0] (the
// base) and the others with a source cache, then times a second with other
// densities, writing out like the merge command.
func nextCandidate(ctx context.Context, o *Options, paths []string, out string) (wall, cpu time.Duration, err error) {
	recipe := func(density float64) *merge.Recipe {
		r := &merge.Recipe{Method: "ties", Base: paths[0]}
		for i, p := range paths[1:] {
			r.Models = append(r.Models, merge.ModelRef{Model: p, Params: merge.Params{"weight": merge.Scalar(0.5), "density": merge.Scalar(density + 0.01*float64(i))}})
		}
		return r
	}
	sources := merge.NewSourceCache(0)
	opt := merge.ExecOptions{Codec: llm.Codec{}, Threads: o.Threads, Sources: sources}
	if _, _, err := merge.Run(ctx, recipe(0.5), out, llm.Codec{}, opt); err != nil {
		return 0, 0, err
	}
	os.Remove(out)
	start, cpu0 := time.Now(), processCPU()
	_, _, err = merge.Run(ctx, recipe(0.3), out, llm.Codec{}, opt)
	wall, cpu = time.Since(start), processCPU()-cpu0
	os.Remove(out)
	return wall, cpu, err
}

// tensorBytes is the size of a model's tensor data (a merge's output).
func tensorBytes(path string) int64 { return inputBytes([]string{path}) }

func models(paths []string, params string) string {
	var b bytes.Buffer
	for _, p := range paths {
		fmt.Fprintf(&b, "[[models]]\nmodel = %q\n[models.parameters]\n%s\n", p, params)
	}
	return b.String()
}

func inputBytes(paths []string) int64 {
	var n int64
	for _, p := range paths {
		if f, err := gguf.Open(p); err == nil {
			for _, t := range f.Tensors {
				n += int64(t.Bytes())
			}
			f.Close()
		}
	}
	return n
}

// runChild runs this executable with args and returns its wall time and
// peak resident memory.
//
// Linux starts a child's peak RSS (ru_maxrss) at the peak of the memory
// its exec replaces, which with Go's vfork-style spawning is this
// process's: generating a model's 131 MB embedding here would floor every
// child's figure. So this process first returns its free memory and resets
// its own peak to its current RSS (/proc/self/clear_refs, "5"; elsewhere
// the reset is skipped and the figure is an upper bound).
// childRun is what runChild measures.
type childRun struct {
	wall, cpu time.Duration
	rss       int64 // peak, bytes
}

func runChild(ctx context.Context, o *Options, exe string, args ...string) (childRun, error) {
	debug.FreeOSMemory()
	_ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0)
	cmd := exec.CommandContext(ctx, exe, append(args, "--log-file", "")...)
	cmd.Env = append(os.Environ(), o.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	r := childRun{wall: time.Since(start)}
	if err != nil {
		return r, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 3))
	}
	r.cpu = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.rss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return r, nil
}

// processCPU is this process's CPU time so far, user and system.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
