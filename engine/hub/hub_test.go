package hub

import (
	"cmp"
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/evomerge/evomerge/engine/hub/hubtest"
)

// testResolver points a resolver at h with a fresh cache.
func testResolver(t *testing.T, h *hubtest.Hub) *Resolver {
	t.Helper()
	dir := t.TempDir()
	return &Resolver{
		Endpoint:   h.URL(),
		CacheDir:   filepath.Join(dir, "hub"),
		ConvertDir: filepath.Join(dir, "converted"),
		Client:     h.Client(),
	}
}

func countPrefix(reqs []string, prefix string) int {
	n := 0
	for _, r := range reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ggufRepo is a typical quantized repository.
func ggufRepo(h *hubtest.Hub) (*hubtest.Repo, map[string][]byte) {
	files := map[string][]byte{
		"README.md":                         hubtest.Payload(1, 100),
		"config.json":                       []byte(`{"model_type":"llama"}`),
		"tiny-Q4_K_M.gguf":                  hubtest.Payload(2, 3<<20+123),
		"tiny-Q8_0.gguf":                    hubtest.Payload(3, 5<<20+7),
		"tiny-F16.gguf":                     hubtest.Payload(4, 9<<20),
		"mmproj-tiny-Q8_0.gguf":             hubtest.Payload(5, 1000),
		"sub/tiny-IQ4_XS.gguf":              hubtest.Payload(6, 2000),
		"big/tiny-Q6_K-00001-of-00002.gguf": hubtest.Payload(7, 500),
		"big/tiny-Q6_K-00002-of-00002.gguf": hubtest.Payload(8, 500),
	}
	return h.AddRepo("acme/tiny-GGUF", files), files
}

func TestResolveFreshDownloadAndCacheLayout(t *testing.T) {
	h := hubtest.New(t)
	repo, files := ggufRepo(h)
	h.SetToken("secret")
	r := testResolver(t, h)
	r.Token = "secret"
	var mu sync.Mutex
	var last [2]int64
	r.Progress = func(file string, done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		if file != "tiny-Q8_0.gguf" {
			t.Errorf("progress for %q", file)
		}
		last = [2]int64{done, total}
	}

	res, err := r.ResolveInfo(context.Background(), "acme/tiny-GGUF")
	if err != nil {
		t.Fatal(err)
	}
	want := files["tiny-Q8_0.gguf"]
	if res.File != "tiny-Q8_0.gguf" || res.Commit != repo.Commit || res.Converted || res.Local {
		t.Errorf("resolution %+v", res)
	}
	if got := readFile(t, res.Path); hubtest.SHA256(got) != hubtest.SHA256(want) {
		t.Error("downloaded content differs")
	}
	if last != [2]int64{int64(len(want)), int64(len(want))} {
		t.Errorf("last progress %v, want done = total = %d", last, len(want))
	}
	for _, a := range h.Auth() {
		if a != "Bearer secret" {
			t.Errorf("Authorization %q, want the token on every hub request", a)
		}
	}

	// huggingface_hub's layout: blobs named by etag, a relative symlink in
	// the snapshot, refs/main holding the commit.
	repoDir := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF")
	blob := filepath.Join(repoDir, "blobs", hubtest.SHA256(want))
	if fi, err := os.Lstat(blob); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("blob %s: %v", blob, err)
	}
	snap := filepath.Join(repoDir, "snapshots", repo.Commit, "tiny-Q8_0.gguf")
	if res.Path != snap {
		t.Errorf("path %s, want %s", res.Path, snap)
	}
	target, err := os.Readlink(snap)
	if err != nil {
		t.Fatal(err)
	}
	if target != filepath.Join("..", "..", "blobs", hubtest.SHA256(want)) {
		t.Errorf("symlink target %q", target)
	}
	if ref := readFile(t, filepath.Join(repoDir, "refs", "main")); string(ref) != repo.Commit {
		t.Errorf("refs/main = %q, want %q", ref, repo.Commit)
	}
	if m, _ := filepath.Glob(filepath.Join(repoDir, "blobs", "*.incomplete")); len(m) > 0 {
		t.Errorf("left behind %v", m)
	}

	// A file in a subdirectory links with one more "..".
	r.Progress = nil
	res, err = r.ResolveInfo(context.Background(), "acme/tiny-GGUF/sub/tiny-IQ4_XS.gguf")
	if err != nil {
		t.Fatal(err)
	}
	target, _ = os.Readlink(res.Path)
	if target != filepath.Join("..", "..", "..", "blobs", hubtest.SHA256(files["sub/tiny-IQ4_XS.gguf"])) {
		t.Errorf("nested symlink target %q", target)
	}
}

func TestResolveFromCache(t *testing.T) {
	h := hubtest.New(t)
	_, files := ggufRepo(h)
	r := testResolver(t, h)
	ctx := context.Background()
	first, err := r.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("online, cached", func(t *testing.T) {
		h.ResetLog()
		p, err := r.Resolve(ctx, "acme/tiny-GGUF:q4_k_m")
		if err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		if reqs := h.Requests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET /api/models/") {
			t.Errorf("requests %v, want only the revision lookup", reqs)
		}
	})

	t.Run("HF_HUB_OFFLINE", func(t *testing.T) {
		h.ResetLog()
		off := *r
		off.Offline = true
		p, err := off.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M")
		if err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		// The default choice works among cached files.
		if p, err := off.Resolve(ctx, "acme/tiny-GGUF"); err != nil || p != first {
			t.Fatalf("default offline: %s, %v", p, err)
		}
		_, err = off.Resolve(ctx, "acme/tiny-GGUF:F16")
		if !errors.Is(err, ErrNotCached) || !strings.Contains(err.Error(), "HF_HUB_OFFLINE") {
			t.Errorf("uncached quant offline: %v", err)
		}
		_, err = off.Resolve(ctx, "acme/other")
		if !errors.Is(err, ErrNotCached) {
			t.Errorf("uncached repo offline: %v", err)
		}
		if reqs := h.Requests(); len(reqs) != 0 {
			t.Errorf("offline resolver made requests: %v", reqs)
		}
	})

	t.Run("hub outage (503)", func(t *testing.T) {
		h.SetOutage(true)
		defer h.SetOutage(false)
		if p, err := r.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M"); err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		var he *HTTPError
		if _, err := r.Resolve(ctx, "acme/tiny-GGUF:F16"); !errors.As(err, &he) || he.StatusCode != 503 || !errors.Is(err, ErrNotCached) {
			t.Errorf("uncached during an outage: %v", err)
		}
	})

	t.Run("hub unreachable", func(t *testing.T) {
		h.Close()
		p, err := r.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M")
		if err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		if hubtest.SHA256(readFile(t, p)) != hubtest.SHA256(files["tiny-Q4_K_M.gguf"]) {
			t.Error("cached content differs")
		}
		_, err = r.Resolve(ctx, "acme/tiny-GGUF:F16")
		if !errors.Is(err, ErrNetwork) || !errors.Is(err, ErrNotCached) {
			t.Errorf("uncached with hub down: %v, want ErrNetwork and ErrNotCached", err)
		}
	})
}

// A cache written by huggingface_hub (blob + relative link + ref) is used
// as is, and a blob it downloaded is linked rather than downloaded again.
func TestResolveReusesForeignCache(t *testing.T) {
	h := hubtest.New(t)
	repo, files := ggufRepo(h)
	r := testResolver(t, h)
	data := files["tiny-Q8_0.gguf"]
	repoDir := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF")
	blob := filepath.Join(repoDir, "blobs", hubtest.SHA256(data))
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(blob, data, 0o644); err != nil {
		t.Fatal(err)
	}
	// No snapshot link yet: the HEAD finds the etag, the blob is reused.
	p, err := r.Resolve(context.Background(), "acme/tiny-GGUF")
	if err != nil {
		t.Fatal(err)
	}
	if n := countPrefix(h.Requests(), "GET /cdn/"); n != 0 {
		t.Errorf("downloaded a blob that was cached (%d GETs)", n)
	}
	if got, _ := filepath.EvalSymlinks(p); got != blob {
		t.Errorf("%s resolves to %s, want %s", p, got, blob)
	}
	if filepath.Base(filepath.Dir(p)) != repo.Commit {
		t.Errorf("snapshot dir %s", p)
	}
}

func TestResolveResume(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cut     int64 // hub drops the connection after this many bytes, once
		partial int64 // bytes left by an earlier process in .incomplete
		noRange bool  // server answers Range with 200
	}{
		{name: "connection cut mid-file", cut: 1<<20 + 5},
		{name: "partial file from an earlier run", partial: 2<<20 + 1},
		{name: "server ignores Range", partial: 1 << 20, noRange: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := hubtest.New(t)
			_, files := ggufRepo(h)
			data := files["tiny-Q8_0.gguf"]
			sum := hubtest.SHA256(data)
			h.CutAfter(sum, tc.cut)
			h.SetNoRange(tc.noRange)
			r := testResolver(t, h)
			blob := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF", "blobs", sum)
			if tc.partial > 0 {
				if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
					t.Fatal(err)
				}
				// Garbage where the server ignores Range, to prove a restart.
				part := data[:tc.partial]
				if tc.noRange {
					part = hubtest.Payload(99, int(tc.partial))
				}
				if err := os.WriteFile(blob+".incomplete", part, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := r.Resolve(context.Background(), "acme/tiny-GGUF:Q8_0")
			if err != nil {
				t.Fatal(err)
			}
			if hubtest.SHA256(readFile(t, p)) != sum {
				t.Fatal("resumed file has the wrong SHA-256")
			}
			reqs := h.Requests()
			var ranges []string
			for _, q := range reqs {
				if strings.HasPrefix(q, "GET /cdn/") {
					ranges = append(ranges, strings.TrimPrefix(strings.TrimPrefix(q, "GET /cdn/"+sum), " "))
				}
			}
			var want []string
			switch {
			case tc.cut > 0:
				want = []string{"", "bytes=1048581-"}
			default:
				want = []string{"bytes=" + strconv.FormatInt(tc.partial, 10) + "-"}
			}
			if !slices.Equal(ranges, want) {
				t.Errorf("content requests' Range headers %q, want %q (all requests: %v)", ranges, want, reqs)
			}
			if _, err := os.Stat(blob + ".incomplete"); !os.IsNotExist(err) {
				t.Errorf(".incomplete left behind: %v", err)
			}
		})
	}
}

func TestResolveConcurrent(t *testing.T) {
	h := hubtest.New(t)
	_, files := ggufRepo(h)
	r := testResolver(t, h)
	var wg sync.WaitGroup
	paths := make([]string, 4)
	errs := make([]error, 4)
	for i := range paths {
		wg.Go(func() { paths[i], errs[i] = r.Resolve(context.Background(), "acme/tiny-GGUF") })
	}
	wg.Wait()
	for i := range paths {
		if errs[i] != nil || paths[i] != paths[0] {
			t.Fatalf("resolver %d: %s, %v", i, paths[i], errs[i])
		}
	}
	if hubtest.SHA256(readFile(t, paths[0])) != hubtest.SHA256(files["tiny-Q8_0.gguf"]) {
		t.Error("content differs")
	}
	if n := countPrefix(h.Requests(), "GET /cdn/"); n != 1 {
		t.Errorf("%d downloads of one blob, want 1 (the lock serializes them)", n)
	}
}

func TestResolveCancelKeepsPartial(t *testing.T) {
	h := hubtest.New(t)
	_, files := ggufRepo(h)
	r := testResolver(t, h)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.Progress = func(_ string, done, _ int64) {
		if done >= 1<<20 {
			cancel()
		}
	}
	_, err := r.Resolve(ctx, "acme/tiny-GGUF:Q8_0")
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	part := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF", "blobs", hubtest.SHA256(files["tiny-Q8_0.gguf"])+".incomplete")
	if fi, err := os.Stat(part); err != nil || fi.Size() == 0 {
		t.Errorf("partial download not kept for resuming: %v", err)
	}
}

func TestResolveChecksumMismatch(t *testing.T) {
	h := hubtest.New(t)
	repo, files := ggufRepo(h)
	sum := hubtest.SHA256(files["tiny-Q8_0.gguf"])
	h.Corrupt(sum)
	r := testResolver(t, h)
	_, err := r.Resolve(context.Background(), "acme/tiny-GGUF:Q8_0")
	var ce *ChecksumError
	if !errors.Is(err, ErrChecksum) || !errors.As(err, &ce) || ce.Want != sum || ce.File != "tiny-Q8_0.gguf" {
		t.Fatalf("err = %v, want a ChecksumError for %s", err, sum)
	}
	repoDir := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF")
	for _, p := range []string{
		filepath.Join(repoDir, "blobs", sum),
		filepath.Join(repoDir, "blobs", sum+".incomplete"),
		filepath.Join(repoDir, "snapshots", repo.Commit, "tiny-Q8_0.gguf"),
	} {
		if _, err := os.Lstat(p); !os.IsNotExist(err) {
			t.Errorf("%s exists after a checksum mismatch", p)
		}
	}
	// Offline afterwards, nothing is taken for cached.
	off := *r
	off.Offline = true
	if _, err := off.Resolve(context.Background(), "acme/tiny-GGUF:Q8_0"); !errors.Is(err, ErrNotCached) {
		t.Errorf("offline after mismatch: %v", err)
	}
}

func TestResolveHTTPErrors(t *testing.T) {
	h := hubtest.New(t)
	ggufRepo(h)
	h.AddRepo("acme/gated", map[string][]byte{"m-Q8_0.gguf": hubtest.Payload(1, 10)}).Gated = true
	h.AddRepo("acme/private", map[string][]byte{"m-Q8_0.gguf": hubtest.Payload(2, 10)}).Private = true
	h.AddRepo("acme/ghost", map[string][]byte{"m-Q8_0.gguf": hubtest.Payload(3, 10)})
	h.Ghost("acme/ghost/m-Q8_0.gguf")
	h.SetToken("good")
	for _, tc := range []struct {
		ref, token   string
		is, isNot    []error
		status       int
		msgFragments []string
	}{
		{ref: "acme/missing", is: []error{ErrNotFound}, isNot: []error{ErrUnauthorized}, status: 404, msgFragments: []string{"RepoNotFound", "HF_TOKEN"}},
		{ref: "acme/tiny-GGUF@v9", is: []error{ErrNotFound}, status: 404, msgFragments: []string{"RevisionNotFound"}},
		{ref: "acme/tiny-GGUF:nope.gguf", is: []error{ErrNotFound}, msgFragments: []string{"nope.gguf", "tiny-Q8_0.gguf"}},
		{ref: "acme/ghost", is: []error{ErrNotFound}, status: 404, msgFragments: []string{"EntryNotFound"}},
		{ref: "acme/gated", is: []error{ErrUnauthorized}, isNot: []error{ErrNotFound}, status: 403, msgFragments: []string{"gated", "HF_TOKEN"}},
		{ref: "acme/gated", token: "bad", is: []error{ErrUnauthorized}, status: 403},
		{ref: "acme/private", is: []error{ErrUnauthorized, ErrNotFound}, status: 401, msgFragments: []string{"HF_TOKEN"}},
	} {
		t.Run(tc.ref+"/"+tc.token, func(t *testing.T) {
			r := testResolver(t, h)
			r.Token = tc.token
			_, err := r.Resolve(context.Background(), tc.ref)
			if err == nil {
				t.Fatal("no error")
			}
			for _, e := range tc.is {
				if !errors.Is(err, e) {
					t.Errorf("%v: not %v", err, e)
				}
			}
			for _, e := range tc.isNot {
				if errors.Is(err, e) {
					t.Errorf("%v: is %v", err, e)
				}
			}
			var he *HTTPError
			if tc.status != 0 && (!errors.As(err, &he) || he.StatusCode != tc.status) {
				t.Errorf("%v: want an HTTPError with status %d", err, tc.status)
			}
			for _, f := range tc.msgFragments {
				if !strings.Contains(err.Error(), f) {
					t.Errorf("%q does not mention %q", err, f)
				}
			}
		})
	}
	t.Run("private with token", func(t *testing.T) {
		r := testResolver(t, h)
		r.Token = "good"
		if _, err := r.Resolve(context.Background(), "acme/private"); err != nil {
			t.Fatal(err)
		}
	})
}

func TestResolveRefusesUnsafeNames(t *testing.T) {
	h := hubtest.New(t)
	h.AddRepo("evil/names", map[string][]byte{"../../../escape-Q8_0.gguf": hubtest.Payload(1, 100)})
	h.AddRepo("evil/etag", map[string][]byte{"m-Q8_0.gguf": hubtest.Payload(2, 100)})
	h.SetETag("evil/etag/m-Q8_0.gguf", "../../../../escape")
	r := testResolver(t, h)
	for _, ref := range []string{"evil/names", "evil/etag", "evil/names:../../x.gguf", `evil/names:a\b.gguf`, "evil/names:/etc/x.gguf"} {
		if _, err := r.Resolve(context.Background(), ref); !errors.Is(err, ErrUnsafePath) {
			t.Errorf("%s: err = %v, want ErrUnsafePath", ref, err)
		}
	}
	var found []string
	_ = filepath.WalkDir(filepath.Dir(r.CacheDir), func(p string, d os.DirEntry, err error) error {
		if err == nil && strings.Contains(d.Name(), "escape") {
			found = append(found, p)
		}
		return nil
	})
	if len(found) > 0 {
		t.Errorf("wrote %v", found)
	}
	if n := countPrefix(h.Requests(), "GET /cdn/"); n != 0 {
		t.Errorf("downloaded %d files for unsafe names", n)
	}
}

func TestResolveSplitAndQuant(t *testing.T) {
	h := hubtest.New(t)
	_, files := ggufRepo(h)
	r := testResolver(t, h)
	for _, tc := range []struct {
		ref, file string
		err       error
	}{
		{ref: "acme/tiny-GGUF", file: "tiny-Q8_0.gguf"},
		{ref: "acme/tiny-GGUF:f16", file: "tiny-F16.gguf"},
		{ref: "acme/tiny-GGUF:iq4_xs", file: "sub/tiny-IQ4_XS.gguf"},
		{ref: "acme/tiny-GGUF:mmproj-tiny-Q8_0.gguf", file: "mmproj-tiny-Q8_0.gguf"},
		{ref: "acme/tiny-GGUF:Q6_K", err: ErrSplitGGUF},
		{ref: "acme/tiny-GGUF/big/tiny-Q6_K-00001-of-00002.gguf", err: ErrSplitGGUF},
		{ref: "acme/tiny-GGUF:Q2_K", err: ErrNoMatch},
	} {
		res, err := r.ResolveInfo(context.Background(), tc.ref)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("%s: err = %v, want %v", tc.ref, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.ref, err)
			continue
		}
		if res.File != tc.file || hubtest.SHA256(readFile(t, res.Path)) != hubtest.SHA256(files[tc.file]) {
			t.Errorf("%s: got %s, want %s", tc.ref, res.File, tc.file)
		}
	}
}

func TestResolveLocalPath(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "m.gguf")
	if err := os.WriteFile(p, []byte("GGUF"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &Resolver{Endpoint: "http://127.0.0.1:1", CacheDir: t.TempDir()}
	res, err := r.ResolveInfo(context.Background(), p)
	if err != nil || res.Path != p || !res.Local {
		t.Fatalf("%+v, %v", res, err)
	}
	if _, err := r.Resolve(context.Background(), filepath.Join(dir, "missing.gguf")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing local file: %v", err)
	}
	if _, err := r.Resolve(context.Background(), filepath.Join(dir, "missing.gguf")); !errors.Is(err, ErrNoSuchFile) || err.Error() != "no such file" {
		t.Errorf("missing local file: %v", err)
	}
	// A bare name is a legacy hub id; with the hub unreachable and no
	// cache, the error says that it is no local file either.
	_, err = r.Resolve(context.Background(), "plain-name")
	if !errors.Is(err, ErrNoSuchFile) || !errors.Is(err, ErrNetwork) || !strings.HasPrefix(err.Error(), "no such file, and as a Hugging Face reference (repository plain-name): plain-name: hub unreachable") {
		t.Errorf("bare name: %v", err)
	}
	// An explicit reference is reported as a hub failure alone.
	if _, err := r.Resolve(context.Background(), "hf://plain-name"); errors.Is(err, ErrNoSuchFile) || !errors.Is(err, ErrNetwork) {
		t.Errorf("hf://plain-name: %v", err)
	}
	// Not a file and not a reference.
	if _, err := r.Resolve(context.Background(), "org/na me"); !errors.Is(err, ErrNoSuchFile) || !errors.Is(err, ErrInvalidRef) {
		t.Errorf("org/na me: %v", err)
	}
}

func TestNewResolverEnvironment(t *testing.T) {
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, "token"), []byte("hf_fromfile\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		env  map[string]string
		want Resolver
	}{
		{
			env:  map[string]string{"HF_HOME": home, "HF_ENDPOINT": "http://mirror.test/", "HF_HUB_OFFLINE": "1"},
			want: Resolver{Endpoint: "http://mirror.test", Token: "hf_fromfile", CacheDir: filepath.Join(home, "hub"), Offline: true},
		},
		{
			env:  map[string]string{"HF_HOME": home, "HF_TOKEN": "hf_env", "HF_HUB_CACHE": "/c", "HF_HUB_OFFLINE": "no"},
			want: Resolver{Token: "hf_env", CacheDir: "/c"},
		},
		{
			env:  map[string]string{"XDG_CACHE_HOME": "/x", "HUGGINGFACE_HUB_CACHE": "", "HF_HUB_OFFLINE": "true"},
			want: Resolver{CacheDir: "/x/huggingface/hub", Offline: true},
		},
		{
			env:  map[string]string{"HF_HOME": "/h", "HUGGINGFACE_HUB_CACHE": "/legacy"},
			want: Resolver{CacheDir: "/legacy"},
		},
	} {
		r := newResolver(func(k string) string { return tc.env[k] })
		if r.Client == nil {
			t.Error("no HTTP client")
		}
		got := Resolver{Endpoint: r.Endpoint, Token: r.Token, CacheDir: r.CacheDir, Offline: r.Offline}
		if got.Endpoint != tc.want.Endpoint || got.Token != tc.want.Token || got.CacheDir != tc.want.CacheDir || got.Offline != tc.want.Offline {
			t.Errorf("env %v: got %+v, want %+v", tc.env, got, tc.want)
		}
	}
}

func TestResolveDNSFailure(t *testing.T) {
	r := &Resolver{
		Endpoint: "http://hub.test",
		CacheDir: t.TempDir(),
		Client: &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				return nil, &net.OpError{Op: "dial", Net: network, Err: &net.DNSError{Err: "no such host", Name: "hub.test", IsNotFound: true}}
			},
		}},
	}
	_, err := r.Resolve(context.Background(), "acme/tiny-GGUF")
	var dns *net.DNSError
	if !errors.Is(err, ErrNetwork) || !errors.Is(err, ErrNotCached) || !errors.As(err, &dns) {
		t.Fatalf("err = %v, want ErrNetwork, ErrNotCached and the DNS error", err)
	}
}

// TestResolveEveryForm resolves each spelling of a reference against the
// fake hub, which serves the legacy id gpt2 by redirect to its current id
// as the real hub does. Links to huggingface.co and to the endpoint itself
// are fetched from the endpoint.
func TestResolveEveryForm(t *testing.T) {
	h := hubtest.New(t)
	_, files := ggufRepo(h)
	legacy := map[string][]byte{"gpt2-Q8_0.gguf": hubtest.Payload(11, 4000), "gpt2-F16.gguf": hubtest.Payload(12, 8000)}
	h.AddRepo("openai-community/gpt2", legacy)
	h.Move("gpt2", "openai-community/gpt2")
	for _, tc := range []struct {
		ref, repoID string
		want        []byte
	}{
		{ref: "acme/tiny-GGUF", want: files["tiny-Q8_0.gguf"]},
		{ref: "acme/tiny-GGUF:Q4_K_M", want: files["tiny-Q4_K_M.gguf"]},
		{ref: "acme/tiny-GGUF/sub/tiny-IQ4_XS.gguf", want: files["sub/tiny-IQ4_XS.gguf"]},
		{ref: "acme/tiny-GGUF:tiny-F16.gguf", want: files["tiny-F16.gguf"]},
		{ref: "hf:acme/tiny-GGUF:F16", want: files["tiny-F16.gguf"]},
		{ref: "hf://acme/tiny-GGUF", want: files["tiny-Q8_0.gguf"]},
		{ref: "hf.co/acme/tiny-GGUF:Q4_K_M", want: files["tiny-Q4_K_M.gguf"]},
		{ref: "huggingface.co/acme/tiny-GGUF", want: files["tiny-Q8_0.gguf"]},
		{ref: "https://huggingface.co/acme/tiny-GGUF", want: files["tiny-Q8_0.gguf"]},
		{ref: "https://huggingface.co/acme/tiny-GGUF/tree/main", want: files["tiny-Q8_0.gguf"]},
		{ref: "https://huggingface.co/acme/tiny-GGUF/blob/main/tiny-F16.gguf", want: files["tiny-F16.gguf"]},
		{ref: "https://huggingface.co/acme/tiny-GGUF/resolve/main/sub/tiny-IQ4_XS.gguf?download=true", want: files["sub/tiny-IQ4_XS.gguf"]},
		{ref: h.URL() + "/acme/tiny-GGUF/blob/main/tiny-Q4_K_M.gguf", want: files["tiny-Q4_K_M.gguf"]},
		{ref: "gpt2", repoID: "openai-community/gpt2", want: legacy["gpt2-Q8_0.gguf"]},
		{ref: "gpt2:F16", repoID: "openai-community/gpt2", want: legacy["gpt2-F16.gguf"]},
		{ref: "https://huggingface.co/gpt2/blob/main/gpt2-F16.gguf", repoID: "openai-community/gpt2", want: legacy["gpt2-F16.gguf"]},
	} {
		t.Run(tc.ref, func(t *testing.T) {
			r := testResolver(t, h)
			res, err := r.ResolveInfo(context.Background(), tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if got := readFile(t, res.Path); hubtest.SHA256(got) != hubtest.SHA256(tc.want) {
				t.Errorf("resolved %s (%s), not the expected file", res.Path, res.File)
			}
			if want := cmp.Or(tc.repoID, res.Ref.Repo); res.RepoID != want {
				t.Errorf("RepoID %q, want %q", res.RepoID, want)
			}
		})
	}
	t.Run("legacy id missing", func(t *testing.T) {
		_, err := testResolver(t, h).Resolve(context.Background(), "no-such-legacy-model")
		if !errors.Is(err, ErrNotFound) || !errors.Is(err, ErrNoSuchFile) || strings.Contains(err.Error(), "\n") {
			t.Errorf("err = %v", err)
		}
	})
}
