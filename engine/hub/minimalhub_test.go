package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// minimalHub serves one repository, org/model, holding model.gguf with
// content: the revision listing (no hashes) and the resolve URL, whose
// answers carry the content's SHA-256 as X-Linked-Etag when etag is set.
func minimalHub(t *testing.T, content []byte, etag bool) *Resolver {
	t.Helper()
	const commit = "0123456789abcdef0123456789abcdef01234567"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasPrefix(r.URL.Path, "/api/models/org/model/revision/"):
			fmt.Fprintf(w, `{"sha": %q, "siblings": [{"rfilename": "model.gguf", "size": %d}]}`, commit, len(content))
		case r.URL.Path == "/org/model/resolve/"+commit+"/model.gguf":
			if etag {
				w.Header().Set("X-Linked-Etag", fmt.Sprintf(`"%x"`, sha256.Sum256(content)))
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(content)))
			if r.Method == http.MethodGet {
				w.Write(content)
			}
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return &Resolver{Endpoint: srv.URL, CacheDir: t.TempDir(), ConvertDir: t.TempDir(), Client: srv.Client()}
}

// TestHubAnswerWithoutETag: a hub (a proxy, a mirror) whose answers carry
// no ETag and whose listing gives no hash leaves nothing to name and check
// the download by: the error says what the hub's answer lacked.
func TestHubAnswerWithoutETag(t *testing.T) {
	r := minimalHub(t, []byte("GGUF"), false)
	_, err := r.Resolve(context.Background(), "org/model")
	if err == nil || !errors.Is(err, ErrNoETag) || !strings.Contains(err.Error(), "without an X-Linked-Etag or ETag header") ||
		!strings.Contains(err.Error(), "model.gguf") || strings.Contains(err.Error(), "unsafe path") {
		t.Fatalf("resolve through a hub that gives no ETag: %v; want an error saying the hub's answer has no ETag", err)
	}
}

// TestHubDownloadIsLogged: a download leaves a log line naming the
// repository, the file, its size and SHA-256 (checked against the hub's).
func TestHubDownloadIsLogged(t *testing.T) {
	content := bytes.Repeat([]byte("GGUF"), 1000)
	r := minimalHub(t, content, true)
	var log bytes.Buffer
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&log, nil)))
	defer slog.SetDefault(prev)
	if _, err := r.Resolve(context.Background(), "org/model"); err != nil {
		t.Fatal(err)
	}
	want := `msg="hub download" repo=org/model file=model.gguf`
	for _, w := range []string{want, fmt.Sprintf("bytes=%d sha256=%x checked=true", len(content), sha256.Sum256(content))} {
		if !strings.Contains(log.String(), w) {
			t.Errorf("the log lacks %q:\n%s", w, log.String())
		}
	}
}
