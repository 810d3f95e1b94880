package eval

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/evomerge/evomerge/zoo"
)

// Evaluation texts are named by reference: "zoo:DOMAIN[/SPLIT]" for a text
// bundled with the zoo, anything else a file path. Names label the
// perplexity of each text everywhere a score is shown or stored (events,
// history.jsonl, the report's and the exports' columns, the workbench), so
// they are derived here and nowhere else.

// TextName is the display name of one evaluation text reference: the
// domain of a bundled text ("zoo:moby/test" → "moby"), else the file's
// base name without its extension ("data/my notes.txt" → "my notes").
func TextName(ref string) string {
	if d, _, ok := zoo.ParseTextRef(ref); ok {
		return d
	}
	return strings.TrimSuffix(filepath.Base(ref), filepath.Ext(ref))
}

// TextNames names a list of references with TextName, made unique in
// order: a name's second use becomes "NAME-2", its third "NAME-3".
func TextNames(refs []string) []string {
	out := make([]string, len(refs))
	used := map[string]int{}
	for i, ref := range refs {
		name := TextName(ref)
		if used[name]++; used[name] > 1 {
			name = fmt.Sprintf("%s-%d", name, used[name])
		}
		out[i] = name
	}
	return out
}

// LoadTexts reads evaluation texts, bundled or from files, named by
// TextNames.
func LoadTexts(refs []string) ([]Text, error) {
	names := TextNames(refs)
	var out []Text
	for i, ref := range refs {
		var content string
		if d, split, ok := zoo.ParseTextRef(ref); ok {
			t, err := zoo.Text(d, split)
			if err != nil {
				return nil, err
			}
			content = t
		} else {
			b, err := os.ReadFile(ref)
			if err != nil {
				return nil, fmt.Errorf("evaluation text: %w", err)
			}
			content = string(b)
		}
		out = append(out, Text{Name: names[i], Content: content})
	}
	return out, nil
}
