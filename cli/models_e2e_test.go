package cli

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/gguf/synth"
	"github.com/evomerge/evomerge/engine/hub/hubtest"
	"github.com/evomerge/evomerge/zoo"
)

// serveHub starts the local fake hub and points this process's resolver
// at it (HF_ENDPOINT) with an empty cache.
func serveHub(t *testing.T) *hubtest.Hub {
	t.Helper()
	h := hubtest.New(t)
	t.Setenv("HF_ENDPOINT", h.URL())
	t.Setenv("HF_HUB_CACHE", filepath.Join(t.TempDir(), "hub"))
	t.Setenv("HF_TOKEN", "")
	t.Setenv("HF_HUB_OFFLINE", "")
	return h
}

func readBytes(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// smallRunConfig is a configuration without models (the zoo's defaults
// fill what the flags leave) and a tournament small enough for a test.
func smallRunConfig(t *testing.T) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "small.toml")
	cfg := `[merge]
techniques = ["linear", "ties"]
layer_groups = 1
[evolution]
population = 3
generations = 1
tournament_size = 2
elitism = 1
patience = 0
[evaluation]
texts = ["zoo:moby/validation"]
test_texts = ["zoo:moby/test"]
context = 128
chunks = 1
test_chunks = 1
`
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestRunSourcesFromTheHub: a headless run whose sources come from the
// local fake hub by id — an org/name repository and a legacy id without an
// organisation (which the hub redirects) — and from the zoo by reference;
// the zoo's base fits them and fills the base's place.
func TestRunSourcesFromTheHub(t *testing.T) {
	requireZoo(t)
	h := serveHub(t)
	h.AddRepo("acme/moby-GGUF", map[string][]byte{"moby-F16.gguf": readBytes(t, zoo.Model("moby")), "README.md": []byte("moby")})
	h.AddRepo("acme/bible", map[string][]byte{"bible-F16.gguf": readBytes(t, zoo.Model("bible"))})
	h.Move("bible-legacy", "acme/bible")
	out := filepath.Join(t.TempDir(), "run")
	code, stdout, stderr := runCLI(t, "--run", "--headless", "--config", smallRunConfig(t), "--output", out,
		"--model1", "acme/moby-GGUF", "--model2", "bible-legacy", "--model3", "zoo:sotu", "--threads", "1")
	if code != 0 {
		t.Fatalf("exit %d\n%s\n%s", code, stdout, stderr)
	}
	for _, want := range []string{
		"source moby-GGUF     llama, 6 layers  acme/moby-GGUF → ",
		"source bible-legacy  llama, 6 layers  bible-legacy → ",
		"source sotu          llama, 6 layers  zoo:sotu → " + zoo.Model("sotu"),
		"base   stories15M    llama, 6 layers  zoo:stories15M → ",
		"base stories15M, as given",
		"techniques: linear, ties",
	} {
		if !strings.Contains(stdout, want) {
			t.Errorf("header lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stdout, "dropped") || strings.Contains(stdout, "left out") {
		t.Errorf("nothing should be dropped:\n%s", stdout)
	}
	var redirected bool
	for _, r := range h.Requests() {
		redirected = redirected || strings.HasPrefix(r, "GET /api/models/bible-legacy/revision/main")
	}
	if !redirected {
		t.Errorf("the legacy id was not asked for: %v", h.Requests())
	}
	sum := readSummary(t, out)
	if len(sum.Models) != 4 || sum.Models[0].Ref != "acme/moby-GGUF" || sum.Models[1].Ref != "bible-legacy" || !sum.Models[3].Base {
		t.Errorf("summary models %+v", sum.Models)
	}
	if _, err := gguf.Open(sum.BestModel); err != nil {
		t.Errorf("best.gguf: %v", err)
	}
}

// TestRunBadModels: what is wrong with a model comes back as one line that
// names it, before any evaluation starts.
func TestRunBadModels(t *testing.T) {
	h := serveHub(t)
	h.AddRepo("acme/empty", map[string][]byte{"README.md": []byte("no model here")})
	dir := t.TempDir()
	write := func(name string, m synth.Model) string {
		p := filepath.Join(dir, name+".gguf")
		m.Type = gguf.TypeF32
		if err := m.Write(p, name); err != nil {
			t.Fatal(err)
		}
		return p
	}
	narrow := write("narrow", synth.Model{Layers: 2, Dim: 32})
	wide := write("wide", synth.Model{Layers: 2, Dim: 64})
	qwen := write("qwen", synth.Model{Layers: 2, Dim: 32, Arch: "qwen2"})
	var other []string
	for i := range 40 {
		other = append(other, fmt.Sprintf("x%d", i))
	}
	otherVocab := write("othervocab", synth.Model{Layers: 2, Dim: 32, Tokens: other})
	missing := filepath.Join(dir, "missing.gguf")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing file", []string{"--model1", missing, "--model2", narrow}, fmt.Sprintf("model missing (%s): no such file", missing)},
		{"repo not found", []string{"--model1", "acme/nothing", "--model2", narrow},
			"model nothing (acme/nothing): no such file, and as a Hugging Face reference (repository acme/nothing): acme/nothing: GET " + h.URL() + "/api/models/acme/nothing/revision/main: 404 Not Found (RepoNotFound)"},
		{"explicit reference not found", []string{"--model1", "hf.co/acme/nothing:Q8_0", "--model2", narrow},
			"model nothing-Q8_0 (hf.co/acme/nothing:Q8_0): acme/nothing: GET"},
		{"no gguf in the repository", []string{"--model1", "acme/empty", "--model2", narrow}, "model empty (acme/empty): "},
		{"architectures", []string{"--model1", narrow, "--model2", qwen}, "model qwen is qwen2 and model narrow is llama: models of different architectures cannot be merged"},
		{"shapes", []string{"--model1", narrow, "--model2", wide}, "tensor token_embd.weight is [64 40] in model wide and [32 40] in model narrow: the models differ in shape"},
		{"vocabularies that cannot be aligned", []string{"--model1", narrow, "--model2", otherVocab},
			fmt.Sprintf(`model %s: vocabulary unrelated to %s's (token 0 is "t0" there, "x0" here): different tokenizers cannot be aligned`, otherVocab, narrow)},
		{"one model the zoo does not fit", []string{"--model1", narrow},
			"model narrow (llama, 2 layers, width 32) cannot be merged with the zoo's models (tensor token_embd.weight is [288 32000] in model stories15M and [32 40] in model narrow: the models differ in shape): give the models to merge it with, --model2 (and --model3) and --base"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"--run", "--headless", "--output", filepath.Join(t.TempDir(), "out")}, tc.args...)
			code, stdout, stderr := runCLI(t, args...)
			line := strings.TrimSuffix(stderr, "\n")
			if code != 1 || !strings.Contains(line, tc.want) || strings.Contains(line, "\n") || stdout != "" {
				t.Errorf("exit %d, stderr %q, stdout %q\nwant one line with %q", code, stderr, stdout, tc.want)
			}
		})
	}
}
