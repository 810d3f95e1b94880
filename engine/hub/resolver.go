package hub

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// DefaultEndpoint is the hub used when HF_ENDPOINT is unset.
const DefaultEndpoint = "https://huggingface.co"

// Resolver turns model references into local GGUF paths. Set its fields
// before first use; after that it is safe for concurrent use. The zero
// value works (default endpoint and cache, no token, online); NewResolver
// fills the fields from the environment as huggingface_hub does.
type Resolver struct {
	// Endpoint is the hub's base URL (HF_ENDPOINT); "" means DefaultEndpoint.
	Endpoint string
	// Token is sent as "Authorization: Bearer" (HF_TOKEN).
	Token string
	// CacheDir is the huggingface_hub cache (HF_HUB_CACHE); "" means
	// ~/.cache/huggingface/hub.
	CacheDir string
	// ConvertDir holds GGUFs converted from safetensors; "" means
	// <user cache dir>/evomerge/converted.
	ConvertDir string
	// Offline resolves from the cache only and never touches the network
	// (HF_HUB_OFFLINE).
	Offline bool
	// Client sends the requests; nil means http.DefaultClient. NewResolver
	// sets one with connection and response-header timeouts and no overall
	// limit (downloads are long).
	Client *http.Client
	// Progress, when set, is called as downloads advance with the
	// repository file name, bytes done and total bytes (-1 when unknown).
	// It runs on the downloading goroutine and should return quickly.
	Progress func(file string, done, total int64)
}

// Resolution describes where a reference led.
type Resolution struct {
	Path      string // local GGUF file
	Local     bool   // the input was a local path, returned as is
	Ref       Ref    // parsed reference (zero when Local)
	RepoID    string // the repository as the hub names it: Ref.Repo, or where a legacy or renamed id led
	Commit    string // snapshot commit
	File      string // repository file chosen, "" when Converted
	Converted bool   // Path was converted from safetensors
}

// NewResolver returns a resolver configured from the environment:
// HF_ENDPOINT, HF_TOKEN (else the token file `huggingface-cli login` writes:
// HF_TOKEN_PATH or $HF_HOME/token), HF_HUB_OFFLINE, HF_HUB_CACHE (else
// HUGGINGFACE_HUB_CACHE, else $HF_HOME/hub, HF_HOME defaulting to
// $XDG_CACHE_HOME/huggingface or ~/.cache/huggingface).
func NewResolver() *Resolver {
	return newResolver(os.Getenv)
}

func newResolver(getenv func(string) string) *Resolver {
	home, _ := os.UserHomeDir()
	expand := func(p string) string {
		if p, err := expandHome(p); err == nil {
			return p
		}
		return p
	}
	hfHome := expand(getenv("HF_HOME"))
	if hfHome == "" {
		base := expand(getenv("XDG_CACHE_HOME"))
		if base == "" {
			base = filepath.Join(home, ".cache")
		}
		hfHome = filepath.Join(base, "huggingface")
	}
	r := &Resolver{
		Endpoint: strings.TrimRight(getenv("HF_ENDPOINT"), "/"),
		Token:    strings.TrimSpace(getenv("HF_TOKEN")),
		CacheDir: expand(firstNonEmpty(getenv("HF_HUB_CACHE"), getenv("HUGGINGFACE_HUB_CACHE"), filepath.Join(hfHome, "hub"))),
		Offline:  isTrue(getenv("HF_HUB_OFFLINE")),
		Client:   newClient(),
	}
	if r.Token == "" {
		tokenPath := expand(firstNonEmpty(getenv("HF_TOKEN_PATH"), filepath.Join(hfHome, "token")))
		if b, err := os.ReadFile(tokenPath); err == nil {
			r.Token = strings.TrimSpace(string(b))
		}
	}
	return r
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// isTrue reads a boolean environment value the way huggingface_hub does.
func isTrue(v string) bool {
	switch strings.ToUpper(strings.TrimSpace(v)) {
	case "1", "ON", "YES", "TRUE":
		return true
	}
	return false
}

func (r *Resolver) endpoint() string {
	if r.Endpoint == "" {
		return DefaultEndpoint
	}
	return strings.TrimRight(r.Endpoint, "/")
}

func (r *Resolver) cache() (cache, error) {
	if r.CacheDir != "" {
		return cache{root: r.CacheDir}, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return cache{}, fmt.Errorf("locate the Hugging Face cache (set HF_HUB_CACHE): %w", err)
	}
	return cache{root: filepath.Join(home, ".cache", "huggingface", "hub")}, nil
}

func (r *Resolver) convertDir() (string, error) {
	if r.ConvertDir != "" {
		return r.ConvertDir, nil
	}
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("locate a cache directory for converted models: %w", err)
	}
	return filepath.Join(base, "evomerge", "converted"), nil
}

func (r *Resolver) client() *http.Client {
	if r.Client != nil {
		return r.Client
	}
	return http.DefaultClient
}

// newClient bounds connecting and waiting for headers, not the body:
// downloads take as long as they take, and a stalled body is caught by the
// download's own watchdog.
func newClient() *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	t.ResponseHeaderTimeout = time.Minute
	return &http.Client{Transport: t}
}

// Resolve returns the local GGUF path for s: a local path (see IsLocalPath)
// after "~" expansion, or a hub reference (see ParseRef) downloaded or
// converted into the cache as needed.
func (r *Resolver) Resolve(ctx context.Context, s string) (string, error) {
	res, err := r.ResolveInfo(ctx, s)
	return res.Path, err
}

// ResolveInfo is Resolve, also reporting the commit and file chosen.
//
// A string that is not a local path by IsLocalPath's rule is read as a hub
// reference; when it does not mark itself as one (IsExplicit) and the hub
// cannot supply it, the error says that no such local file exists either.
// Errors about a missing file do not repeat s: the caller names the model.
// Links to the resolver's own endpoint are read like huggingface.co links.
func (r *Resolver) ResolveInfo(ctx context.Context, s string) (Resolution, error) {
	if err := ctx.Err(); err != nil {
		return Resolution{}, err
	}
	if IsLocalPath(s) {
		p, err := expandHome(s)
		if err != nil {
			return Resolution{}, err
		}
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return Resolution{}, ErrNoSuchFile
			}
			return Resolution{}, err
		}
		return Resolution{Path: p, Local: true}, nil
	}
	ref, err := ParseRef(r.ownLink(s))
	if err != nil {
		if IsExplicit(s) {
			return Resolution{}, err
		}
		return Resolution{}, fmt.Errorf("%w, and not a Hugging Face reference: %w", ErrNoSuchFile, err)
	}
	res, err := r.resolveRef(ctx, ref)
	if err != nil && !IsExplicit(s) && (errors.Is(err, ErrNotFound) || unreachable(err) || errors.Is(err, ErrNotCached)) {
		err = fmt.Errorf("%w, and as a Hugging Face reference (repository %s): %w", ErrNoSuchFile, ref.Repo, err)
	}
	return res, err
}

// ownLink rewrites a link to the resolver's endpoint (a mirror set by
// HF_ENDPOINT) into the huggingface.co form ParseRef reads.
func (r *Resolver) ownLink(s string) string {
	if rest, ok := strings.CutPrefix(s, r.endpoint()+"/"); ok && r.endpoint() != DefaultEndpoint {
		return DefaultEndpoint + "/" + rest
	}
	return s
}

func (r *Resolver) resolveRef(ctx context.Context, ref Ref) (Resolution, error) {
	c, err := r.cache()
	if err != nil {
		return Resolution{}, err
	}
	if r.Offline {
		res, err := r.resolveCached(ctx, c, ref)
		if err != nil {
			return Resolution{}, fmt.Errorf("%w (offline, HF_HUB_OFFLINE: only the cache at %s is searched; unset HF_HUB_OFFLINE to download)", err, c.root)
		}
		return res, nil
	}
	rev := ref.rev()
	info, err := r.modelInfo(ctx, ref.Repo, rev)
	if err != nil {
		if unreachable(err) {
			res, cerr := r.resolveCached(ctx, c, ref)
			if cerr == nil {
				return res, nil
			}
			return Resolution{}, fmt.Errorf("%w; %w", err, cerr)
		}
		return Resolution{}, err
	}
	ch, err := choose(ref, info.Files)
	if err != nil {
		return Resolution{}, err
	}
	res := Resolution{Ref: ref, RepoID: firstNonEmpty(info.ID, ref.Repo), Commit: info.Commit}
	if ch.gguf != nil {
		res.File = ch.gguf.Name
		res.Path, err = r.fetch(ctx, c, ref.Repo, info.Commit, *ch.gguf)
	} else {
		res.Converted = true
		res.Path, err = r.convert(ctx, c, ref.Repo, info.Commit, ch.convert, true)
	}
	if err != nil {
		return Resolution{}, err
	}
	if err := c.writeRef(ref.Repo, rev, info.Commit); err != nil {
		return Resolution{}, err
	}
	return res, nil
}

// resolveCached resolves ref from the cache alone. Its errors wrap
// ErrNotCached when the cache lacks what ref needs.
func (r *Resolver) resolveCached(ctx context.Context, c cache, ref Ref) (Resolution, error) {
	commit, err := c.commitFor(ref.Repo, ref.rev())
	if err != nil {
		return Resolution{}, err
	}
	files, lerr := c.listSnapshot(ref.Repo, commit)
	if lerr != nil && !errors.Is(lerr, ErrNotCached) {
		return Resolution{}, lerr
	}
	res := Resolution{Ref: ref, RepoID: ref.Repo, Commit: commit}
	ch, cerr := choose(ref, files)
	if cerr == nil && ch.gguf != nil {
		res.File = ch.gguf.Name
		res.Path = localName(c.snapshotDir(ref.Repo, commit), ch.gguf.Name)
		return res, nil
	}
	// A converted model needs no snapshot files once converted.
	if ref.File == "" && ref.Quant == "" {
		if p, err := r.convertedPath(ref.Repo, commit); err == nil && exists(p) {
			res.Path, res.Converted = p, true
			return res, nil
		}
	}
	switch {
	case lerr != nil:
		return Resolution{}, lerr
	case cerr != nil:
		return Resolution{}, fmt.Errorf("%s@%s: %w: %v", ref.Repo, commit, ErrNotCached, cerr)
	}
	if res.Path, err = r.convert(ctx, c, ref.Repo, commit, ch.convert, false); err != nil {
		return Resolution{}, err
	}
	res.Converted = true
	return res, nil
}

// fetch makes one repository file present in the snapshot and returns its
// path there.
func (r *Resolver) fetch(ctx context.Context, c cache, repo, commit string, e entry) (string, error) {
	if err := checkRelPath(e.Name); err != nil {
		return "", fmt.Errorf("%s: the hub listed %w", repo, err)
	}
	snap := localName(c.snapshotDir(repo, commit), e.Name)
	if exists(snap) {
		return snap, nil
	}
	meta, err := r.headFile(ctx, repo, commit, e.Name)
	if err != nil {
		return "", err
	}
	etag := firstNonEmpty(meta.Etag, e.SHA256, e.BlobID)
	if etag == "" {
		return "", fmt.Errorf("%s: file %q: %w: HEAD %s answered %s without an X-Linked-Etag or ETag header, and the file listing gives no sha256 or blob id, so the download could be neither named in the cache nor checked (a proxy in between may have removed them)",
			repo, e.Name, ErrNoETag, r.resolveURL(repo, commit, e.Name), meta.Status)
	}
	if err := checkName("etag", etag); err != nil {
		return "", fmt.Errorf("%s: file %q: %w", repo, e.Name, err)
	}
	job := blobJob{
		repo: repo, file: e.Name,
		url:  r.resolveURL(repo, commit, e.Name),
		blob: c.blobPath(repo, etag),
		size: meta.Size,
	}
	if job.size < 0 && e.Size > 0 {
		job.size = e.Size
	}
	switch {
	case isSHA256(etag):
		job.sha256 = strings.ToLower(etag)
	case isSHA256(e.SHA256):
		job.sha256 = e.SHA256
	}
	if !exists(job.blob) {
		if err := r.download(ctx, c, etag, job); err != nil {
			return "", err
		}
	}
	return c.link(repo, commit, e.Name, job.blob)
}

func isSHA256(s string) bool { return isHex(strings.ToLower(s), 64) }
