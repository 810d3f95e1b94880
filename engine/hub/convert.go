package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"github.com/google/renameio/v2"
	"github.com/ollama/ollama/convert"

	"github.com/evomerge/evomerge/engine/gguf"
)

// convertedPath is where the GGUF converted from repo at commit lives:
// <ConvertDir>/models--org--name/<commit>/<name>.gguf.
func (r *Resolver) convertedPath(repo, commit string) (string, error) {
	dir, err := r.convertDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, repoFolder(repo), commit, path.Base(repo)+".gguf"), nil
}

// convert brings files (see chooseConvert) into the snapshot, online or
// from the cache only, and converts them into the converted-model cache.
// The metadata files come first: an architecture the converter does not
// know fails before any weights are fetched.
func (r *Resolver) convert(ctx context.Context, c cache, repo, commit string, files []entry, online bool) (string, error) {
	out, err := r.convertedPath(repo, commit)
	if err != nil {
		return "", err
	}
	if exists(out) {
		return out, nil
	}
	var meta, weights []entry
	for _, e := range files {
		if strings.HasSuffix(strings.ToLower(e.Name), ".safetensors") {
			weights = append(weights, e)
		} else {
			meta = append(meta, e)
		}
	}
	snap := c.snapshotDir(repo, commit)
	get := func(es []entry) error {
		for _, e := range es {
			if online {
				if _, err := r.fetch(ctx, c, repo, commit, e); err != nil {
					return err
				}
			} else if !exists(localName(snap, e.Name)) {
				return fmt.Errorf("%s@%s: %w: %s", repo, commit, ErrNotCached, e.Name)
			}
		}
		return nil
	}
	if err := get(meta); err != nil {
		return "", err
	}
	metaFS := subsetFS{os.DirFS(snap), nameSet(meta)}
	if err := guard(func() error { _, _, err := convert.LoadModelMetadata(metaFS); return err }); err != nil {
		return "", fmt.Errorf("%s: %w: %w", repo, ErrUnsupportedModel, err)
	}
	if !online {
		if err := checkShards(metaFS, weights); err != nil {
			return "", fmt.Errorf("%s@%s: %w: %w", repo, commit, ErrNotCached, err)
		}
	}
	if err := get(weights); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return "", fmt.Errorf("%s: convert: %w", repo, err)
	}
	pf, err := renameio.NewPendingFile(out, renameio.WithTempDir(filepath.Dir(out)), renameio.WithPermissions(0o644))
	if err != nil {
		return "", fmt.Errorf("%s: convert: %w", repo, err)
	}
	defer func() { _ = pf.Cleanup() }()

	// ConvertModel takes no context: on cancellation, closing the file
	// makes its writes fail, and we wait for it to return.
	done := make(chan error, 1)
	go func() {
		done <- guard(func() error { return convert.ConvertModel(subsetFS{os.DirFS(snap), nameSet(files)}, pf.File) })
	}()
	select {
	case err = <-done:
	case <-ctx.Done():
		_ = pf.File.Close()
		<-done
		return "", fmt.Errorf("%s: convert: %w", repo, ctx.Err())
	}
	if err != nil {
		return "", fmt.Errorf("%s: %w: %w", repo, ErrUnsupportedModel, err)
	}
	fi, err := pf.Stat()
	if err != nil {
		return "", fmt.Errorf("%s: convert: %w", repo, err)
	}
	if _, err := gguf.Read(pf.File, fi.Size()); err != nil {
		return "", fmt.Errorf("%s: the converter wrote an unreadable GGUF: %w", repo, err)
	}
	if err := pf.CloseAtomicallyReplace(); err != nil {
		return "", fmt.Errorf("%s: convert: %w", repo, err)
	}
	return out, nil
}

// guard runs f, turning a panic in the converter into an error.
func guard(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("converter failed: %v", p)
		}
	}()
	return f()
}

// checkShards reports weights named by model.safetensors.index.json that are
// missing from weights: a partly cached sharded model must not be converted.
func checkShards(fsys fs.FS, weights []entry) error {
	b, err := fs.ReadFile(fsys, "model.safetensors.index.json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var index struct {
		WeightMap map[string]string `json:"weight_map"`
	}
	if err := json.Unmarshal(b, &index); err != nil {
		return fmt.Errorf("model.safetensors.index.json: %w", err)
	}
	have := nameSet(weights)
	var missing []string
	for _, shard := range index.WeightMap {
		if !have[shard] && !slices.Contains(missing, shard) {
			missing = append(missing, shard)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		return fmt.Errorf("missing %s", strings.Join(missing, ", "))
	}
	return nil
}

func nameSet(es []entry) map[string]bool {
	m := make(map[string]bool, len(es))
	for _, e := range es {
		m[e.Name] = true
	}
	return m
}

// subsetFS shows only the named top-level files of a directory, so files
// other tools cached in the same snapshot never reach the converter.
type subsetFS struct {
	fsys  fs.FS
	names map[string]bool
}

func (s subsetFS) Open(name string) (fs.File, error) {
	if !s.names[name] {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	return s.fsys.Open(name)
}

func (s subsetFS) ReadDir(name string) ([]fs.DirEntry, error) {
	if name != "." {
		return nil, &fs.PathError{Op: "readdir", Path: name, Err: fs.ErrNotExist}
	}
	all, err := fs.ReadDir(s.fsys, ".")
	if err != nil {
		return nil, err
	}
	return slices.DeleteFunc(all, func(d fs.DirEntry) bool { return !s.names[d.Name()] }), nil
}
