// Package cli maps the command line onto the engine and the TUI. The root
// flags (--run, --evaluate, --generate, --prompt, --generate-config,
// --model1..3, --base; rootflags.go) work on the root command; each action
// also has a subcommand spelling (evomerge-tui run, evaluate, ...). A
// run's flags given without --run set up the workbench's run, or fail
// naming the flag when they cannot (rootFlags.checkFlags); none is ignored.
//
// Files are named for what they hold: rootflags.go the root command's
// action flags, run.go a run's flags (where --model1..3 and --base go in
// the configuration) and the headless printer, hardware.go the hardware
// flags and the worker processes' environment, resolve.go model
// references, workbench.go the terminal workbench and its backend
// (tui.Backend over the real engine). What a run merges is decided by
// package modelset, for every front end alike.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Main runs the command line and returns the process exit code.
func Main(args []string) int { return run(args, os.Stdin, os.Stdout, os.Stderr) }

// run is Main with its streams (tests capture them).
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	if err := root.ExecuteContext(ctx); err != nil {
		if errors.Is(err, context.Canceled) {
			fmt.Fprintln(stderr, "evomerge-tui: interrupted")
			return 130
		}
		fmt.Fprintln(stderr, "evomerge-tui:", err)
		return 1
	}
	return 0
}

// globals are the flags every command accepts.
type globals struct {
	logLevel string
	logFile  string
}

func newRoot() *cobra.Command {
	g := &globals{}
	flags := &rootFlags{}
	root := &cobra.Command{
		Use:   "evomerge-tui",
		Short: "Merge GGUF language models and evolve the merge recipe",
		Long: `evomerge-tui merges language models stored as GGUF files and evolves the merge
recipe with tournament selection, evaluating candidates through llama.cpp.

Without arguments it opens the terminal workbench.

` + techniquesHelp(),
		SilenceUsage:  true,
		SilenceErrors: true,
		Args:          cobra.NoArgs,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return g.setupLogging(cmd)
		},
		RunE: func(cmd *cobra.Command, _ []string) error { return flags.dispatch(cmd) },
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	root.PersistentFlags().StringVar(&g.logFile, "log-file", defaultLogFile(), "log file (rotated at 10 MB, 3 kept); empty disables it")
	flags.register(root)
	root.AddCommand(
		newInspectCmd(),
		newImportCmd(),
		newZooCmd(),
		newWorkerCmd(),
		newMergeCmd(),
		newReportCmd(),
		newBenchCmd(),
	)
	for _, c := range flags.subcommands() {
		root.AddCommand(c)
	}
	return root
}
