package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
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
	var rows []Row
	for _, typ := range []gguf.Type{gguf.TypeF16, gguf.TypeQ8_0} {
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
		st, _ := os.Stat(paths[0])
		largest := uint64(0)
		for _, t := range shape.Tensors() {
			t.Type = typ
			if len(t.Shape) == 1 {
				t.Type = gguf.TypeF32
			}
			largest = max(largest, t.Bytes())
		}
		o.logf("%s: 4 generated models of %.0f MB (%d layers, largest tensor %.0f MB)", typ, float64(st.Size())/1e6, shape.Layers, float64(largest)/1e6)

		recipes := []struct {
			method string
			inputs []string
			toml   string
		}{
			{"linear", paths[1:], fmt.Sprintf("merge_method = \"linear\"\n%s", models(paths[1:], "weight = 1.0"))},
			{"ties", paths, fmt.Sprintf("merge_method = \"ties\"\nbase_model = %q\n%s", paths[0], models(paths[1:], "weight = 0.5\ndensity = 0.5"))},
		}
		for _, rc := range recipes {
			floor, err := ioFloor(rc.inputs, filepath.Join(dir, "floor.gguf"))
			if err != nil {
				return nil, err
			}
			in := inputBytes(rc.inputs)
			recipe := filepath.Join(dir, rc.method+".toml")
			if err := os.WriteFile(recipe, []byte(rc.toml), 0o644); err != nil {
				return nil, err
			}
			out := filepath.Join(dir, "merged.gguf")
			wall, rss, err := runChild(ctx, o, o.Exe, "merge", recipe, "-o", out, "--workers", strconv.Itoa(o.Threads))
			if err != nil {
				return nil, fmt.Errorf("%s %s: %w", rc.method, typ, err)
			}
			os.Remove(out)
			gbps := float64(in) / 1e9 / wall.Seconds()
			floorGBps := float64(in) / 1e9 / floor.Seconds()
			name := fmt.Sprintf("%s %s, %d inputs", rc.method, typ, len(rc.inputs))
			o.logf("%s: %.2f GB/s (I/O floor %.2f GB/s), peak RSS %.0f MB", name, gbps, floorGBps, float64(rss)/1e6)
			rows = append(rows,
				ratioRow("merge", name, gbps, "GB/s of input", floorGBps, "GB/s I/O floor", fmt.Sprintf("%.2f GB in %.2fs", float64(in)/1e9, wall.Seconds())),
				Row{Group: "merge", Name: name + ": peak RSS", Value: float64(rss) / 1e6, Unit: "MB",
					Note: fmt.Sprintf("inputs %.0f MB, largest tensor %.0f MB (f32: %.0f MB), %d workers", float64(in)/1e6, float64(largest)/1e6, float64(shape.Dim*shape.Vocab*4)/1e6, o.Threads)})
		}
		for _, p := range paths {
			os.Remove(p)
		}
	}
	return rows, nil
}

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

// ioFloor reads every tensor of every input and writes the first input's
// tensors to out: a merge's I/O with no arithmetic, tensor by tensor.
func ioFloor(inputs []string, out string) (time.Duration, error) {
	start := time.Now()
	var files []*gguf.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
		os.Remove(out)
	}()
	for _, p := range inputs {
		f, err := gguf.Open(p)
		if err != nil {
			return 0, err
		}
		files = append(files, f)
	}
	fw, err := gguf.Create(out, files[0].Header)
	if err != nil {
		return 0, err
	}
	defer fw.Abort()
	bufs := make([][]byte, len(files))
	for _, t := range files[0].Tensors {
		for i, f := range files {
			ti, _ := f.Tensor(t.Name)
			if bufs[i], err = f.ReadTensor(ti, bufs[i]); err != nil {
				return 0, err
			}
		}
		if err := fw.WriteTensor(t.Name, bufs[0]); err != nil {
			return 0, err
		}
	}
	if err := fw.Commit(); err != nil {
		return 0, err
	}
	return time.Since(start), nil
}

// runChild runs this executable with args and returns its wall time and
// peak resident memory.
func runChild(ctx context.Context, o *Options, exe string, args ...string) (time.Duration, int64, error) {
	cmd := exec.CommandContext(ctx, exe, append(args, "--log-file", "")...)
	cmd.Env = append(os.Environ(), o.Env...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%v: %s", err, lastLines(stderr.String(), 3))
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024 // kilobytes on Linux
	}
	return wall, rss, nil
}

func lastLines(s string, n int) string {
	lines := bytes.Split(bytes.TrimSpace([]byte(s)), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte(" | ")))
}
