package hub

import (
	"errors"
	"fmt"
	"net/http"
	"os"
)

// Sentinel errors; test with errors.Is.
var (
	// ErrNoSuchFile: a model given as a local path does not exist. It
	// also matches os.ErrNotExist.
	ErrNoSuchFile error = noSuchFile{}
	// ErrInvalidRef: the string is not a valid org/name[...] reference.
	ErrInvalidRef = errors.New("invalid Hugging Face reference")
	// ErrNotFound: the repository, revision or file does not exist (404).
	ErrNotFound = errors.New("not found on the hub")
	// ErrUnauthorized: the repository is gated or private (401/403).
	ErrUnauthorized = errors.New("access denied by the hub")
	// ErrNetwork: the hub could not be reached or the transfer broke off.
	ErrNetwork = errors.New("hub unreachable")
	// ErrChecksum: downloaded content does not match the hub's SHA-256.
	ErrChecksum = errors.New("checksum mismatch")
	// ErrNotCached: offline (or unreachable hub) and the file is not cached.
	ErrNotCached = errors.New("not in the local cache")
	// ErrUnsafePath: a file name, etag or revision would escape the cache.
	ErrUnsafePath = errors.New("unsafe path")
	// ErrNoETag: the hub's answer for a file carries no ETag and its
	// listing no hash, so the download can be neither named in the cache
	// nor checked.
	ErrNoETag = errors.New("the hub's answer has no ETag")
	// ErrSplitGGUF: the selected model is split over several GGUF files.
	ErrSplitGGUF = errors.New("split GGUF files are not supported")
	// ErrNoMatch: no file in the repository fits the reference.
	ErrNoMatch = errors.New("no matching model file")
	// ErrAmbiguous: several files fit a quantization tag.
	ErrAmbiguous = errors.New("several files match")
	// ErrUnsupportedModel: a safetensors repository cannot be converted.
	ErrUnsupportedModel = errors.New("cannot convert model to GGUF")
)

type noSuchFile struct{}

func (noSuchFile) Error() string        { return "no such file" }
func (noSuchFile) Is(target error) bool { return target == os.ErrNotExist }

// HTTPError is an unexpected status from the hub. It matches ErrNotFound
// for 404 and the hub's *NotFound error codes, and ErrUnauthorized for 401,
// 403 and gated repositories. A 401 with code RepoNotFound matches both: the
// hub answers so for missing and for private repositories alike.
type HTTPError struct {
	Method     string
	URL        string
	StatusCode int
	Code       string // the hub's X-Error-Code, e.g. "RepoNotFound", "GatedRepo"
	Message    string // the hub's X-Error-Message or error body
	Repo       string
	File       string // empty for repository-level requests
}

func (e *HTTPError) Error() string {
	what := e.Repo
	if e.File != "" {
		what = fmt.Sprintf("%s: file %q", e.Repo, e.File)
	}
	msg := fmt.Sprintf("%s: %s %s: %d %s", what, e.Method, e.URL, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Message != "" {
		msg += ": " + e.Message
	}
	switch {
	case e.Code == "GatedRepo":
		msg += "; the repository is gated: accept its conditions on the model page, then set HF_TOKEN to an access token of that account"
	case e.Code == "RepoNotFound" || (e.StatusCode == http.StatusNotFound && e.File == ""):
		msg += "; check the name, and if the repository is private set HF_TOKEN to an access token that can read it"
	case e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden:
		msg += "; the repository is private or gated: set HF_TOKEN to an access token that can read it"
	}
	return msg
}

// Is reports whether the status maps to target (ErrNotFound, ErrUnauthorized).
func (e *HTTPError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		switch e.Code {
		case "RepoNotFound", "EntryNotFound", "RevisionNotFound":
			return true
		}
		return e.StatusCode == http.StatusNotFound
	case ErrUnauthorized:
		return e.Code == "GatedRepo" || e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	}
	return false
}

// unreachable reports failures that say nothing about the repository:
// the hub could not be reached, or answered 429 or 5xx. Requests failing
// so are retried, and resolution falls back to the cache.
func unreachable(err error) bool {
	var he *HTTPError
	if errors.As(err, &he) {
		return he.StatusCode == http.StatusTooManyRequests || he.StatusCode >= 500
	}
	return errors.Is(err, ErrNetwork)
}

// ChecksumError reports downloaded content whose SHA-256 differs from the
// one the hub advertised. Nothing is left in the cache when it is returned.
type ChecksumError struct {
	Repo, File string
	Want, Got  string // hex SHA-256
}

func (e *ChecksumError) Error() string {
	return fmt.Sprintf("%s: file %q: SHA-256 %s, the hub says %s: the download was corrupted or tampered with and has been discarded; try again",
		e.Repo, e.File, e.Got, e.Want)
}

// Unwrap returns ErrChecksum.
func (e *ChecksumError) Unwrap() error { return ErrChecksum }

// networkError marks err, a transport failure, as ErrNetwork.
func networkError(what string, err error) error {
	return fmt.Errorf("%s: %w: %w", what, ErrNetwork, err)
}
