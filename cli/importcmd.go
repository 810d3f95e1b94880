package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/engine/llama2c"
)

func newImportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "import",
		Short: "Convert models from other formats to GGUF",
	}
	var out, typ, name string
	l2c := &cobra.Command{
		Use:   "llama2c CHECKPOINT TOKENIZER -o OUT.gguf",
		Short: "Convert a llama2.c checkpoint and tokenizer.bin to GGUF",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o OUT.gguf is required")
			}
			t, err := gguf.ParseType(typ)
			if err != nil {
				return fmt.Errorf("--type: %w (use f32, f16, bf16 or q8_0)", err)
			}
			start := time.Now()
			if err := llama2c.Convert(args[0], args[1], out, llama2c.Options{Name: name, Type: t}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s (%s) in %.2fs\n", out, t, time.Since(start).Seconds())
			return nil
		},
	}
	l2c.Flags().StringVarP(&out, "output", "o", "", "output GGUF file")
	l2c.Flags().StringVar(&typ, "type", "f32", "type of 2-D weights: f32, f16, bf16 or q8_0 (norms stay f32)")
	l2c.Flags().StringVar(&name, "name", "", "general.name (default: the checkpoint's file name)")
	cmd.AddCommand(l2c)
	return cmd
}
