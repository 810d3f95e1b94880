package hub

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

const (
	maxAttempts     = 4               // per download, while a transfer makes progress
	stallTimeout    = 2 * time.Minute // no bytes for this long counts as a broken transfer
	progressEvery   = 1 << 20         // call Progress at least every this many bytes
	copyBufferBytes = 1 << 20
)

var errStalled = errors.New("no data received for " + stallTimeout.String())

// blobJob is one file to bring into blobs/.
type blobJob struct {
	repo, file string
	url        string
	blob       string // final path blobs/<etag>
	sha256     string // expected content hash, "" when the hub gives none
	size       int64  // expected size, -1 when unknown
}

// download fetches job.url into job.blob: under the blob's lock, into
// <blob>.incomplete, resuming what an earlier attempt left, verifying the
// SHA-256 and renaming into place.
func (r *Resolver) download(ctx context.Context, c cache, etag string, job blobJob) error {
	unlock, err := lockFile(ctx, c.lockPath(job.repo, etag))
	if err != nil {
		return fmt.Errorf("%s: %w", job.repo, err)
	}
	defer unlock()
	if exists(job.blob) { // another process finished it while we waited
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(job.blob), 0o755); err != nil {
		return fmt.Errorf("%s: %w", job.repo, err)
	}
	part := job.blob + ".incomplete"
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("%s: %w", job.repo, err)
	}
	defer f.Close()

	st := &hashState{h: sha256.New()}
	start := time.Now()
	if fi, err := f.Stat(); err == nil && fi.Size() > 0 {
		slog.Info("hub download resumes", "repo", job.repo, "file", job.file, "have", fi.Size(), "of", job.size)
	}
	for attempt := 1; ; attempt++ {
		progressed, err := r.transfer(ctx, f, st, job)
		if err == nil {
			break
		}
		if ctx.Err() != nil || !unreachable(err) || attempt >= maxAttempts {
			slog.Warn("hub download failed", "repo", job.repo, "file", job.file, "attempt", attempt, "err", err)
			return err
		}
		slog.Warn("hub download interrupted; retrying", "repo", job.repo, "file", job.file, "attempt", attempt, "err", err)
		if !progressed {
			select {
			case <-ctx.Done():
				return fmt.Errorf("%s: %w", job.repo, ctx.Err())
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
	}

	if err := st.sync(f); err != nil {
		return fmt.Errorf("%s: verify %s: %w", job.repo, part, err)
	}
	got := hex.EncodeToString(st.h.Sum(nil))
	if job.sha256 != "" && got != job.sha256 {
		f.Close()
		_ = os.Remove(part)
		err := &ChecksumError{Repo: job.repo, File: job.file, Want: job.sha256, Got: got}
		slog.Warn("hub download discarded", "repo", job.repo, "file", job.file, "err", err)
		return err
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("%s: %w", job.repo, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("%s: %w", job.repo, err)
	}
	if err := os.Rename(part, job.blob); err != nil {
		return fmt.Errorf("%s: %w", job.repo, err)
	}
	slog.Info("hub download", "repo", job.repo, "file", job.file, "url", job.url, "bytes", st.n, "sha256", got,
		"checked", job.sha256 != "", "seconds", time.Since(start).Round(time.Millisecond).Seconds(), "blob", job.blob)
	return nil
}

// hashState is the SHA-256 of the first n bytes of the .incomplete file.
type hashState struct {
	h hash.Hash
	n int64
}

// sync makes the hash cover exactly the file's current content, rehashing
// from the start when they disagree (first use, or a failed write).
func (s *hashState) sync(f *os.File) error {
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == s.n {
		return nil
	}
	s.h.Reset()
	s.n = 0
	n, err := io.Copy(s.h, io.NewSectionReader(f, 0, fi.Size()))
	s.n = n
	return err
}

func (s *hashState) reset(f *os.File) error {
	s.h.Reset()
	s.n = 0
	return f.Truncate(0)
}

// transfer runs one GET, appending to f from its current size. progressed
// reports whether any byte arrived.
func (r *Resolver) transfer(ctx context.Context, f *os.File, st *hashState, job blobJob) (progressed bool, err error) {
	if err := st.sync(f); err != nil {
		return false, fmt.Errorf("%s: read partial download: %w", job.repo, err)
	}
	if job.size >= 0 && st.n > job.size {
		if err := st.reset(f); err != nil {
			return false, fmt.Errorf("%s: %w", job.repo, err)
		}
	}
	if job.size >= 0 && st.n == job.size {
		return false, nil // a previous run got everything; verify it
	}

	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	h := http.Header{"Accept-Encoding": {"identity"}}
	if st.n > 0 {
		h.Set("Range", "bytes="+strconv.FormatInt(st.n, 10)+"-")
	}
	resp, err := r.do(ctx, http.MethodGet, job.url, h, r.client())
	if err != nil {
		return false, fmt.Errorf("%s: %w", job.repo, err)
	}
	defer resp.Body.Close()

	switch resp.StatusCode {
	case http.StatusOK:
		if st.n > 0 { // the server ignored Range: start over
			if err := st.reset(f); err != nil {
				return false, fmt.Errorf("%s: %w", job.repo, err)
			}
		}
	case http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != st.n {
			if err := st.reset(f); err != nil {
				return false, fmt.Errorf("%s: %w", job.repo, err)
			}
			return false, networkError(job.url, fmt.Errorf("server resumed at %q, wanted byte %d; restarting", resp.Header.Get("Content-Range"), st.n))
		}
	case http.StatusRequestedRangeNotSatisfiable:
		if job.size < 0 { // we have everything, as far as we can tell
			return false, nil
		}
		if err := st.reset(f); err != nil {
			return false, fmt.Errorf("%s: %w", job.repo, err)
		}
		return false, networkError(job.url, errors.New("range not satisfiable; restarting"))
	default:
		return false, statusError(resp, job.repo, job.file)
	}

	if _, err := f.Seek(st.n, io.SeekStart); err != nil {
		return false, fmt.Errorf("%s: %w", job.repo, err)
	}
	timer := time.AfterFunc(stallTimeout, func() { cancel(errStalled) })
	defer timer.Stop()

	total := job.size
	if total < 0 && resp.ContentLength >= 0 {
		total = st.n + resp.ContentLength
	}
	r.progress(job.file, st.n, total)
	last := st.n
	buf := make([]byte, copyBufferBytes)
	for {
		n, rerr := resp.Body.Read(buf)
		if ctx.Err() != nil { // prompt even while the body is buffered
			n, rerr = 0, ctx.Err()
		}
		if n > 0 {
			progressed = true
			timer.Reset(stallTimeout)
			if _, err := f.Write(buf[:n]); err != nil {
				return progressed, fmt.Errorf("%s: write %s: %w", job.repo, f.Name(), err)
			}
			st.h.Write(buf[:n])
			st.n += int64(n)
			if st.n-last >= progressEvery {
				r.progress(job.file, st.n, total)
				last = st.n
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			if cause := context.Cause(ctx); errors.Is(cause, errStalled) {
				rerr = cause
			} else if ctx.Err() != nil {
				return progressed, fmt.Errorf("%s: %w", job.repo, ctx.Err())
			}
			return progressed, networkError("download "+job.file, rerr)
		}
	}
	r.progress(job.file, st.n, total)
	if job.size >= 0 && st.n != job.size {
		return progressed, networkError("download "+job.file, fmt.Errorf("got %d bytes, want %d", st.n, job.size))
	}
	return progressed, nil
}

// contentRangeStart parses the first byte of "bytes start-end/total".
func contentRangeStart(v string) (int64, bool) {
	v, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(v, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}

func (r *Resolver) progress(file string, done, total int64) {
	if r.Progress != nil {
		r.Progress(file, done, total)
	}
}
