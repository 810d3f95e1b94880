package hub

import (
	"fmt"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
)

// DefaultRevision is the revision used when a reference names none.
const DefaultRevision = "main"

// Prefixes that mark a string as a hub reference whatever else it looks
// like: huggingface_hub's file-system scheme (hf://), its short form
// (hf:), and the host names Ollama and the web pages use (hf.co/org/name,
// huggingface.co/org/name).
var hubPrefixes = []string{"hf://", "hf:", "hf.co/", "huggingface.co/", "www.huggingface.co/"}

// hubHosts are the hosts whose http(s) links ParseRef reads. A link is only
// parsed for its repository, revision and file: the files are fetched from
// the resolver's endpoint (HF_ENDPOINT), like every other form.
var hubHosts = []string{"huggingface.co", "www.huggingface.co", "hf.co"}

// Ref is a parsed hub reference.
type Ref struct {
	Repo     string // "org/name", or a legacy id without an organisation ("gpt2")
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
//	[PREFIX]org/name[@revision][:QUANT | :path/in/repo.gguf]
//	[PREFIX]org/name/path/in/repo.gguf
//	[PREFIX]name[@revision][:QUANT | :path/in/repo.gguf]      legacy ids (gpt2)
//	https://huggingface.co/org/name[/tree/REV | /blob/REV/FILE | /resolve/REV/FILE]
//
// PREFIX is one of hf://, hf:, hf.co/ or huggingface.co/; links may also use
// the hosts hf.co and www.huggingface.co. A selector after ':' is a file when
// it ends in ".gguf" or contains '/', otherwise a quantization tag. A
// revision extends to the ':' (so it may contain '/', as in refs/pr/1).
// Errors wrap ErrInvalidRef, or ErrUnsafePath for file names or revisions
// that could escape a directory.
func ParseRef(s string) (Ref, error) {
	in := s
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%q: %w: %s (want org/name, org/name:QUANT, org/name/file.gguf or a huggingface.co link)", in, ErrInvalidRef, why)
	}
	if scheme, rest, ok := strings.Cut(s, "://"); ok && (scheme == "https" || scheme == "http") {
		host, p, _ := strings.Cut(rest, "/")
		if !isHubHost(host) {
			return bad(fmt.Sprintf("%s is not a Hugging Face host (%s)", host, strings.Join(hubHosts, ", ")))
		}
		return parseLink(in, p)
	}
	for _, p := range hubPrefixes {
		if rest, ok := strings.CutPrefix(s, p); ok {
			s = rest
			break
		}
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
		ref.Repo = parts[0]
		if len(parts) > 1 {
			ref.Repo += "/" + parts[1]
		}
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
	return checkFile(in, ref)
}

// parseLink reads the path of a huggingface.co link: the repository, then
// optionally /tree/REV, /blob/REV/FILE or /resolve/REV/FILE. A link to the
// repository alone may carry a ":QUANT" selector like the other forms.
func parseLink(in, p string) (Ref, error) {
	bad := func(why string) (Ref, error) {
		return Ref{}, fmt.Errorf("%q: %w: %s", in, ErrInvalidRef, why)
	}
	p, _, _ = strings.Cut(p, "?")
	p, _, _ = strings.Cut(p, "#")
	var segs []string
	for _, s := range strings.Split(strings.Trim(p, "/"), "/") {
		u, err := url.PathUnescape(s)
		if err != nil {
			return bad(fmt.Sprintf("segment %q: %v", s, err))
		}
		segs = append(segs, u)
	}
	if len(segs) == 0 || segs[0] == "" {
		return bad("the link names no repository")
	}
	switch segs[0] {
	case "datasets", "spaces", "collections", "docs", "papers", "organizations":
		return bad(fmt.Sprintf("a link to %s, not to a model repository", segs[0]))
	}
	// The repository is one segment (a legacy id) when the next one is an
	// action, else two.
	n := 2
	if len(segs) == 1 || isLinkAction(segs[1]) {
		n = 1
	}
	if len(segs) == n {
		return ParseRef("hf://" + strings.Join(segs, "/"))
	}
	ref := Ref{Repo: strings.Join(segs[:n], "/")}
	if err := checkRepoID(ref.Repo); err != nil {
		return bad(err.Error())
	}
	action, rest := segs[n], segs[n+1:]
	if !isLinkAction(action) {
		return bad(fmt.Sprintf("%q after the repository: want tree, blob or resolve", action))
	}
	if len(rest) == 0 {
		return bad(fmt.Sprintf("no revision after /%s", action))
	}
	ref.Revision = rest[0]
	if err := checkRelPath(ref.Revision); err != nil {
		return Ref{}, fmt.Errorf("%q: revision: %w", in, err)
	}
	if ref.Revision == DefaultRevision {
		ref.Revision = ""
	}
	file := strings.Join(rest[1:], "/")
	switch {
	case action == "tree" && file != "":
		return bad(fmt.Sprintf("a link to the folder %q: link the repository or a .gguf file", file))
	case action != "tree" && file == "":
		return bad(fmt.Sprintf("no file after /%s/%s", action, rest[0]))
	}
	ref.File = file
	return checkFile(in, ref)
}

func isLinkAction(s string) bool { return s == "tree" || s == "blob" || s == "resolve" }

func isHubHost(host string) bool {
	for _, h := range hubHosts {
		if strings.EqualFold(host, h) {
			return true
		}
	}
	return false
}

// checkFile refuses a file that could escape a directory or is not GGUF.
func checkFile(in string, ref Ref) (Ref, error) {
	if ref.File == "" {
		return ref, nil
	}
	if err := checkRelPath(ref.File); err != nil {
		return Ref{}, fmt.Errorf("%q: %w", in, err)
	}
	if !strings.HasSuffix(strings.ToLower(ref.File), ".gguf") {
		return Ref{}, fmt.Errorf("%q: %w: file %q is not a .gguf file; name a .gguf file or omit it to convert the repository's safetensors", in, ErrInvalidRef, ref.File)
	}
	return ref, nil
}

// checkRepoID applies the hub's rules for repository ids: one part (a
// legacy id such as gpt2) or two (org/name) of letters, digits, '_', '-',
// '.', each starting and ending with a letter, digit or '_', no "--" or
// "..", at most 96 characters. A one-part id must not end in ".gguf": that
// is a file name.
func checkRepoID(id string) error {
	if len(id) > 96 {
		return fmt.Errorf("repository id %q is longer than 96 characters", id)
	}
	if strings.Contains(id, "--") || strings.Contains(id, "..") {
		return fmt.Errorf("repository id %q contains '--' or '..'", id)
	}
	parts := strings.Split(id, "/")
	if len(parts) == 1 && isGGUF(id) {
		return fmt.Errorf("%q is a file name, not a repository id", id)
	}
	for _, part := range parts {
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

// IsExplicit reports whether s is marked as a hub reference: it starts
// with one of the hub prefixes (hf://, hf:, hf.co/, huggingface.co/) or is
// an http(s) link. Such a string is never read as a local path.
func IsExplicit(s string) bool {
	for _, p := range hubPrefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return strings.HasPrefix(s, "https://") || strings.HasPrefix(s, "http://")
}

// IsLocalPath reports whether s names a local file rather than a hub
// repository. Never local: the empty string and explicit hub references
// (IsExplicit). Local: strings starting with "./", "../", "/" or "~";
// absolute paths; paths that exist; names ending in ".gguf" without a ':'
// and with at most one '/' (a file, or a file in a directory: no hub form
// has that shape); and longer ".gguf" paths whose first directory exists. Everything else is
// shaped like a hub id: org/name, org/name/file.gguf, or a legacy name.
func IsLocalPath(s string) bool {
	switch {
	case s == "" || IsExplicit(s):
		return false
	case s == "." || s == ".." || strings.HasPrefix(s, "./") || strings.HasPrefix(s, "../"),
		strings.HasPrefix(s, "/") || strings.HasPrefix(s, "~") || filepath.IsAbs(s),
		filepath.VolumeName(s) != "":
		return true
	}
	if _, err := os.Stat(s); err == nil {
		return true
	}
	if !isGGUF(s) || strings.Contains(s, ":") {
		return false // not a file name, or a repository with a ':' selector
	}
	slashed := filepath.ToSlash(s)
	if strings.Count(slashed, "/") < 2 {
		return true
	}
	first, _, _ := strings.Cut(slashed, "/")
	st, err := os.Stat(first)
	return err == nil && st.IsDir()
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
