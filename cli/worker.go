package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/evomerge/evomerge/engine/eval/worker"
)

func newWorkerCmd() *cobra.Command {
	var opt worker.Options
	cmd := &cobra.Command{
		Use:    "worker",
		Short:  "Serve evaluation requests on stdin/stdout (started by the workbench)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			proto, err := protocolStdout()
			if err != nil {
				return err
			}
			return worker.Serve(cmd.Context(), os.Stdin, proto, opt)
		},
	}
	cmd.Flags().IntVar(&opt.Threads, "threads", 0, "CPU threads (default: all)")
	cmd.Flags().IntVar(&opt.GPULayers, "gpu-layers", -1, "layers to offload to a GPU; -1 = all when one is present")
	cmd.Flags().IntVar(&opt.MaxModels, "max-models", 2, "models kept loaded")
	cmd.Flags().BoolVar(&opt.Retire, "retire", false, "exit after each job that used a model (automatic when a GPU backend is loaded)")
	return cmd
}

// protocolStdout moves the protocol to a private copy of stdout and points
// file descriptor 1 at stderr, so nothing llama.cpp prints with printf can
// corrupt the protocol stream.
func protocolStdout() (*os.File, error) {
	fd, err := unix.Dup(1)
	if err != nil {
		return nil, fmt.Errorf("worker: dup stdout: %w", err)
	}
	if err := redirectFD(2, 1); err != nil {
		return nil, fmt.Errorf("worker: redirect stdout: %w", err)
	}
	return os.NewFile(uintptr(fd), "protocol"), nil
}
