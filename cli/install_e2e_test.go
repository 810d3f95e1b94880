package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/hub/hubtest"
)

// installed is evomerge-tui installed by `make install-files` under a
// fresh PREFIX: this test binary, which doubles as evomerge-tui (see
// TestMain), with the zoo's models beside it.
type installed struct {
	t    *testing.T
	bin  string
	work string   // the working directory, outside the checkout
	env  []string // the environment of every command
}

func install(t *testing.T, hub *hubtest.Hub) *installed {
	t.Helper()
	requireZoo(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	prefix := filepath.Join(t.TempDir(), "prefix")
	out, err := exec.Command("make", "-s", "-C", root, "install-files", "PREFIX="+prefix, "BIN="+os.Args[0]).CombinedOutput()
	if err != nil {
		t.Fatalf("make install-files: %v\n%s", err, out)
	}
	work := t.TempDir()
	return &installed{t: t, bin: filepath.Join(prefix, "bin", "evomerge-tui"), work: work, env: append(os.Environ(),
		"EVOMERGE_CLI_MAIN=1", "EVOMERGE_ZOO=",
		"HF_ENDPOINT="+hub.URL(), "HF_HUB_CACHE="+filepath.Join(work, "hf-cache"), "HF_TOKEN=", "HF_HUB_OFFLINE=",
		"XDG_DATA_HOME="+filepath.Join(work, "data"), "XDG_CACHE_HOME="+filepath.Join(work, "cache"))}
}

// run runs the installed binary in the working directory.
func (in *installed) run(args ...string) (code int, stdout, stderr string) {
	in.t.Helper()
	cmd := exec.Command(in.bin, append(args, "--log-file", "")...)
	cmd.Dir, cmd.Env = in.work, in.env
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode(), o.String(), e.String()
	} else if err != nil {
		in.t.Fatal(err)
	}
	return 0, o.String(), e.String()
}

func (in *installed) write(rel, text string) string {
	in.t.Helper()
	p := filepath.Join(in.work, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		in.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		in.t.Fatal(err)
	}
	return p
}

// TestInstalledBinaryRunsYourModels: from a directory outside the
// checkout, the installed binary runs a tournament over three generated
// Qwen2 fine-tunes — two local files, one a hub id served by the local
// fake hub — with --base; best.gguf loads in llama.cpp. Without --base the
// base the models name in their metadata is fetched from the hub and the
// techniques that cannot run are dropped with the reason. The zoo is
// found next to the installed binary (and left out: it does not fit).
func TestInstalledBinaryRunsYourModels(t *testing.T) {
	hub := hubtest.New(t)
	in := install(t, hub)

	base := synth.Spec{Arch: synth.Qwen2, Seed: 1}
	tune := func(i int) synth.Spec {
		s := base.FineTune(uint64(10+i), 0.1)
		s.BaseModels = []synth.BaseModel{{Name: "Tiny Qwen2", Organization: "acme", RepoURL: "https://huggingface.co/acme/tiny-qwen2"}}
		return s
	}
	gen := func(s synth.Spec, rel, name string) string {
		p := filepath.Join(in.work, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := s.Write(p, name); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gen(base, "models/tiny-qwen2.gguf", "Tiny Qwen2")
	gen(tune(0), "models/qwen-a.gguf", "qwen-a")
	gen(tune(1), "models/qwen-b.gguf", "qwen-b")
	c := gen(tune(2), "served/qwen-c-F16.gguf", "qwen-c")
	hub.AddRepo("acme/qwen-c-GGUF", map[string][]byte{"qwen-c-F16.gguf": readBytes(t, c), "README.md": []byte("# qwen-c")})
	hub.AddRepo("acme/tiny-qwen2", map[string][]byte{"tiny-qwen2-F16.gguf": readBytes(t, filepath.Join(in.work, "models/tiny-qwen2.gguf"))})
	in.write("small.toml", `# a short tournament over tiny models
[merge]
techniques = ["linear", "slerp", "ties", "task_arithmetic", "nuslerp", "frankenmerge", "dfs"]
layer_groups = 2
[evolution]
population = 4
generations = 2
tournament_size = 2
patience = 0
[evaluation]
context = 64
chunks = 1
test_chunks = 1
`)

	code, stdout, stderr := in.run("zoo", "where")
	if want := "* " + filepath.Join(filepath.Dir(filepath.Dir(in.bin)), "share", "evomerge", "zoo") + "\n"; code != 0 || !strings.HasPrefix(stdout, want) {
		t.Fatalf("zoo where: exit %d, want the installed zoo first and used:\n%s%s", code, stdout, stderr)
	}

	// --base, one source by hub id.
	code, stdout, stderr = in.run("--run", "--headless", "--config", "small.toml", "--threads", "1", "--output", "run-base",
		"--model1", "./models/qwen-a.gguf", "--model2", "models/qwen-b.gguf", "--model3", "acme/qwen-c-GGUF", "--base", "models/tiny-qwen2.gguf")
	t.Logf("with --base:\n%s", stdout)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	// --base took the place of the zoo's base, the three models those of
	// its sources: no zoo model is left.
	for _, want := range []string{
		"  source qwen-a       qwen2, 4 layers  ./models/qwen-a.gguf\n",
		"  source qwen-b       qwen2, 4 layers  models/qwen-b.gguf\n",
		"  source qwen-c-GGUF  qwen2, 4 layers  acme/qwen-c-GGUF → " + filepath.Join(in.work, "hf-cache", "models--acme--qwen-c-GGUF", "snapshots"),
		"  base   tiny-qwen2   qwen2, 4 layers  models/tiny-qwen2.gguf\n",
		"base tiny-qwen2, as given\n",
		// optimizer auto: no gradient graph for qwen2, so ES.
		"  [info] optimizer auto: evolution strategy: architecture \"qwen2\": coefficient gradients cover dense llama models\n",
		"evomerge: es on task_arithmetic, population 4, up to 2 generations / 6 evaluations, seed 42\n",
		"techniques: linear, slerp, ties, task_arithmetic, frankenmerge, dfs\n",
		"  dropped nuslerp: merges exactly 2 models besides the base; there are 3\n",
		"generation 1:", "wrote run-base/best.gguf",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if strings.Contains(stdout, "left out") {
		t.Error("a zoo model was considered although every place was given")
	}
	f, err := gguf.Open(filepath.Join(in.work, "run-base", "best.gguf"))
	if err != nil {
		t.Fatalf("best.gguf: %v", err)
	}
	if a := f.Metadata.Architecture(); a != "qwen2" {
		t.Errorf("best.gguf is %q", a)
	}
	f.Close()
	// llama.cpp loads it and scores a text with it.
	code, stdout, stderr = in.run("--evaluate", "run-base/best.gguf", "--json", "--no-coherence", "--ctx", "64", "--chunks", "2", "--threads", "1")
	var rep evalReport
	if code != 0 || json.Unmarshal([]byte(stdout), &rep) != nil || rep.Tokens == 0 || !finite(rep.Perplexity) {
		t.Fatalf("--evaluate best.gguf: exit %d, %+v\n%s%s", code, rep, stdout, stderr)
	}

	// No --base: the base every model names is fetched from the hub; the
	// sources are given as a hf.co reference and a huggingface.co link.
	hub.AddRepo("acme/qwen-b-GGUF", map[string][]byte{"qwen-b-F16.gguf": readBytes(t, filepath.Join(in.work, "models/qwen-b.gguf"))})
	code, stdout, stderr = in.run("--run", "--headless", "--config", "small.toml", "--threads", "1", "--output", "run-detected",
		"--model1", "models/qwen-a.gguf", "--model2", "hf.co/acme/qwen-b-GGUF:F16",
		"--model3", "https://huggingface.co/acme/qwen-c-GGUF/blob/main/qwen-c-F16.gguf")
	t.Logf("base detected:\n%s", stdout)
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"  source qwen-a           qwen2, 4 layers  models/qwen-a.gguf\n",
		"  source qwen-b-GGUF-F16  qwen2, 4 layers  hf.co/acme/qwen-b-GGUF:F16 → ",
		"  source qwen-c-F16       qwen2, 4 layers  https://huggingface.co/acme/qwen-c-GGUF/blob/main/qwen-c-F16.gguf → ",
		"  base   tiny-qwen2       qwen2, 4 layers  acme/tiny-qwen2 → " + filepath.Join(in.work, "hf-cache", "models--acme--tiny-qwen2"),
		"  left out zoo model stories15M: does not fit model qwen-a: model stories15M is llama and model qwen-a is qwen2: models of different architectures cannot be merged\n",
		"base acme/tiny-qwen2: every model names it as its base (general.base_model); fetched as tiny-qwen2\n",
		"wrote run-detected/best.gguf",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	sum := readSummary(t, filepath.Join(in.work, "run-detected"))
	if sum.BaseNote == "" || len(sum.Dropped) != 1 || sum.Dropped[0].Name != "nuslerp" || len(sum.LeftOut) != 1 || fmt.Sprint(sum.Techniques) != "[linear slerp ties task_arithmetic frankenmerge dfs]" {
		t.Errorf("summary: base %q, techniques %v, dropped %+v, left out %+v", sum.BaseNote, sum.Techniques, sum.Dropped, sum.LeftOut)
	}
}
