package cli

import (
	"fmt"
	"os"
	"slices"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"golang.org/x/term"
)

// rootFlags are the root command's action flags (--run, --evaluate,
// --generate, --generate-config); each action also exists as a subcommand
// with the same flags.
type rootFlags struct {
	run            bool
	evaluate       string
	generate       string
	generateConfig bool
	runOpts        runOptions
	evalOpts       evalOptions
	genOpts        genOptions
	hw             hardwareFlags
}

func (s *rootFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&s.run, "run", false, "run an evolutionary tournament (live TUI on a terminal, progress lines when headless)")
	f.StringVar(&s.evaluate, "evaluate", "", "evaluate MODEL: perplexity, coherence, task accuracy")
	f.StringVar(&s.generate, "generate", "", "generate text with MODEL from --prompt")
	f.BoolVar(&s.generateConfig, "generate-config", false, "create a configuration file with interactive forms")
	s.runOpts.register(cmd)
	s.evalOpts.register(cmd)
	s.genOpts.register(cmd)
	s.hw.register(cmd)
}

// subcommands are the equivalent spellings: run, evaluate, generate,
// generate-config.
func (s *rootFlags) subcommands() []*cobra.Command {
	var ro runOptions
	var rhw hardwareFlags
	run := &cobra.Command{
		Use:   "run",
		Short: "Run an evolutionary tournament (same as --run)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return ro.execute(cmd, rhw) },
	}
	ro.register(run)
	rhw.register(run)

	var eo evalOptions
	var ehw hardwareFlags
	ev := &cobra.Command{
		Use:   "evaluate MODEL",
		Short: "Evaluate a model: perplexity, coherence, task accuracy (same as --evaluate)",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return eo.execute(cmd, args[0], ehw) },
	}
	eo.register(ev)
	ehw.register(ev)

	var gopts genOptions
	var ghw hardwareFlags
	gen := &cobra.Command{
		Use:   "generate MODEL --prompt TEXT",
		Short: "Generate text (same as --generate)",
		Args:  cobra.ExactArgs(1),
		RunE:  func(cmd *cobra.Command, args []string) error { return gopts.execute(cmd, args[0], ghw) },
	}
	gopts.register(gen)
	ghw.register(gen)

	var out string
	gc := &cobra.Command{
		Use:   "generate-config",
		Short: "Create a configuration file with interactive forms (same as --generate-config)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return generateConfig(cmd, out) },
	}
	gc.Flags().StringVarP(&out, "output", "o", "evomerge.toml", "file to write")
	return []*cobra.Command{run, ev, gen, gc}
}

func (s *rootFlags) dispatch(cmd *cobra.Command) error {
	n := 0
	for _, set := range []bool{s.run, s.evaluate != "", s.generate != "", s.generateConfig} {
		if set {
			n++
		}
	}
	if n > 1 {
		return fmt.Errorf("--run, --evaluate, --generate and --generate-config are alternatives: give one")
	}
	if err := s.checkFlags(cmd.Flags()); err != nil {
		return err
	}
	switch {
	case s.run:
		return s.runOpts.execute(cmd, s.hw)
	case s.evaluate != "":
		return s.evalOpts.execute(cmd, s.evaluate, s.hw)
	case s.generate != "":
		return s.genOpts.execute(cmd, s.generate, s.hw)
	case s.generateConfig:
		path := s.runOpts.configPath
		if path == "" {
			path = "evomerge.toml"
		}
		return generateConfig(cmd, path)
	}
	return workbench(cmd, s.runOpts, s.hw)
}

// hardwareFlagNames are the hardware flags (hardwareFlags).
var hardwareFlagNames = []string{"gpu-layers", "threads", "workers"}

// checkFlags refuses a run's flags given to an action they do not apply
// to, naming the flag, rather than ignoring them. Without an action (the
// workbench) the run's settings and the hardware flags apply to the
// workbench's run; --headless and --resume need --run.
func (s *rootFlags) checkFlags(f *pflag.FlagSet) error {
	given := func(names ...string) string {
		for _, name := range names {
			if f.Changed(name) {
				return name
			}
		}
		return ""
	}
	run := append([]string{"headless", "resume"}, runSettings...)
	switch {
	case s.run:
		return nil
	case s.evaluate != "", s.generate != "":
		action := "--evaluate"
		if s.generate != "" {
			action = "--generate"
		}
		if name := given(run...); name != "" {
			return fmt.Errorf("--%s applies to a tournament (--run, or the workbench without an action), not to %s", name, action)
		}
	case s.generateConfig:
		if name := given(append(slices.DeleteFunc(slices.Clone(run), func(n string) bool { return n == "config" }), hardwareFlagNames...)...); name != "" {
			return fmt.Errorf("--%s applies to a tournament (--run, or the workbench without an action), not to --generate-config, which asks for every setting (--config names the file it writes)", name)
		}
	default:
		switch name := given("headless", "resume"); name {
		case "headless":
			return fmt.Errorf("--headless applies to --run (the workbench is the terminal interface): give --run --headless")
		case "resume":
			return fmt.Errorf("--resume continues a run: give --run --resume %s", s.runOpts.resume)
		}
	}
	return nil
}

// isTerminal reports whether stdin and stdout are both terminals.
func isTerminal() bool {
	return term.IsTerminal(int(os.Stdin.Fd())) && term.IsTerminal(int(os.Stdout.Fd()))
}
