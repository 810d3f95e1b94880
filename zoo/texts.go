package zoo

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

// The evaluation texts are embedded in the binary: validation and test
// parts of each expert's domain (disjoint from the training part, which is
// not shipped) and a held-out test text no model was tuned on (Newton's
// Opticks). scripts/prepare_texts.py made them; manifest.json records how.
//
//go:embed texts/*/*.txt texts/manifest.json
var texts embed.FS

// Splits of a domain's text.
const (
	Validation = "validation"
	Test       = "test"
)

// HeldOut is the domain no model was tuned on (test split only).
const HeldOut = "opticks"

// Domains lists the domains with embedded texts, sorted.
func Domains() []string {
	entries, _ := fs.ReadDir(texts, "texts")
	var out []string
	for _, e := range entries {
		if e.IsDir() {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out
}

// Text returns the embedded text of a domain's split.
func Text(domain, split string) (string, error) {
	b, err := texts.ReadFile("texts/" + domain + "/" + split + ".txt")
	if err != nil {
		return "", fmt.Errorf("no bundled text %q (split %q); bundled: %s", domain, split, strings.Join(Refs(), ", "))
	}
	return string(b), nil
}

// TextRef is how configs name a bundled text: "zoo:DOMAIN" (the validation
// split) or "zoo:DOMAIN/SPLIT".
const TextRef = "zoo:"

// ParseTextRef splits "zoo:bible/test" into its domain and split; ok is
// false for strings that are not bundled-text references.
func ParseTextRef(s string) (domain, split string, ok bool) {
	rest, ok := strings.CutPrefix(s, TextRef)
	if !ok {
		return "", "", false
	}
	domain, split, found := strings.Cut(rest, "/")
	if !found {
		split = Validation
	}
	return domain, split, true
}

// Refs lists every bundled text reference.
func Refs() []string {
	var out []string
	for _, d := range Domains() {
		for _, s := range []string{Validation, Test} {
			if _, err := texts.ReadFile("texts/" + d + "/" + s + ".txt"); err == nil {
				out = append(out, TextRef+d+"/"+s)
			}
		}
	}
	return out
}
