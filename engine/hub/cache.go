package hub

import (
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/renameio/v2"
)

// cache is a huggingface_hub cache directory (…/huggingface/hub).
type cache struct{ root string }

// repoFolder is huggingface_hub's folder name for a model repository.
func repoFolder(repo string) string {
	return "models--" + strings.ReplaceAll(repo, "/", "--")
}

func (c cache) repoDir(repo string) string { return filepath.Join(c.root, repoFolder(repo)) }

func (c cache) blobPath(repo, etag string) string {
	return filepath.Join(c.repoDir(repo), "blobs", etag)
}

func (c cache) snapshotDir(repo, commit string) string {
	return filepath.Join(c.repoDir(repo), "snapshots", commit)
}

func (c cache) lockPath(repo, etag string) string {
	return filepath.Join(c.root, ".locks", repoFolder(repo), etag+".lock")
}

// refPath is the file holding the commit of a branch or tag; rev has been
// checked by checkRelPath.
func (c cache) refPath(repo, rev string) string {
	return localName(filepath.Join(c.repoDir(repo), "refs"), rev)
}

// commitFor returns the commit the cache records for rev: rev itself when
// it is a commit hash, else the content of refs/<rev>.
func (c cache) commitFor(repo, rev string) (string, error) {
	if isCommitHash(rev) {
		return rev, nil
	}
	b, err := os.ReadFile(c.refPath(repo, rev))
	if err != nil {
		return "", fmt.Errorf("%s@%s: %w: %w", repo, rev, ErrNotCached, err)
	}
	commit := strings.TrimSpace(string(b))
	if err := checkName("commit", commit); err != nil {
		return "", fmt.Errorf("%s: %s: %w", repo, c.refPath(repo, rev), err)
	}
	return commit, nil
}

func isCommitHash(s string) bool { return isHex(s, 40) }

// isHex reports whether s is n lowercase hexadecimal digits.
func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// writeRef records rev -> commit, as huggingface_hub does for every
// revision that is not itself the commit.
func (c cache) writeRef(repo, rev, commit string) error {
	if rev == commit {
		return nil
	}
	p := c.refPath(repo, rev)
	if b, err := os.ReadFile(p); err == nil && string(b) == commit {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("record %s@%s: %w", repo, rev, err)
	}
	if err := renameio.WriteFile(p, []byte(commit), 0o644); err != nil {
		return fmt.Errorf("record %s@%s: %w", repo, rev, err)
	}
	return nil
}

// listSnapshot lists the files present in a cached snapshot, with sizes.
func (c cache) listSnapshot(repo, commit string) ([]entry, error) {
	dir := c.snapshotDir(repo, commit)
	var out []entry
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			return nil
		}
		st, err := os.Stat(p) // follows the link to the blob
		if err != nil || !st.Mode().IsRegular() {
			return nil // dangling link: the blob was deleted
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		out = append(out, entry{Name: filepath.ToSlash(rel), Size: st.Size()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("%s: snapshot %s: %w: %w", repo, commit, ErrNotCached, err)
	}
	return out, nil
}

// link points snapshots/<commit>/<file> at the blob with a relative
// symlink, replacing whatever was there atomically. Where symlinks are not
// available it falls back to a hard link, then to a copy.
func (c cache) link(repo, commit, file, blob string) (string, error) {
	dst := localName(c.snapshotDir(repo, commit), file)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", fmt.Errorf("%s: link %s: %w", repo, file, err)
	}
	rel, err := filepath.Rel(filepath.Dir(dst), blob)
	if err != nil {
		return "", fmt.Errorf("%s: link %s: %w", repo, file, err)
	}
	tmp := fmt.Sprintf("%s.%x.tmp-link", dst, rand.Uint64()) // unique: resolvers may race
	if err := os.Symlink(rel, tmp); err != nil {
		if err := os.Link(blob, tmp); err != nil {
			if err := copyFile(blob, tmp); err != nil {
				return "", fmt.Errorf("%s: link %s: %w", repo, file, err)
			}
		}
	}
	if err := os.Rename(tmp, dst); err != nil {
		_ = os.Remove(tmp)
		return "", fmt.Errorf("%s: link %s: %w", repo, file, err)
	}
	return dst, nil
}

func copyFile(src, dst string) (err error) {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(dst)
		}
	}()
	_, err = io.Copy(out, in)
	return err
}

// exists reports whether p names a regular file (following links).
func exists(p string) bool {
	st, err := os.Stat(p)
	return err == nil && st.Mode().IsRegular()
}
