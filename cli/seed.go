package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

// seedFlags are the root-level flags of the original specification.
type seedFlags struct {
	run            bool
	evaluate       string
	generate       string
	generateConfig bool
}

func (s *seedFlags) register(cmd *cobra.Command) {
	f := cmd.Flags()
	f.BoolVar(&s.run, "run", false, "run an evolutionary tournament (live TUI on a terminal, progress lines when headless)")
	f.StringVar(&s.evaluate, "evaluate", "", "evaluate MODEL (perplexity, coherence, tasks)")
	f.StringVar(&s.generate, "generate", "", "generate text with MODEL from --prompt")
	f.BoolVar(&s.generateConfig, "generate-config", false, "create a configuration file with interactive forms")
}

func (s *seedFlags) subcommands() []*cobra.Command { return nil }

func (s *seedFlags) dispatch(cmd *cobra.Command) error {
	return fmt.Errorf("the workbench is not available in this build yet")
}
