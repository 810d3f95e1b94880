package hub

import (
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
)

// testResolver points a resolver at h with a fresh cache.
func testResolver(t *testing.T, h *fakeHub) *Resolver {
	t.Helper()
	dir := t.TempDir()
	return &Resolver{
		Endpoint:   h.srv.URL,
		CacheDir:   filepath.Join(dir, "hub"),
		ConvertDir: filepath.Join(dir, "converted"),
		Client:     h.srv.Client(),
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
func ggufRepo(h *fakeHub) (*fakeRepo, map[string][]byte) {
	files := map[string][]byte{
		"README.md":                         payload(1, 100),
		"config.json":                       []byte(`{"model_type":"llama"}`),
		"tiny-Q4_K_M.gguf":                  payload(2, 3<<20+123),
		"tiny-Q8_0.gguf":                    payload(3, 5<<20+7),
		"tiny-F16.gguf":                     payload(4, 9<<20),
		"mmproj-tiny-Q8_0.gguf":             payload(5, 1000),
		"sub/tiny-IQ4_XS.gguf":              payload(6, 2000),
		"big/tiny-Q6_K-00001-of-00002.gguf": payload(7, 500),
		"big/tiny-Q6_K-00002-of-00002.gguf": payload(8, 500),
	}
	return h.addRepo("acme/tiny-GGUF", files), files
}

func TestResolveFreshDownloadAndCacheLayout(t *testing.T) {
	h := newFakeHub(t)
	repo, files := ggufRepo(h)
	h.token = "secret"
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
	if res.File != "tiny-Q8_0.gguf" || res.Commit != repo.commit || res.Converted || res.Local {
		t.Errorf("resolution %+v", res)
	}
	if got := readFile(t, res.Path); sha256hex(got) != sha256hex(want) {
		t.Error("downloaded content differs")
	}
	if last != [2]int64{int64(len(want)), int64(len(want))} {
		t.Errorf("last progress %v, want done = total = %d", last, len(want))
	}
	for _, a := range h.auth {
		if a != "Bearer secret" {
			t.Errorf("Authorization %q, want the token on every hub request", a)
		}
	}

	// huggingface_hub's layout: blobs named by etag, a relative symlink in
	// the snapshot, refs/main holding the commit.
	repoDir := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF")
	blob := filepath.Join(repoDir, "blobs", sha256hex(want))
	if fi, err := os.Lstat(blob); err != nil || !fi.Mode().IsRegular() {
		t.Fatalf("blob %s: %v", blob, err)
	}
	snap := filepath.Join(repoDir, "snapshots", repo.commit, "tiny-Q8_0.gguf")
	if res.Path != snap {
		t.Errorf("path %s, want %s", res.Path, snap)
	}
	target, err := os.Readlink(snap)
	if err != nil {
		t.Fatal(err)
	}
	if target != filepath.Join("..", "..", "blobs", sha256hex(want)) {
		t.Errorf("symlink target %q", target)
	}
	if ref := readFile(t, filepath.Join(repoDir, "refs", "main")); string(ref) != repo.commit {
		t.Errorf("refs/main = %q, want %q", ref, repo.commit)
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
	if target != filepath.Join("..", "..", "..", "blobs", sha256hex(files["sub/tiny-IQ4_XS.gguf"])) {
		t.Errorf("nested symlink target %q", target)
	}
}

func TestResolveFromCache(t *testing.T) {
	h := newFakeHub(t)
	_, files := ggufRepo(h)
	r := testResolver(t, h)
	ctx := context.Background()
	first, err := r.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("online, cached", func(t *testing.T) {
		h.resetLog()
		p, err := r.Resolve(ctx, "acme/tiny-GGUF:q4_k_m")
		if err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		if reqs := h.requests(); len(reqs) != 1 || !strings.HasPrefix(reqs[0], "GET /api/models/") {
			t.Errorf("requests %v, want only the revision lookup", reqs)
		}
	})

	t.Run("HF_HUB_OFFLINE", func(t *testing.T) {
		h.resetLog()
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
		if reqs := h.requests(); len(reqs) != 0 {
			t.Errorf("offline resolver made requests: %v", reqs)
		}
	})

	t.Run("hub outage (503)", func(t *testing.T) {
		h.mu.Lock()
		h.outage = true
		h.mu.Unlock()
		defer func() { h.mu.Lock(); h.outage = false; h.mu.Unlock() }()
		if p, err := r.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M"); err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		var he *HTTPError
		if _, err := r.Resolve(ctx, "acme/tiny-GGUF:F16"); !errors.As(err, &he) || he.StatusCode != 503 || !errors.Is(err, ErrNotCached) {
			t.Errorf("uncached during an outage: %v", err)
		}
	})

	t.Run("hub unreachable", func(t *testing.T) {
		h.srv.Close()
		p, err := r.Resolve(ctx, "acme/tiny-GGUF:Q4_K_M")
		if err != nil || p != first {
			t.Fatalf("%s, %v", p, err)
		}
		if sha256hex(readFile(t, p)) != sha256hex(files["tiny-Q4_K_M.gguf"]) {
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
	h := newFakeHub(t)
	repo, files := ggufRepo(h)
	r := testResolver(t, h)
	data := files["tiny-Q8_0.gguf"]
	repoDir := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF")
	blob := filepath.Join(repoDir, "blobs", sha256hex(data))
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
	if n := countPrefix(h.requests(), "GET /cdn/"); n != 0 {
		t.Errorf("downloaded a blob that was cached (%d GETs)", n)
	}
	if got, _ := filepath.EvalSymlinks(p); got != blob {
		t.Errorf("%s resolves to %s, want %s", p, got, blob)
	}
	if filepath.Base(filepath.Dir(p)) != repo.commit {
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
			h := newFakeHub(t)
			_, files := ggufRepo(h)
			data := files["tiny-Q8_0.gguf"]
			sum := sha256hex(data)
			h.cutAfter[sum] = tc.cut
			h.noRange = tc.noRange
			r := testResolver(t, h)
			blob := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF", "blobs", sum)
			if tc.partial > 0 {
				if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
					t.Fatal(err)
				}
				// Garbage where the server ignores Range, to prove a restart.
				part := data[:tc.partial]
				if tc.noRange {
					part = payload(99, int(tc.partial))
				}
				if err := os.WriteFile(blob+".incomplete", part, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			p, err := r.Resolve(context.Background(), "acme/tiny-GGUF:Q8_0")
			if err != nil {
				t.Fatal(err)
			}
			if sha256hex(readFile(t, p)) != sum {
				t.Fatal("resumed file has the wrong SHA-256")
			}
			reqs := h.requests()
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
	h := newFakeHub(t)
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
	if sha256hex(readFile(t, paths[0])) != sha256hex(files["tiny-Q8_0.gguf"]) {
		t.Error("content differs")
	}
	if n := countPrefix(h.requests(), "GET /cdn/"); n != 1 {
		t.Errorf("%d downloads of one blob, want 1 (the lock serializes them)", n)
	}
}

func TestResolveCancelKeepsPartial(t *testing.T) {
	h := newFakeHub(t)
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
	part := filepath.Join(r.CacheDir, "models--acme--tiny-GGUF", "blobs", sha256hex(files["tiny-Q8_0.gguf"])+".incomplete")
	if fi, err := os.Stat(part); err != nil || fi.Size() == 0 {
		t.Errorf("partial download not kept for resuming: %v", err)
	}
}

func TestResolveChecksumMismatch(t *testing.T) {
	h := newFakeHub(t)
	repo, files := ggufRepo(h)
	sum := sha256hex(files["tiny-Q8_0.gguf"])
	h.corrupt[sum] = true
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
		filepath.Join(repoDir, "snapshots", repo.commit, "tiny-Q8_0.gguf"),
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
	h := newFakeHub(t)
	ggufRepo(h)
	h.addRepo("acme/gated", map[string][]byte{"m-Q8_0.gguf": payload(1, 10)}).gated = true
	h.addRepo("acme/private", map[string][]byte{"m-Q8_0.gguf": payload(2, 10)}).private = true
	h.addRepo("acme/ghost", map[string][]byte{"m-Q8_0.gguf": payload(3, 10)})
	h.ghosts["acme/ghost/m-Q8_0.gguf"] = true
	h.token = "good"
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
	h := newFakeHub(t)
	h.addRepo("evil/names", map[string][]byte{"../../../escape-Q8_0.gguf": payload(1, 100)})
	h.addRepo("evil/etag", map[string][]byte{"m-Q8_0.gguf": payload(2, 100)})
	h.etags["evil/etag/m-Q8_0.gguf"] = "../../../../escape"
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
	if n := countPrefix(h.requests(), "GET /cdn/"); n != 0 {
		t.Errorf("downloaded %d files for unsafe names", n)
	}
}

func TestResolveSplitAndQuant(t *testing.T) {
	h := newFakeHub(t)
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
		if res.File != tc.file || sha256hex(readFile(t, res.Path)) != sha256hex(files[tc.file]) {
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
	if _, err := r.Resolve(context.Background(), "plain-name"); !errors.Is(err, ErrInvalidRef) {
		t.Errorf("bare name: %v", err)
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
