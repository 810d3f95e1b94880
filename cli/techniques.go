package cli

import (
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/engine/merge"
)

// techniquesHelp lists the registered techniques for --help: name,
// aliases, where it can be used, and its one-line description.
func techniquesHelp() string {
	var b strings.Builder
	b.WriteString("Merge techniques (merge.techniques in the configuration, merge_method in recipes;\ndocs/methods.md lists their parameters):\n")
	ts := merge.Techniques()
	width := 0
	names := make([]string, len(ts))
	for i, t := range ts {
		names[i] = t.Name
		if len(t.Aliases) > 0 {
			names[i] += " (" + strings.Join(t.Aliases, ", ") + ")"
		}
		width = max(width, len(names[i]))
	}
	for i, t := range ts {
		doc := t.Doc
		switch {
		case t.RecipeOnly:
			doc = "recipes only: " + doc
		case !t.InRecipes():
			doc = "evolution only (as " + t.Writes + "): " + doc
		}
		fmt.Fprintf(&b, "  %-*s  %s\n", width, names[i], doc)
	}
	return strings.TrimSuffix(b.String(), "\n")
}

// wrapWords joins words with ", " into lines of at most width columns.
func wrapWords(words []string, width int) string {
	var b strings.Builder
	line := 0
	for i, w := range words {
		if i < len(words)-1 {
			w += ","
		}
		switch {
		case i == 0:
		case line+1+len(w) > width:
			b.WriteString("\n")
			line = 0
		default:
			b.WriteString(" ")
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}
