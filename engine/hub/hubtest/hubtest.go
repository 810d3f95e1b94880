// Package hubtest is a local stand-in for the Hugging Face hub, for tests
// of everything that resolves model references: the hub package's own,
// and end-to-end runs that point HF_ENDPOINT at it.
//
// It answers the endpoints the resolver uses the way the real hub does: the
// revision API with ?blobs=true, HEAD/GET of /{repo}/resolve/{rev}/{file}
// (LFS files — .gguf and .safetensors — redirect to a content server with
// X-Linked-Etag; plain files answer with their git blob id as ETag), and
// the content server itself, which honours Range. Renamed repositories and
// legacy ids without an organisation (gpt2, now openai-community/gpt2)
// answer every request with a relative 307 redirect to their current id,
// as the hub does. Knobs simulate failures: outages, dropped connections,
// corrupted content, servers that ignore Range, odd ETags, listed files
// that do not resolve.
package hubtest

import (
	"bytes"
	"cmp"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hub is a running fake hub. Its methods are safe for concurrent use.
type Hub struct {
	srv *httptest.Server

	mu       sync.Mutex
	repos    map[string]*Repo
	moved    map[string]string // old id -> current id
	token    string            // token private and gated repos accept
	log      []string          // "METHOD path range" per request
	auth     []string          // Authorization header per request
	cutAfter map[string]int64  // content sha -> cut the connection after n bytes, once
	corrupt  map[string]bool   // content sha -> serve altered bytes
	noRange  bool              // content server ignores Range
	outage   bool              // every request answers 503
	etags    map[string]string // "org/name/file" -> etag override on HEAD
	ghosts   map[string]bool   // "org/name/file" listed but answering 404 on resolve
}

// Repo is one repository. Set Gated or Private before the first request
// that reads it.
type Repo struct {
	Commit  string            // derived from the repository's id
	Files   map[string][]byte // path in the repository -> content
	Gated   bool              // needs the hub's token (403 GatedRepo without)
	Private bool              // needs the hub's token (401 RepoNotFound without)
}

// New starts a hub that tb closes when it ends.
func New(tb testing.TB) *Hub {
	tb.Helper()
	h := &Hub{
		repos:    map[string]*Repo{},
		moved:    map[string]string{},
		cutAfter: map[string]int64{},
		corrupt:  map[string]bool{},
		etags:    map[string]string{},
		ghosts:   map[string]bool{},
	}
	h.srv = httptest.NewServer(h)
	tb.Cleanup(h.srv.Close)
	return h
}

// URL is the hub's endpoint (what HF_ENDPOINT is set to).
func (h *Hub) URL() string { return h.srv.URL }

// Client is an HTTP client for the hub.
func (h *Hub) Client() *http.Client { return h.srv.Client() }

// Close stops the hub (requests then fail as with a hub that is down).
func (h *Hub) Close() { h.srv.Close() }

// AddRepo registers a repository ("org/name", or a one-part legacy id) at
// a commit derived from its id.
func (h *Hub) AddRepo(id string, files map[string][]byte) *Repo {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := sha1.Sum([]byte(id))
	r := &Repo{Commit: hex.EncodeToString(sum[:]), Files: files}
	h.repos[id] = r
	return r
}

// Move makes old (a legacy id such as "gpt2", or a repository's former
// name) redirect to current, which AddRepo registers.
func (h *Hub) Move(old, current string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.moved[old] = current
}

// SetToken sets the access token private and gated repositories accept.
func (h *Hub) SetToken(tok string) { h.with(func() { h.token = tok }) }

// SetOutage makes every request answer 503 while on.
func (h *Hub) SetOutage(on bool) { h.with(func() { h.outage = on }) }

// SetNoRange makes the content server ignore Range headers.
func (h *Hub) SetNoRange(on bool) { h.with(func() { h.noRange = on }) }

// CutAfter makes the next download of the content with this SHA-256 break
// off after n bytes.
func (h *Hub) CutAfter(sha256 string, n int64) { h.with(func() { h.cutAfter[sha256] = n }) }

// Corrupt makes the content server alter the content with this SHA-256.
func (h *Hub) Corrupt(sha256 string) { h.with(func() { h.corrupt[sha256] = true }) }

// SetETag overrides the ETag answered for "org/name/file".
func (h *Hub) SetETag(file, etag string) { h.with(func() { h.etags[file] = etag }) }

// Ghost keeps "org/name/file" in the listing but answers 404 on resolve.
func (h *Hub) Ghost(file string) { h.with(func() { h.ghosts[file] = true }) }

func (h *Hub) with(f func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	f()
}

// Requests lists the requests served so far, "METHOD path [range]".
func (h *Hub) Requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

// Auth lists the Authorization header of each request served so far.
func (h *Hub) Auth() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.auth)
}

// ResetLog forgets the requests served so far.
func (h *Hub) ResetLog() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log, h.auth = nil, nil
}

func isLFS(name string) bool {
	return strings.HasSuffix(name, ".gguf") || strings.HasSuffix(name, ".safetensors")
}

// SHA256 is the hex SHA-256 of b: the hub's etag of an LFS file.
func SHA256(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// GitBlobID is the git blob id of b: the hub's etag of a plain file.
func GitBlobID(b []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(b))
	s.Write(b)
	return hex.EncodeToString(s.Sum(nil))
}

// Payload returns n deterministic bytes that differ per seed.
func Payload(seed byte, n int) []byte {
	b := make([]byte, n)
	x := uint32(seed)*2654435761 + 1
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = byte(x)
	}
	return b
}

func (h *Hub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.log = append(h.log, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("Range")))
	h.auth = append(h.auth, r.Header.Get("Authorization"))
	outage := h.outage
	h.mu.Unlock()
	if outage {
		http.Error(w, "upstream unavailable", http.StatusServiceUnavailable)
		return
	}
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/api/models/"):
		h.serveInfo(w, r, strings.TrimPrefix(p, "/api/models/"))
	case strings.HasPrefix(p, "/cdn/"):
		h.serveContent(w, r, strings.TrimPrefix(p, "/cdn/"))
	default:
		h.serveResolve(w, r, strings.TrimPrefix(p, "/"))
	}
}

func hubError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("X-Error-Code", code)
	w.Header().Set("X-Error-Message", msg)
	w.WriteHeader(status)
	fmt.Fprintf(w, `{"error":%q}`, msg)
}

// splitRepo splits "org/name/rest" or "legacy/rest" into the repository id
// and the rest, where action ("revision" or "resolve") follows the id.
func splitRepo(p, action string) (id, rest string, ok bool) {
	parts := strings.Split(p, "/")
	for n := 1; n <= 2 && n < len(parts); n++ {
		if parts[n] == action {
			return strings.Join(parts[:n], "/"), strings.Join(parts[n+1:], "/"), true
		}
	}
	return "", "", false
}

// redirect answers a request for a moved repository with a relative 307 to
// its current id, as the hub does; it reports whether it did.
func (h *Hub) redirect(w http.ResponseWriter, r *http.Request, prefix, id string) bool {
	h.mu.Lock()
	to, ok := h.moved[id]
	h.mu.Unlock()
	if !ok {
		return false
	}
	loc := prefix + to + strings.TrimPrefix(r.URL.Path, prefix+id)
	if r.URL.RawQuery != "" {
		loc += "?" + r.URL.RawQuery
	}
	w.Header().Set("Location", loc)
	w.WriteHeader(http.StatusTemporaryRedirect)
	return true
}

// repo looks up and authorizes a repository, answering the error itself.
func (h *Hub) repo(w http.ResponseWriter, r *http.Request, name, rev string) *Repo {
	h.mu.Lock()
	repo := h.repos[name]
	token := h.token
	h.mu.Unlock()
	switch {
	case repo == nil:
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
	case repo.Gated && r.Header.Get("Authorization") != "Bearer "+token:
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+name+" is restricted")
	case repo.Private && r.Header.Get("Authorization") != "Bearer "+token:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
	case rev != "main" && rev != repo.Commit:
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
	default:
		return repo
	}
	return nil
}

func (h *Hub) serveInfo(w http.ResponseWriter, r *http.Request, rest string) {
	id, rev, ok := splitRepo(rest, "revision")
	if !ok || rev == "" || strings.Contains(rev, "/") || r.URL.Query().Get("blobs") != "true" {
		http.NotFound(w, r)
		return
	}
	if h.redirect(w, r, "/api/models/", id) {
		return
	}
	repo := h.repo(w, r, id, rev)
	if repo == nil {
		return
	}
	type lfs struct {
		SHA256      string `json:"sha256"`
		Size        int    `json:"size"`
		PointerSize int    `json:"pointerSize"`
	}
	type sibling struct {
		RFilename string `json:"rfilename"`
		Size      int    `json:"size"`
		BlobID    string `json:"blobId"`
		LFS       *lfs   `json:"lfs,omitempty"`
	}
	var sibs []sibling
	for name, data := range repo.Files {
		s := sibling{RFilename: name, Size: len(data), BlobID: GitBlobID(data)}
		if isLFS(name) {
			s.LFS = &lfs{SHA256: SHA256(data), Size: len(data), PointerSize: 134}
		}
		sibs = append(sibs, s)
	}
	slices.SortFunc(sibs, func(a, b sibling) int { return strings.Compare(a.RFilename, b.RFilename) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": id, "sha": repo.Commit, "siblings": sibs})
}

func (h *Hub) serveResolve(w http.ResponseWriter, r *http.Request, p string) {
	id, rest, ok := splitRepo(p, "resolve")
	rev, file, _ := strings.Cut(rest, "/")
	if !ok || rev == "" || file == "" {
		http.NotFound(w, r)
		return
	}
	if h.redirect(w, r, "/", id) {
		return
	}
	repo := h.repo(w, r, id, rev)
	if repo == nil {
		return
	}
	data, ok := repo.Files[file]
	key := id + "/" + file
	h.mu.Lock()
	ghost, etag := h.ghosts[key], h.etags[key]
	h.mu.Unlock()
	if !ok || ghost {
		hubError(w, http.StatusNotFound, "EntryNotFound", file+" does not exist on \"main\"")
		return
	}
	w.Header().Set("X-Repo-Commit", repo.Commit)
	if !isLFS(file) {
		w.Header().Set("ETag", `"`+cmp.Or(etag, GitBlobID(data))+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	sum := SHA256(data)
	w.Header().Set("X-Linked-Etag", `"`+cmp.Or(etag, sum)+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
	w.Header().Set("Location", h.srv.URL+"/cdn/"+sum)
	w.WriteHeader(http.StatusFound)
}

func (h *Hub) serveContent(w http.ResponseWriter, r *http.Request, sum string) {
	h.mu.Lock()
	var data []byte
	for _, repo := range h.repos {
		for _, d := range repo.Files {
			if SHA256(d) == sum {
				data = d
			}
		}
	}
	cut := h.cutAfter[sum]
	delete(h.cutAfter, sum)
	corrupt, noRange := h.corrupt[sum], h.noRange
	h.mu.Unlock()
	if data == nil {
		http.NotFound(w, r)
		return
	}
	if corrupt {
		data = bytes.Clone(data)
		data[len(data)/2] ^= 0xff
	}
	if cut > 0 {
		// Promise everything, send cut bytes, drop the connection.
		w.Header().Set("Content-Length", strconv.Itoa(len(data)))
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(data[:cut])
		conn, buf, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = buf.Flush()
			_ = conn.Close()
		}
		return
	}
	if noRange {
		r.Header.Del("Range")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
}
