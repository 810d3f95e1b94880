package cli

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/zoo"
)

func newZooCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "zoo",
		Short: "Maintain the bundled model zoo (expert patches)",
		Long: `The bundled experts are committed as patches: GGUF files holding only the
tensors in which an expert differs from stories15M. "pack" makes a patch,
"build" materialises base+patch into a full model (make zoo runs it).
"where" lists the places the built models are looked for, in order.`,
	}
	where := &cobra.Command{
		Use:   "where",
		Short: "List where the zoo's models are looked for, in order, and which is used",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			w := cmd.OutOrStdout()
			used := zoo.Dir()
			for _, d := range zoo.Locations() {
				mark := " "
				if d == used {
					mark = "*"
				}
				fmt.Fprintf(w, "%s %s\n", mark, d)
			}
			for _, name := range zoo.Names() {
				p, err := zoo.Find(name)
				if err != nil {
					fmt.Fprintf(w, "%s%s: missing\n", zoo.ModelPrefix, name)
					continue
				}
				fmt.Fprintf(w, "%s%s: %s\n", zoo.ModelPrefix, name, p)
			}
			return nil
		},
	}
	cmd.AddCommand(where)
	var out, typ, manifest string
	pack := &cobra.Command{
		Use:   "pack BASE.gguf MODEL.gguf -o PATCH.gguf",
		Short: "Store the tensors in which MODEL differs from BASE",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o PATCH.gguf is required")
			}
			t, err := gguf.ParseType(typ)
			if err != nil {
				return fmt.Errorf("--type: %w", err)
			}
			var extra gguf.Metadata
			if manifest != "" {
				raw, err := os.ReadFile(manifest)
				if err != nil {
					return err
				}
				if !json.Valid(raw) {
					return fmt.Errorf("--manifest %s is not valid JSON", manifest)
				}
				extra = append(extra, gguf.KV{Key: "evomerge.provenance", Value: string(raw)})
			}
			if err := zoo.Pack(args[0], args[1], out, t, extra); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
			return nil
		},
	}
	pack.Flags().StringVarP(&out, "output", "o", "", "patch file to write")
	pack.Flags().StringVar(&typ, "type", "q8_0", "type of 2-D tensors in the patch")
	pack.Flags().StringVar(&manifest, "manifest", "", "JSON file recorded as evomerge.provenance")
	build := &cobra.Command{
		Use:   "build BASE.gguf PATCH.gguf -o OUT.gguf",
		Short: "Materialise BASE+PATCH into a full model",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if out == "" {
				return fmt.Errorf("-o OUT.gguf is required")
			}
			if err := zoo.Build(args[0], args[1], out); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\n", out)
			return nil
		},
	}
	build.Flags().StringVarP(&out, "output", "o", "", "model file to write")
	cmd.AddCommand(pack, build)
	return cmd
}
