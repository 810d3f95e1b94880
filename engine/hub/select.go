package hub

import (
	"cmp"
	"fmt"
	"path"
	"regexp"
	"slices"
	"strings"
)

// entry is one file of a repository snapshot.
type entry struct {
	Name   string // path in the repository, '/'-separated
	Size   int64  // bytes; 0 when unknown
	SHA256 string // LFS content hash, "" for plain git files or when unknown
	BlobID string // git blob id, "" when unknown
}

// defaultQuants is the default preference order, best first.
var defaultQuants = [...]string{"Q8_0", "Q4_K_M", "F16"}

// splitPattern matches llama.cpp's gguf-split shard names.
var splitPattern = regexp.MustCompile(`(?i)-\d{5}-of-\d{5}\.gguf$`)

// choice is what a reference resolves to within one snapshot: a GGUF file,
// or the set of files to convert.
type choice struct {
	gguf    *entry
	convert []entry
}

func isGGUF(name string) bool { return strings.HasSuffix(strings.ToLower(name), ".gguf") }

func isSplit(name string) bool { return splitPattern.MatchString(name) }

// isAuxiliary reports GGUF files that are not language models on their own.
func isAuxiliary(name string) bool {
	base := strings.ToLower(path.Base(name))
	return strings.HasPrefix(base, "mmproj") || strings.Contains(base, "imatrix")
}

// matchesQuant reports whether tag occurs in name delimited by
// non-alphanumeric characters and not followed by '_', case-insensitively.
func matchesQuant(name, tag string) bool {
	s := strings.TrimSuffix(strings.ToLower(name), ".gguf")
	tag = strings.ToLower(tag)
	for i := 0; i+len(tag) <= len(s); {
		j := strings.Index(s[i:], tag)
		if j < 0 {
			return false
		}
		j += i
		end := j + len(tag)
		before := j == 0 || !isAlnum(rune(s[j-1]))
		after := end == len(s) || (!isAlnum(rune(s[end])) && s[end] != '_')
		if before && after {
			return true
		}
		i = j + 1
	}
	return false
}

// smallest orders entries by size, then name.
func smallest(a, b entry) int {
	return cmp.Or(cmp.Compare(a.Size, b.Size), cmp.Compare(a.Name, b.Name))
}

func names(es []entry) string {
	var ns []string
	for _, e := range es {
		ns = append(ns, e.Name)
	}
	if len(ns) == 0 {
		return "none"
	}
	return strings.Join(ns, ", ")
}

// choose picks the file(s) ref names among files (one revision's listing).
func choose(ref Ref, files []entry) (choice, error) {
	var ggufs, singles, splits []entry
	for _, f := range files {
		if !isGGUF(f.Name) {
			continue
		}
		ggufs = append(ggufs, f)
		if isAuxiliary(f.Name) {
			continue
		}
		if isSplit(f.Name) {
			splits = append(splits, f)
		} else {
			singles = append(singles, f)
		}
	}
	slices.SortFunc(singles, smallest)

	if ref.File != "" {
		i := slices.IndexFunc(files, func(e entry) bool { return e.Name == ref.File })
		if i < 0 {
			return choice{}, fmt.Errorf("%s: %w: no file %q in the repository (GGUF files: %s)", ref.Repo, ErrNotFound, ref.File, names(ggufs))
		}
		if isSplit(ref.File) {
			return choice{}, fmt.Errorf("%s: %q: %w; choose a single-file GGUF (available: %s)", ref.Repo, ref.File, ErrSplitGGUF, names(singles))
		}
		return choice{gguf: &files[i]}, nil
	}

	if ref.Quant != "" {
		var match, matchSplit []entry
		for _, f := range singles {
			if matchesQuant(f.Name, ref.Quant) {
				match = append(match, f)
			}
		}
		for _, f := range splits {
			if matchesQuant(f.Name, ref.Quant) {
				matchSplit = append(matchSplit, f)
			}
		}
		switch {
		case len(match) == 1:
			return choice{gguf: &match[0]}, nil
		case len(match) > 1:
			return choice{}, fmt.Errorf("%s: %w tag %s: %s; name one as %s:FILE", ref.Repo, ErrAmbiguous, ref.Quant, names(match), ref.Repo)
		case len(matchSplit) > 0:
			return choice{}, fmt.Errorf("%s: %s is only available split (%s): %w; choose another quantization (single files: %s)",
				ref.Repo, ref.Quant, names(matchSplit), ErrSplitGGUF, names(singles))
		case len(ggufs) == 0:
			return choice{}, fmt.Errorf("%s: %w for %s: the repository has no GGUF files; omit the :%s to convert its safetensors",
				ref.Repo, ErrNoMatch, ref.Quant, ref.Quant)
		default:
			return choice{}, fmt.Errorf("%s: %w for quantization %s (GGUF files: %s)", ref.Repo, ErrNoMatch, ref.Quant, names(ggufs))
		}
	}

	if len(singles) > 0 {
		for _, q := range defaultQuants {
			for i := range singles {
				if matchesQuant(singles[i].Name, q) {
					return choice{gguf: &singles[i]}, nil
				}
			}
		}
		return choice{gguf: &singles[0]}, nil
	}
	if len(splits) > 0 {
		return choice{}, fmt.Errorf("%s: every GGUF in the repository is split (%s): %w", ref.Repo, names(splits), ErrSplitGGUF)
	}
	return chooseConvert(ref, files)
}

// chooseConvert picks the files ollama's converter reads: the top-level
// JSON files, tokenizer.model and the safetensors weights. Mistral-style
// consolidated*.safetensors duplicates are skipped when sharded weights
// exist beside them.
func chooseConvert(ref Ref, files []entry) (choice, error) {
	var (
		out                   []entry
		weights, consolidated []entry
		config, tokenizer     bool
		torch                 bool
	)
	for _, f := range files {
		if strings.Contains(f.Name, "/") {
			continue
		}
		lower := strings.ToLower(f.Name)
		switch {
		case strings.HasSuffix(lower, ".safetensors") && strings.HasPrefix(lower, "consolidated"):
			consolidated = append(consolidated, f)
		case strings.HasSuffix(lower, ".safetensors"):
			weights = append(weights, f)
		case strings.HasSuffix(lower, ".json") || f.Name == "tokenizer.model":
			out = append(out, f)
			config = config || f.Name == "config.json"
			tokenizer = tokenizer || f.Name == "tokenizer.json" || f.Name == "tokenizer.model"
		case strings.HasSuffix(lower, ".bin") || strings.HasSuffix(lower, ".pth"):
			torch = true
		}
	}
	if len(weights) == 0 {
		weights = consolidated
	}
	switch {
	case len(weights) == 0 && torch:
		return choice{}, fmt.Errorf("%s: %w: it has no GGUF or safetensors files (PyTorch checkpoints are not converted)", ref.Repo, ErrUnsupportedModel)
	case len(weights) == 0:
		return choice{}, fmt.Errorf("%s: %w: the repository has no GGUF or safetensors files", ref.Repo, ErrNoMatch)
	case !config:
		return choice{}, fmt.Errorf("%s: %w: safetensors without config.json", ref.Repo, ErrUnsupportedModel)
	case !tokenizer:
		return choice{}, fmt.Errorf("%s: %w: no tokenizer.json or tokenizer.model", ref.Repo, ErrUnsupportedModel)
	}
	return choice{convert: append(out, weights...)}, nil
}
