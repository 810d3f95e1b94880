package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
)

// runTUI opens the workbench; start begins the tournament at once.
func runTUI(ctx context.Context, cfg config.Config, opt evolve.Options, configPath string, start bool) error {
	return fmt.Errorf("the terminal workbench is not built yet: use --headless")
}

func workbench(cmd *cobra.Command, o runOptions) error {
	return fmt.Errorf("the terminal workbench is not built yet: use --run --headless")
}

func generateConfig(cmd *cobra.Command, path string) error {
	return fmt.Errorf("--generate-config needs the workbench, which is not built yet")
}
