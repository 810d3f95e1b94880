package hub

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultRevision is the revision used when a reference names none.
const DefaultRevision = "main"

// hfScheme is huggingface_hub's file-system URL prefix; it forces the hub
// reading of a string that would otherwise look local.
const hfScheme = "hf://"

// Ref is a parsed hub reference.
type Ref struct {
	Repo     string // "org/name"
	Revision string // branch, tag or commit; "" means DefaultRevision
	File     string // explicit file path inside the repository, or ""
	Quant    string // quantization tag such as "Q8_0", or ""
}

// rev is the revision to request.
func (r Ref) rev() string {
	if r.Revision == "" {
		return DefaultRevision
	}
	return r.Revision
}

// String formats r in the syntax ParseRef accepts.
func (r Ref) String() string {
	s := r.Repo
	if r.Revision != "" {
		s += "@" + r.Revision
	}
	switch {
	case r.File != "":
		s += ":" + r.File
	case r.Quant != "":
		s += ":" + r.Quant
	}
	return s
}

// ParseRef parses a hub reference:
//
//	[hf://]org/name[@revision][:QUANT | :path/in/repo.gguf]
//	[hf://]org/name/path/in/repo.gguf
//
// A selector after ':' is a file when it ends in ".gguf" or contains '/',
// otherwise a quantization tag. A revision extends to the ':' (so it may
// contain '/', as in refs/pr/1). Errors wrap ErrInvalidRef, or ErrUnsafePath
// for file names or revisions that could escape a directory.
func ParseRef(s string) (Ref, error) {
	in := s
	s = strings.TrimPrefix(s, hfScheme)
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%q: %w: %s (want org/name, org/name:QUANT or org/name/file.gguf)", in, ErrInvalidRef, why)
	}
	head, sel, hasSel := strings.Cut(s, ":")
	if hasSel && sel == "" {
		return bad("empty selector after ':'")
	}
	var ref Ref
	if repo, rev, ok := strings.Cut(head, "@"); ok {
		if rev == "" {
			return bad("empty revision after '@'")
		}
		if err := checkRelPath(rev); err != nil {
			return Ref{}, fmt.Errorf("%q: revision: %w", in, err)
		}
		ref.Repo, ref.Revision = repo, rev
	} else {
		parts := strings.SplitN(head, "/", 3)
		if len(parts) < 2 {
			return bad("no organisation: hub repositories are named org/name")
		}
		ref.Repo = parts[0] + "/" + parts[1]
		if len(parts) == 3 {
			if hasSel {
				return bad("both a file path and a ':' selector")
			}
			ref.File = parts[2]
		}
	}
	if err := checkRepoID(ref.Repo); err != nil {
		return bad(err.Error())
	}
	if hasSel {
		if strings.HasSuffix(strings.ToLower(sel), ".gguf") || strings.ContainsAny(sel, `/\`) {
			ref.File = sel
		} else {
			if !isQuantTag(sel) {
				return bad(fmt.Sprintf("quantization tag %q may contain only letters, digits, '_', '-' and '.'", sel))
			}
			ref.Quant = sel
		}
	}
	if ref.File != "" {
		if err := checkRelPath(ref.File); err != nil {
			return Ref{}, fmt.Errorf("%q: %w", in, err)
		}
		if !strings.HasSuffix(strings.ToLower(ref.File), ".gguf") {
			return bad(fmt.Sprintf("file %q is not a .gguf file; name a .gguf file or omit it to convert the repository's safetensors", ref.File))
		}
	}
	return ref, nil
}

// checkRepoID applies the hub's rules for repository ids: two parts of
// letters, digits, '_', '-', '.', each starting and ending with a letter,
// digit or '_', no "--" or "..", at most 96 characters.
func checkRepoID(id string) error {
	if len(id) > 96 {
		return fmt.Errorf("repository id %q is longer than 96 characters", id)
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return fmt.Errorf("repository id %q contains '--' or '..'", id)
	}
	for _, part := range strings.Split(id, "/") {
		if part == "" {
			return fmt.Errorf("repository id %q has an empty part", id)
		}
		for _, c := range part {
			if !isWordChar(c) && c != '-' && c != '.' {
				return fmt.Errorf("repository id %q contains %q", id, c)
			}
		}
		if !isWordChar(rune(part[0])) || !isWordChar(rune(part[len(part)-1])) {
			return fmt.Errorf("repository id %q: each part must start and end with a letter, digit or '_'", id)
		}
	}
	return nil
}

func isWordChar(c rune) bool {
	return c == '_' || isAlnum(c)
}

func isAlnum(c rune) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func isQuantTag(s string) bool {
	for _, c := range s {
		if !isWordChar(c) && c != '-' && c != '.' {
			return false
		}
	}
	return s != ""
}

// checkRelPath refuses remote names that could leave the directory they are
// joined to: empty, absolute, backslashes, NUL, drive letters, and "." or
// ".." or empty segments.
func checkRelPath(p string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %q %s", ErrUnsafePath, p, why) }
	switch {
	case p == "":
		return bad("is empty")
	case strings.HasPrefix(p, "/") || filepath.IsAbs(p):
		return bad("is absolute")
	case strings.ContainsAny(p, "\\\x00"):
		return bad("contains a backslash or NUL")
	case filepath.VolumeName(p) != "" || (len(p) >= 2 && p[1] == ':'):
		return bad("names a drive")
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return bad("has an empty, '.' or '..' segment")
		}
	}
	return nil
}

// checkName refuses an etag or commit hash that is not a plain file name.
func checkName(kind, s string) error {
	if s == "" || len(s) > 128 {
		return fmt.Errorf("%w: %s %q", ErrUnsafePath, kind, s)
	}
	for _, c := range s {
		if !isAlnum(c) && c != '-' && c != '_' {
			return fmt.Errorf("%w: %s %q contains %q", ErrUnsafePath, kind, s, c)
		}
	}
	return nil
}

// IsLocalPath reports whether s names a local file rather than a hub
// repository. Local are: strings starting with "./", "../", "/" or "~";
// absolute paths; paths that exist; and names ending in ".gguf" that contain
// a path separator and whose directory exists. A string starting with
// "hf://" is never local.
func IsLocalPath(s string) bool {
	switch {
	case s == "" || strings.HasPrefix(s, hfScheme):
		return false
	case s == "." || s == ".." || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../"),
		strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~") || filepath.IsAbs(s),
		filepath.VolumeName(s) != "":
		return true
	}
	if _, err := os.Stat(s); err == nil {
		return true
	}
	if strings.HasSuffix(strings.ToLower(s), ".gguf") && strings.ContainsAny(s, "/"+string(filepath.Separator)) {
		if st, err := os.Stat(filepath.Dir(s)); err == nil && st.IsDir() {
			return true
		}
	}
	return false
}

// IsHubRef reports whether s is a hub reference: not a local path by
// IsLocalPath's rule, and valid for ParseRef.
func IsHubRef(s string) bool {
	if IsLocalPath(s) {
		return false
	}
	_, err := ParseRef(s)
	return err == nil
}

// expandHome replaces a leading "~/" (or a lone "~") with the home directory.
func expandHome(p string) (string, error) {
	if p != "~" && !strings.HasPrefix(p, "~/") && !strings.HasPrefix(p, "~"+string(filepath.Separator)) {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("expand %q: %w", p, err)
	}
	return filepath.Join(home, p[1:]), nil
}

// localName converts a validated slash-separated repository path into a
// path below dir.
func localName(dir, repoPath string) string {
	return filepath.Join(dir, filepath.FromSlash(path.Clean(repoPath)))
}
