package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/evomerge/evomerge/engine/format"
	"github.com/evomerge/evomerge/engine/gguf"
)

func newInspectCmd() *cobra.Command {
	var asJSON, all bool
	cmd := &cobra.Command{
		Use:   "inspect MODEL",
		Short: "Print a GGUF model's architecture, metadata and tensor table (a file, zoo:NAME or a Hugging Face reference)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := resolveModel(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			f, err := gguf.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			s := summarize(f)
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(s)
			}
			printSummary(cmd.OutOrStdout(), s, all)
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object")
	cmd.Flags().BoolVar(&all, "all", false, "print long metadata arrays in full")
	return cmd
}

type inspectSummary struct {
	Path         string          `json:"path"`
	Version      uint32          `json:"version"`
	Architecture string          `json:"architecture"`
	Name         string          `json:"name"`
	FileBytes    int64           `json:"file_bytes"`
	Alignment    uint64          `json:"alignment"`
	TensorCount  int             `json:"tensor_count"`
	Parameters   uint64          `json:"parameters"`
	Types        map[string]int  `json:"types"`
	Metadata     []inspectKV     `json:"metadata"`
	Tensors      []inspectTensor `json:"tensors"`
}

type inspectKV struct {
	Key   string `json:"key"`
	Type  string `json:"type"`
	Value any    `json:"value"`
}

type inspectTensor struct {
	Name   string   `json:"name"`
	Type   string   `json:"type"`
	Shape  []uint64 `json:"shape"`
	Bytes  uint64   `json:"bytes"`
	Offset uint64   `json:"offset"`
}

func summarize(f *gguf.File) inspectSummary {
	s := inspectSummary{
		Path: f.Path, Version: f.Version, Architecture: f.Metadata.Architecture(),
		Name: f.Metadata.String("general.name"), FileBytes: f.Size, Alignment: f.Alignment(),
		TensorCount: len(f.Tensors), Types: map[string]int{},
	}
	for _, kv := range f.Metadata {
		t, _ := kv.Type()
		typ := t.String()
		v := kv.Value
		if a, ok := v.(gguf.Array); ok {
			typ = fmt.Sprintf("array[%s;%d]", a.Elem, a.Len())
			v = a.Values
		}
		s.Metadata = append(s.Metadata, inspectKV{kv.Key, typ, v})
	}
	for _, t := range f.Tensors {
		s.Parameters += t.Elements()
		s.Types[t.Type.String()]++
		s.Tensors = append(s.Tensors, inspectTensor{t.Name, t.Type.String(), t.Shape, t.Bytes(), t.Offset})
	}
	return s
}

func printSummary(w io.Writer, s inspectSummary, all bool) {
	fmt.Fprintf(w, "file          %s (%s, GGUF v%d, alignment %d)\n", s.Path, format.Bytes(s.FileBytes), s.Version, s.Alignment)
	fmt.Fprintf(w, "architecture  %s\n", s.Architecture)
	if s.Name != "" {
		fmt.Fprintf(w, "name          %s\n", s.Name)
	}
	fmt.Fprintf(w, "tensors       %d\n", s.TensorCount)
	fmt.Fprintf(w, "parameters    %d (%s)\n", s.Parameters, humanCount(s.Parameters))
	types := make([]string, 0, len(s.Types))
	for t := range s.Types {
		types = append(types, t)
	}
	sort.Strings(types)
	var parts []string
	for _, t := range types {
		parts = append(parts, fmt.Sprintf("%s×%d", t, s.Types[t]))
	}
	fmt.Fprintf(w, "types         %s\n\nmetadata (%d keys)\n", strings.Join(parts, " "), len(s.Metadata))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, kv := range s.Metadata {
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", kv.Key, kv.Type, formatValue(kv.Value, all))
	}
	tw.Flush()
	fmt.Fprintf(w, "\ntensors\n")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "  name\ttype\tshape\tbytes\toffset\n")
	for _, t := range s.Tensors {
		fmt.Fprintf(tw, "  %s\t%s\t%v\t%d\t%d\n", t.Name, t.Type, t.Shape, t.Bytes, t.Offset)
	}
	tw.Flush()
}

// formatValue prints scalars in full and long arrays as their first items.
func formatValue(v any, all bool) string {
	s := fmt.Sprintf("%v", v)
	if str, ok := v.(string); ok {
		s = fmt.Sprintf("%q", str)
	}
	if strs, ok := v.([]string); ok && !all && len(strs) > 8 {
		s = fmt.Sprintf("%q … (%d more)", strs[:8], len(strs)-8)
	}
	if !all && len(s) > 120 {
		s = s[:117] + "…"
	}
	return s
}

func humanCount(n uint64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2fB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.1fK", float64(n)/1e3)
	}
	return fmt.Sprintf("%d", n)
}
