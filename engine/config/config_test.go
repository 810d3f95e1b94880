package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// TestExampleIsCompleteAndDefault: evomerge.toml.example parses to exactly
// the defaults, and mentions every key of the schema.
func TestExampleIsCompleteAndDefault(t *testing.T) {
	raw, err := os.ReadFile(filepath.Join("..", "..", "evomerge.toml.example"))
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(string(raw))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, Default()) {
		t.Errorf("example differs from the defaults:\n%+v\n%+v", c, Default())
	}
	for _, key := range tomlKeys(reflect.TypeOf(Config{}), "") {
		name := key[strings.LastIndex(key, ".")+1:]
		if !strings.Contains(string(raw), name+" =") && !strings.Contains(string(raw), "["+key+"]") && !strings.Contains(string(raw), "[["+key+"]]") {
			t.Errorf("evomerge.toml.example does not mention %s", key)
		}
	}
}

func tomlKeys(t reflect.Type, prefix string) []string {
	var out []string
	for i := range t.NumField() {
		f := t.Field(i)
		name := strings.Split(f.Tag.Get("toml"), ",")[0]
		if name == "-" {
			continue // not part of the file format
		}
		key := name
		if prefix != "" {
			key = prefix + "." + name
		}
		ft := f.Type
		if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
			out = append(out, key)
			out = append(out, tomlKeys(ft.Elem(), key)...)
			continue
		}
		if ft.Kind() == reflect.Struct {
			out = append(out, key)
			out = append(out, tomlKeys(ft, key)...)
			continue
		}
		out = append(out, key)
	}
	return out
}

func TestDefaultIsValid(t *testing.T) {
	if ps := Default().Validate(); len(ps) != 0 {
		t.Fatalf("defaults invalid: %v", ps.Err())
	}
}

func TestPartialFileKeepsDefaults(t *testing.T) {
	c, err := Parse(`
[evolution]
population = 4
[[models]]
name = "a"
path = "x.gguf"
[[models]]
name = "b"
hf = "org/model:Q8_0"
[merge]
base = ""
techniques = ["linear"]
`)
	if err != nil {
		t.Fatal(err)
	}
	if c.Evolution.Population != 4 || c.Evolution.Generations != Default().Evolution.Generations {
		t.Errorf("evolution %+v", c.Evolution)
	}
	if len(c.Models) != 2 || c.Models[1].Ref() != "org/model:Q8_0" {
		t.Errorf("models %+v (lists must replace the defaults)", c.Models)
	}
}

// TestDefaultsAreTheZoos: the default models are the zoo's, by reference
// (found wherever the zoo is installed, never a path relative to the
// checkout), and fill places only; a file that lists models and no base
// leaves the base to be detected from them, not the zoo's.
func TestDefaultsAreTheZoos(t *testing.T) {
	for _, m := range Default().Models {
		if m.Path != "zoo:"+m.Name || !m.Fill {
			t.Errorf("default model %+v", m)
		}
	}
	c, err := Parse("[[models]]\nname = \"a\"\npath = \"a.gguf\"\n[[models]]\nname = \"b\"\nhf = \"gpt2\"\n")
	if err != nil {
		t.Fatal(err)
	}
	if c.Merge.Base != "" || c.Models[0].Fill || c.Models[1].Fill {
		t.Errorf("base %q, models %+v", c.Merge.Base, c.Models)
	}
	if c, err := Parse("[evolution]\npopulation = 4\n"); err != nil || c.Merge.Base != "stories15M" || len(c.Models) != 4 || !c.Models[0].Fill {
		t.Errorf("without models: base %q, models %+v, %v", c.Merge.Base, c.Models, err)
	}
}

func TestEveryProblemAtOnce(t *testing.T) {
	_, err := Parse(`
colour = "red"
[[models]]
name = "a"
[[models]]
name = "a"
path = "y.gguf"
hf = "org/y"
[merge]
base = "zzz"
techniques = ["ties", "magic"]
layer_groups = 0
out_type = "q9"
[merge.ranges]
density = [0.5, 1.5]
[evolution]
optimizer = "annealing"
population = 1
elitism = 5
mutation_rate = 2
[evolution.extra]
x = 1
[evaluation]
texts = ["/no/such/file.txt"]
context = 3
[evaluation.objectives]
perplexity = 0
[hardware]
gpu_layers = "many"
workers = 0
[ui]
theme = "neon"
`)
	if err == nil {
		t.Fatal("invalid configuration accepted")
	}
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, ErrInvalid) {
		t.Fatalf("not a *config.Error: %T", err)
	}
	for _, want := range []string{
		"colour: unknown key",
		"evolution.extra.x: unknown key",
		"models[0]: give path (a GGUF file) or hf",
		`models[1].name: "a" is used twice`,
		"models[1]: give path or hf, not both",
		`merge.base: "zzz" is not one of the models (a)`,
		`merge.techniques[1]: unknown technique "magic" (allowed: linear`,
		"merge.layer_groups: 0 is outside [1, 64]",
		`merge.out_type: "q9" is not keep or a GGUF type`,
		"merge.ranges.density: [0.5, 1.5] must satisfy 0 ≤ min ≤ max ≤ 1",
		`evolution.optimizer: "annealing" is not one of auto, gradient, es, ga, cmaes, nsga2, random`,
		"evolution.population: 1 is outside [2, 10000]",
		"evolution.elitism: 5 is outside [0, 0]",
		"evolution.mutation_rate: 2 is outside [0, 1]",
		"evaluation.texts[0]: stat /no/such/file.txt: no such file or directory",
		"evaluation.context: 3 is outside [16, 1048576]",
		"evaluation.objectives: at least one objective needs a positive weight",
		`hardware.gpu_layers: "many": use auto or a number`,
		"hardware.workers: 0 leaves evaluation to joined workers: set distributed.listen or distributed.server",
		`ui.theme: "neon" is not one of dark, light, high-contrast`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q", want)
		}
	}
	if len(ce.Problems) < 20 {
		t.Errorf("only %d problems reported:\n%v", len(ce.Problems), err)
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	c := Default()
	c.Evolution.Optimizer = "nsga2"
	c.Evaluation.Objectives.Coherence = 0.5
	raw, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	back, err := Parse(string(raw))
	if err != nil {
		t.Fatalf("%v\n%s", err, raw)
	}
	// A written configuration lists its models: they are no longer the
	// defaults that fill the user's gaps.
	for i := range c.Models {
		c.Models[i].Fill = false
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip differs:\n%s", raw)
	}
}

// TestDistributed: the [distributed] section's rules — a listener needs a
// token, listen and server exclude each other, TLS needs both files and a
// listener, and workers = 0 needs somebody else to evaluate.
func TestDistributed(t *testing.T) {
	dir := t.TempDir()
	cert := filepath.Join(dir, "cert.pem")
	if err := os.WriteFile(cert, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		text string
		want []string // problems; none: valid
	}{
		{"default", "", nil},
		{"listen with token", "[distributed]\nlisten = \"127.0.0.1:4222\"\ntoken = \"s3cret\"\n[hardware]\nworkers = 0\n", nil},
		{"server", "[distributed]\nserver = \"nats://tok@10.0.0.1:4222\"\n", nil},
		{"listen without token", "[distributed]\nlisten = \"0.0.0.0:4222\"\n",
			[]string{"distributed.token: a listener needs a token"}},
		{"bad listen", "[distributed]\nlisten = \"4222\"\ntoken = \"t\"\n",
			[]string{`distributed.listen: "4222" is not HOST:PORT`}},
		{"listen without host", "[distributed]\nlisten = \":4222\"\ntoken = \"t\"\n",
			[]string{`distributed.listen: ":4222" has no host`}},
		{"both", "[distributed]\nlisten = \"127.0.0.1:1\"\ntoken = \"t\"\nserver = \"nats://h:1\"\n",
			[]string{"distributed.server: give listen (embedded server) or server (an existing one), not both"}},
		{"bad scheme", "[distributed]\nserver = \"http://h:1\"\n",
			[]string{`distributed.server: "http://h:1": the scheme must be nats:// or tls://`}},
		{"half tls", "[distributed]\nlisten = \"127.0.0.1:1\"\ntoken = \"t\"\ntls_cert = \"" + cert + "\"\n",
			[]string{"distributed.tls_cert: tls_cert and tls_key go together"}},
		{"tls without listener", "[distributed]\ntls_cert = \"" + cert + "\"\ntls_key = \"" + cert + "\"\n",
			[]string{"distributed.tls_cert: TLS is for the listener", "distributed.tls_key: TLS is for the listener"}},
		{"limits", "[distributed]\nack_wait_seconds = 0\nmax_deliver = 0\nshare_max_mb = -1\n",
			[]string{"distributed.ack_wait_seconds: 0 is outside [1, 3600]", "distributed.max_deliver: 0 is outside [1, 100]",
				"distributed.share_max_mb: -1 is outside"}},
		{"nobody evaluates", "[hardware]\nworkers = 0\n",
			[]string{"hardware.workers: 0 leaves evaluation to joined workers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse(tc.text)
			if len(tc.want) == 0 {
				if err != nil {
					t.Fatalf("rejected: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) != len(tc.want) {
				t.Errorf("want %d problems, got: %v", len(tc.want), err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
		})
	}
}

// TestVerdictExamples: the configurations README compares the defaults
// with (docs/examples/verdict) load and are valid.
func TestVerdictExamples(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("..", "..", "docs", "examples", "verdict", "*.toml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no example configurations: %v", err)
	}
	for _, f := range files {
		c, err := Load(f)
		if err != nil {
			t.Errorf("%s: %v", f, err)
			continue
		}
		if ps := c.Validate(); len(ps) > 0 {
			t.Errorf("%s: %v", f, ps.Err())
		}
	}
}

// TestScoreFrom: evaluation.score_from is 0 (context/2) or a position
// that leaves at least one token to score in a window of context tokens.
func TestScoreFrom(t *testing.T) {
	for _, tc := range []struct {
		from int
		ok   bool
	}{{0, true}, {1, true}, {32, true}, {254, true}, {-1, false}, {255, false}, {1000, false}} {
		_, err := Parse(fmt.Sprintf("[evaluation]\ncontext = 256\nscore_from = %d\n", tc.from))
		if tc.ok != (err == nil) {
			t.Errorf("score_from = %d: %v", tc.from, err)
		}
		if err != nil && !strings.Contains(err.Error(), fmt.Sprintf("evaluation.score_from: %d is outside [1, 254]", tc.from)) {
			t.Errorf("score_from = %d: %v", tc.from, err)
		}
	}
}

// TestGradientObjectives: the gradient optimizer follows perplexity alone,
// so naming it with another objective weighted is a configuration error;
// auto (which then runs ES) is not.
func TestGradientObjectives(t *testing.T) {
	for _, c := range []struct {
		optimizer string
		coherence float64
		ok        bool
	}{
		{"gradient", 0, true},
		{"gradient", 0.5, false},
		{"auto", 0.5, true},
	} {
		cfg := Default()
		cfg.Evolution.Optimizer, cfg.Evaluation.Objectives.Coherence = c.optimizer, c.coherence
		err := cfg.Validate().Err()
		if ok := err == nil; ok != c.ok || (!ok && !strings.Contains(err.Error(), "evolution.optimizer: gradient follows the gradient of perplexity alone")) {
			t.Errorf("optimizer %s, coherence %g: %v", c.optimizer, c.coherence, err)
		}
	}
}
