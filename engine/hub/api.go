package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

const userAgent = "evomerge-hub/1"

// repoInfo is the part of GET /api/models/{repo}/revision/{rev}?blobs=true
// the resolver uses.
type repoInfo struct {
	ID     string // the id the hub answers with (a renamed repository's new id)
	Commit string
	Files  []entry
}

// modelInfo fetches a revision's commit and file listing.
func (r *Resolver) modelInfo(ctx context.Context, repo, rev string) (repoInfo, error) {
	u := r.endpoint() + "/api/models/" + repo + "/revision/" + url.PathEscape(rev) + "?blobs=true"
	resp, err := r.do(ctx, http.MethodGet, u, nil, r.client())
	if err != nil {
		return repoInfo{}, fmt.Errorf("%s: %w", repo, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return repoInfo{}, statusError(resp, repo, "")
	}
	var body struct {
		ID       string `json:"id"`
		SHA      string `json:"sha"`
		Siblings []struct {
			RFilename string `json:"rfilename"`
			Size      int64  `json:"size"`
			BlobID    string `json:"blobId"`
			LFS       *struct {
				SHA256 string `json:"sha256"`
				Size   int64  `json:"size"`
			} `json:"lfs"`
		} `json:"siblings"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 64<<20)).Decode(&body); err != nil {
		return repoInfo{}, fmt.Errorf("%s: decode %s: %w", repo, u, err)
	}
	if err := checkName("commit", body.SHA); err != nil {
		return repoInfo{}, fmt.Errorf("%s: %s: %w", repo, u, err)
	}
	info := repoInfo{ID: body.ID, Commit: body.SHA}
	for _, s := range body.Siblings {
		e := entry{Name: s.RFilename, Size: s.Size, BlobID: s.BlobID}
		if s.LFS != nil {
			e.SHA256 = strings.ToLower(s.LFS.SHA256)
			if e.Size == 0 {
				e.Size = s.LFS.Size
			}
		}
		info.Files = append(info.Files, e)
	}
	return info, nil
}

// fileMeta is what a HEAD of the resolve URL tells about one file.
type fileMeta struct {
	Etag   string // normalized: no W/ prefix, no quotes
	Size   int64  // -1 when unknown
	Status string // the HEAD's status line, e.g. "200 OK"
}

// resolveURL is {endpoint}/{repo}/resolve/{rev}/{file}.
func (r *Resolver) resolveURL(repo, rev, file string) string {
	var parts []string
	for _, p := range strings.Split(file, "/") {
		parts = append(parts, url.PathEscape(p))
	}
	return r.endpoint() + "/" + repo + "/resolve/" + url.PathEscape(rev) + "/" + strings.Join(parts, "/")
}

// headFile reads a file's etag and size. Like huggingface_hub it does not
// follow the redirect to the content server, whose headers describe the
// CDN object, but does follow relative redirects (renamed repositories).
func (r *Resolver) headFile(ctx context.Context, repo, rev, file string) (fileMeta, error) {
	c := *r.client()
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 10 {
			return fmt.Errorf("stopped after %d redirects", len(via))
		}
		if loc := req.Response.Header.Get("Location"); strings.HasPrefix(loc, "/") && !strings.HasPrefix(loc, "//") {
			return nil
		}
		return http.ErrUseLastResponse
	}
	u := r.resolveURL(repo, rev, file)
	resp, err := r.do(ctx, http.MethodHead, u, http.Header{"Accept-Encoding": {"identity"}}, &c)
	if err != nil {
		return fileMeta{}, fmt.Errorf("%s: %w", repo, err)
	}
	resp.Body.Close()
	if resp.StatusCode >= 400 {
		return fileMeta{}, statusError(resp, repo, file)
	}
	m := fileMeta{Etag: resp.Header.Get("X-Linked-Etag"), Size: -1, Status: resp.Status}
	if m.Etag == "" {
		m.Etag = resp.Header.Get("ETag")
	}
	m.Etag = strings.Trim(strings.TrimPrefix(m.Etag, "W/"), `"`)
	size := resp.Header.Get("X-Linked-Size")
	if size == "" && resp.StatusCode < 300 {
		size = resp.Header.Get("Content-Length")
	}
	if n, err := strconv.ParseInt(size, 10, 64); err == nil && n >= 0 {
		m.Size = n
	}
	return m, nil
}

// do sends one request with the token and user agent. Transport failures
// come back wrapped in ErrNetwork unless ctx ended.
func (r *Resolver) do(ctx context.Context, method, u string, h http.Header, c *http.Client) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, u, err)
	}
	for k, v := range h {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	if r.Token != "" {
		req.Header.Set("Authorization", "Bearer "+r.Token)
	}
	resp, err := c.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%s %s: %w", method, u, ctx.Err())
		}
		return nil, fmt.Errorf("%w: %w", ErrNetwork, err) // err names method and URL
	}
	return resp, nil
}

// statusError builds an *HTTPError from a failed response.
func statusError(resp *http.Response, repo, file string) error {
	u := *resp.Request.URL
	u.User, u.RawQuery = nil, "" // content-server URLs carry signatures
	e := &HTTPError{
		Method:     resp.Request.Method,
		URL:        u.String(),
		StatusCode: resp.StatusCode,
		Code:       resp.Header.Get("X-Error-Code"),
		Message:    resp.Header.Get("X-Error-Message"),
		Repo:       repo,
		File:       file,
	}
	if e.Message == "" && resp.Request.Method != http.MethodHead {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		var body struct {
			Error string `json:"error"`
		}
		if json.Unmarshal(b, &body) == nil && body.Error != "" {
			e.Message = body.Error
		} else if s := strings.TrimSpace(string(b)); s != "" && !strings.HasPrefix(s, "<") {
			e.Message = s
		}
	}
	return e
}
