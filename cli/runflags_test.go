package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/config"
)

// parseRoot parses args as the root command does.
func parseRoot(t *testing.T, args ...string) (*rootFlags, *cobra.Command) {
	t.Helper()
	s := &rootFlags{}
	cmd := &cobra.Command{Use: "evomerge-tui"}
	s.register(cmd)
	if err := cmd.Flags().Parse(args); err != nil {
		t.Fatal(err)
	}
	return s, cmd
}

// TestRunFlagsWithoutRun: a run's flags given without --run apply to the
// workbench's run (the configuration it opens with), or fail naming the
// flag; none is ignored.
func TestRunFlagsWithoutRun(t *testing.T) {
	dir := t.TempDir()
	m := filepath.Join(dir, "mine.gguf")
	for _, tc := range []struct {
		args []string
		err  string // "" = accepted
	}{
		{args: []string{"--headless"}, err: "--headless applies to --run"},
		{args: []string{"--resume", dir}, err: "--resume continues a run: give --run --resume " + dir},
		{args: []string{"--evaluate", m, "--population", "3"}, err: "--population applies to a tournament (--run, or the workbench without an action), not to --evaluate"},
		{args: []string{"--evaluate", m, "--model1", m}, err: "--model1 applies to a tournament"},
		{args: []string{"--generate", m, "--output", dir}, err: "--output applies to a tournament (--run, or the workbench without an action), not to --generate"},
		{args: []string{"--generate", m, "--headless"}, err: "--headless applies to a tournament"},
		{args: []string{"--generate-config", "--workers", "2"}, err: "--workers applies to a tournament (--run, or the workbench without an action), not to --generate-config"},
		{args: []string{"--generate-config", "--evolution-seed", "2"}, err: "--evolution-seed applies"},
		{args: []string{"--generate-config", "--config", filepath.Join(dir, "x.toml")}},
		{args: []string{"--evaluate", m, "--workers", "2", "--threads", "3", "--gpu-layers", "0"}},
		{args: []string{"--run", "--headless", "--population", "4"}},
		{args: []string{"--population", "6", "--model1", m, "--workers", "2"}},
	} {
		s, cmd := parseRoot(t, tc.args...)
		err := s.checkFlags(cmd.Flags())
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%q: %v", tc.args, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%q: err %v, want %q", tc.args, err, tc.err)
		}
	}

	// The workbench opens with the flags applied (workbench() loads exactly this).
	s, cmd := parseRoot(t, "--population", "6", "--generations", "3", "--optimizer", "random", "--evolution-seed", "9",
		"--model1", m, "--base", "acme/base-GGUF:Q8_0", "--output", dir, "--workers", "2", "--threads", "3", "--gpu-layers", "0")
	cfg, err := s.runOpts.loadConfig(cmd.Flags(), s.hw)
	if err != nil {
		t.Fatal(err)
	}
	e := cfg.Evolution
	if e.Population != 6 || e.Generations != 3 || e.Optimizer != "random" || e.Seed != 9 || cfg.Output.Dir != dir {
		t.Errorf("evolution %+v, output %s", e, cfg.Output.Dir)
	}
	if h := cfg.Hardware; h.Workers != 2 || h.Threads != 3 || h.GPULayers != "0" {
		t.Errorf("hardware %+v", h)
	}
	want := []config.Model{
		{Name: "mine", Path: m},
		{Name: "moby", Path: "zoo:moby", Fill: true},
		{Name: "sotu", Path: "zoo:sotu", Fill: true},
		{Name: "base-GGUF-Q8_0", HF: "acme/base-GGUF:Q8_0"},
	}
	if len(cfg.Models) != len(want) || cfg.Merge.Base != "base-GGUF-Q8_0" {
		t.Fatalf("models %+v, base %q", cfg.Models, cfg.Merge.Base)
	}
	for i := range want {
		if cfg.Models[i] != want[i] {
			t.Errorf("model %d: %+v, want %+v", i, cfg.Models[i], want[i])
		}
	}
}

// TestBaseFlag: --base names one of the models, or takes the base's place
// with a model of its own; it is not a filler.
func TestBaseFlag(t *testing.T) {
	s, cmd := parseRoot(t, "--base", "moby")
	cfg, err := s.runOpts.loadConfig(cmd.Flags(), s.hw)
	if err != nil || cfg.Merge.Base != "moby" || cfg.Models[1].Fill || len(cfg.Models) != 4 {
		t.Fatalf("--base moby: %v, base %q, models %+v", err, cfg.Merge.Base, cfg.Models)
	}
	s, cmd = parseRoot(t, "--base", "./stories15M.gguf", "--model3", "gpt2")
	cfg, err = s.runOpts.loadConfig(cmd.Flags(), s.hw)
	if err != nil {
		t.Fatal(err)
	}
	// The base's name is taken by the zoo's base, whose place it takes: the
	// name stays free.
	if cfg.Merge.Base != "stories15M" || cfg.Models[3] != (config.Model{Name: "stories15M", Path: "./stories15M.gguf"}) ||
		cfg.Models[2] != (config.Model{Name: "gpt2", HF: "gpt2"}) {
		t.Errorf("base %q, models %+v", cfg.Merge.Base, cfg.Models)
	}
}

// TestResumeKeepsHardwareFlags: --resume runs the recorded run on the
// hardware the flags give; flags that would change the run are refused.
func TestResumeKeepsHardwareFlags(t *testing.T) {
	dir := t.TempDir()
	c := config.Default()
	c.Hardware.Workers, c.Hardware.Threads = 1, 1
	raw, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.toml"), raw, 0o644); err != nil {
		t.Fatal(err)
	}
	s, cmd := parseRoot(t, "--run", "--resume", dir, "--workers", "3", "--threads", "6", "--gpu-layers", "12")
	cfg, err := s.runOpts.loadConfig(cmd.Flags(), s.hw)
	if err != nil {
		t.Fatal(err)
	}
	if h := cfg.Hardware; h.Workers != 3 || h.Threads != 6 || h.GPULayers != "12" || cfg.Output.Dir != dir {
		t.Errorf("hardware %+v, output %s", h, cfg.Output.Dir)
	}
	for _, flag := range []string{"--population=5", "--model1=x.gguf", "--base=x.gguf", "--output=elsewhere", "--config=c.toml"} {
		s, cmd := parseRoot(t, "--run", "--resume", dir, flag)
		name, _, _ := strings.Cut(flag, "=")
		if _, err := s.runOpts.loadConfig(cmd.Flags(), s.hw); err == nil || !strings.HasPrefix(err.Error(), name+" cannot change the run --resume continues") {
			t.Errorf("%s: %v", flag, err)
		}
	}
}
