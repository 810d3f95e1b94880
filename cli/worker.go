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
	var jf joinFlags
	cmd := &cobra.Command{
		Use:   "worker [--join nats://TOKEN@HOST:PORT [--slots N] [--threads N] [--gpu-layers N]]",
		Short: "Evaluate a coordinator's candidates on this machine (--join); without it, serve the workbench on stdin/stdout",
		Long: `With --join, this machine takes evaluation jobs from a run whose coordinator
listens ([distributed] listen and token in its configuration) or from a NATS
server with JetStream: one worker process per slot (--slots), the run's
sources found at the same path, in the local cache or fetched from the
coordinator, one job per free slot. Without --join it is the evaluation
worker the workbench starts, speaking a protocol on stdin/stdout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if jf.url != "" {
				jf.threads, jf.gpu = opt.Threads, opt.GPULayers
				return join(cmd.Context(), jf)
			}
			proto, err := protocolStdout()
			if err != nil {
				return err
			}
			return worker.Serve(cmd.Context(), os.Stdin, proto, opt)
		},
	}
	cmd.Flags().StringVar(&jf.url, "join", "", "take jobs from the coordinator at nats://TOKEN@HOST:PORT (or tls://)")
	cmd.Flags().StringVar(&jf.tlsCA, "tls-ca", "", "with --join: PEM file of the CA that signed the coordinator's certificate (default: the system roots)")
	cmd.Flags().IntVar(&jf.slots, "slots", 1, "with --join: jobs at once, one worker process each")
	cmd.Flags().StringVar(&jf.cacheDir, "cache-dir", "", "with --join: where sources fetched from the coordinator are kept (default: the user cache directory)")
	cmd.Flags().IntVar(&opt.Threads, "threads", 0, "CPU threads (default: all; with --join, split among the slots)")
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
