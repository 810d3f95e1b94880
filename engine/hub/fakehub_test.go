package hub

import (
	"bytes"
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

// fakeHub implements the hub endpoints the resolver uses, the way the real
// hub answers them: the revision API with ?blobs=true, HEAD/GET of
// /{repo}/resolve/{rev}/{file} (LFS files redirect to a content server
// with X-Linked-Etag; plain files answer with their git blob id as ETag),
// and the content server itself, which honours Range.
type fakeHub struct {
	srv *httptest.Server

	mu       sync.Mutex
	repos    map[string]*fakeRepo
	token    string            // token private repos accept
	log      []string          // "METHOD path range" per request
	auth     []string          // Authorization header per request
	cutAfter map[string]int64  // content sha -> cut the connection after n bytes, once
	corrupt  map[string]bool   // content sha -> serve altered bytes
	noRange  bool              // content server ignores Range
	outage   bool              // every request answers 503
	etags    map[string]string // "org/name/file" -> etag override on HEAD
	ghosts   map[string]bool   // "org/name/file" listed but answering 404 on resolve
}

type fakeRepo struct {
	commit  string
	files   map[string][]byte
	gated   bool
	private bool
}

func newFakeHub(t *testing.T) *fakeHub {
	t.Helper()
	h := &fakeHub{
		repos:    map[string]*fakeRepo{},
		cutAfter: map[string]int64{},
		corrupt:  map[string]bool{},
		etags:    map[string]string{},
		ghosts:   map[string]bool{},
	}
	h.srv = httptest.NewServer(h)
	t.Cleanup(h.srv.Close)
	return h
}

// addRepo registers a repository at a commit derived from its name.
func (h *fakeHub) addRepo(name string, files map[string][]byte) *fakeRepo {
	h.mu.Lock()
	defer h.mu.Unlock()
	sum := sha1.Sum([]byte(name))
	r := &fakeRepo{commit: hex.EncodeToString(sum[:]), files: files}
	h.repos[name] = r
	return r
}

func (h *fakeHub) requests() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.log)
}

func (h *fakeHub) resetLog() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.log, h.auth = nil, nil
}

func isLFS(name string) bool {
	return strings.HasSuffix(name, ".gguf") || strings.HasSuffix(name, ".safetensors")
}

func sha256hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func gitBlobID(b []byte) string {
	s := sha1.New()
	fmt.Fprintf(s, "blob %d\x00", len(b))
	s.Write(b)
	return hex.EncodeToString(s.Sum(nil))
}

func (h *fakeHub) ServeHTTP(w http.ResponseWriter, r *http.Request) {
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

// repo looks up and authorizes a repository, answering the error itself.
func (h *fakeHub) repo(w http.ResponseWriter, r *http.Request, name, rev string) *fakeRepo {
	h.mu.Lock()
	repo := h.repos[name]
	token := h.token
	h.mu.Unlock()
	switch {
	case repo == nil:
		hubError(w, http.StatusNotFound, "RepoNotFound", "Repository not found")
	case repo.gated && r.Header.Get("Authorization") != "Bearer "+token:
		hubError(w, http.StatusForbidden, "GatedRepo", "Access to model "+name+" is restricted")
	case repo.private && r.Header.Get("Authorization") != "Bearer "+token:
		hubError(w, http.StatusUnauthorized, "RepoNotFound", "Repository not found")
	case rev != "main" && rev != repo.commit:
		hubError(w, http.StatusNotFound, "RevisionNotFound", "Invalid rev id: "+rev)
	default:
		return repo
	}
	return nil
}

func (h *fakeHub) serveInfo(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 4) // org, name, "revision", rev
	if len(parts) != 4 || parts[2] != "revision" || r.URL.Query().Get("blobs") != "true" {
		http.NotFound(w, r)
		return
	}
	repo := h.repo(w, r, parts[0]+"/"+parts[1], parts[3])
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
	for name, data := range repo.files {
		s := sibling{RFilename: name, Size: len(data), BlobID: gitBlobID(data)}
		if isLFS(name) {
			s.LFS = &lfs{SHA256: sha256hex(data), Size: len(data), PointerSize: 134}
		}
		sibs = append(sibs, s)
	}
	slices.SortFunc(sibs, func(a, b sibling) int { return strings.Compare(a.RFilename, b.RFilename) })
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"id": parts[0] + "/" + parts[1], "sha": repo.commit, "siblings": sibs})
}

func (h *fakeHub) serveResolve(w http.ResponseWriter, r *http.Request, rest string) {
	parts := strings.SplitN(rest, "/", 5) // org, name, "resolve", rev, file
	if len(parts) != 5 || parts[2] != "resolve" {
		http.NotFound(w, r)
		return
	}
	repo := h.repo(w, r, parts[0]+"/"+parts[1], parts[3])
	if repo == nil {
		return
	}
	file := parts[4]
	data, ok := repo.files[file]
	key := parts[0] + "/" + parts[1] + "/" + file
	h.mu.Lock()
	ghost, etag := h.ghosts[key], h.etags[key]
	h.mu.Unlock()
	if !ok || ghost {
		hubError(w, http.StatusNotFound, "EntryNotFound", file+" does not exist on \"main\"")
		return
	}
	w.Header().Set("X-Repo-Commit", repo.commit)
	if !isLFS(file) {
		w.Header().Set("ETag", `"`+firstNonEmpty(etag, gitBlobID(data))+`"`)
		http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(data))
		return
	}
	sum := sha256hex(data)
	w.Header().Set("X-Linked-Etag", `"`+firstNonEmpty(etag, sum)+`"`)
	w.Header().Set("X-Linked-Size", strconv.Itoa(len(data)))
	w.Header().Set("Location", h.srv.URL+"/cdn/"+sum)
	w.WriteHeader(http.StatusFound)
}

func (h *fakeHub) serveContent(w http.ResponseWriter, r *http.Request, sum string) {
	h.mu.Lock()
	var data []byte
	for _, repo := range h.repos {
		for _, d := range repo.files {
			if sha256hex(d) == sum {
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

// payload returns n deterministic bytes that differ per seed.
func payload(seed byte, n int) []byte {
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
