package dist

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/renameio/v2"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/evomerge/evomerge/engine/eval"
)

// Started is a host's executor for a run and what the registry shows of
// it; Stop releases it when the run is over.
type Started struct {
	Exec   Executor
	Stop   func()
	Device string
	VRAM   int64
}

// JoinOptions configure a host that joins runs from a server.
type JoinOptions struct {
	HostOptions
	// CacheDir keeps sources fetched from runs' object stores, by sha256.
	CacheDir string
	// Start builds the executor for a run, its sources resolved to local
	// files in prep.
	Start func(ctx context.Context, info RunInfo, prep eval.PrepareRequest) (Started, error)
	// Evomerge and Llama override this binary's versions (tests).
	Evomerge, Llama string
}

// Join serves the runs announced on nc's server, newest first, one at a
// time, until ctx ends. A run this host cannot serve (other versions, a
// source it cannot find) is refused in one line, here and in the run's
// registry, and no job of it is taken.
func Join(ctx context.Context, nc *nats.Conn, opt JoinOptions) error {
	opt.defaults()
	if opt.Evomerge == "" && opt.Llama == "" {
		opt.Evomerge, opt.Llama = Versions()
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	served := map[string]bool{}
	for ctx.Err() == nil {
		info, ok := latestRun(ctx, js, served)
		if !ok {
			select {
			case <-ctx.Done():
			case <-time.After(Heartbeat / 2):
			}
			continue
		}
		served[info.Run] = true
		if err := joinRun(ctx, js, nc, info, opt); err != nil && ctx.Err() == nil {
			opt.Logf("run %s: %v", info.Run, err)
		}
	}
	return nil
}

// latestRun is the newest announced run not yet served.
func latestRun(ctx context.Context, js jetstream.JetStream, served map[string]bool) (RunInfo, bool) {
	c, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	kv, err := js.KeyValue(c, runsBucket)
	if err != nil {
		return RunInfo{}, false
	}
	keys, err := kv.Keys(c)
	if err != nil {
		return RunInfo{}, false
	}
	var best RunInfo
	for _, k := range keys {
		if served[k] {
			continue
		}
		e, err := kv.Get(c, k)
		if err != nil {
			continue
		}
		var info RunInfo
		if json.Unmarshal(e.Value(), &info) == nil && info.Started.After(best.Started) {
			best = info
		}
	}
	return best, best.Run != ""
}

func joinRun(ctx context.Context, js jetstream.JetStream, nc *nats.Conn, info RunInfo, opt JoinOptions) error {
	n := names{info.Run}
	reg, err := js.KeyValue(ctx, n.workersBucket())
	if err != nil {
		return err
	}
	refuse := func(why string) error {
		line := "refused: " + why
		opt.Logf("run %s %s", info.Run, line)
		h := &host{opt: opt.HostOptions}
		rctx, cancel := context.WithCancel(ctx)
		defer cancel()
		go watchRunEnd(rctx, js, n, cancel)
		register(rctx, reg, h.entry, line)
		dctx, dcancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer dcancel()
		_ = reg.Delete(dctx, opt.Name)
		return nil
	}
	switch {
	case info.Protocol != Protocol:
		return refuse(fmt.Sprintf("protocol %d, this worker speaks %d", info.Protocol, Protocol))
	case info.Evomerge != opt.Evomerge:
		return refuse(fmt.Sprintf("evomerge %s, this worker is %s", info.Evomerge, opt.Evomerge))
	case info.Llama != opt.Llama:
		return refuse(fmt.Sprintf("llama.cpp %s, this worker has %s", info.Llama, opt.Llama))
	}
	obj, err := js.ObjectStore(ctx, n.objectBucket())
	if err != nil {
		return err
	}
	prep := info.Prepare
	prep.Sources = nil
	for _, s := range info.Prepare.Sources {
		p, err := resolveSource(ctx, obj, s, opt.CacheDir)
		if err != nil {
			return refuse(err.Error())
		}
		s.Path = p
		prep.Sources = append(prep.Sources, s)
	}
	prep.Scratch = ""
	st, err := opt.Start(ctx, info, prep)
	if err != nil {
		return refuse(err.Error())
	}
	if st.Stop != nil {
		defer st.Stop()
	}
	ho := opt.HostOptions
	if st.Device != "" {
		ho.Device, ho.VRAM = st.Device, st.VRAM
	}
	opt.Logf("serving run %s with %d slots on %s", info.Run, ho.Slots, ho.Device)
	return Serve(ctx, nc, info, st.Exec, ho)
}

// watchRunEnd calls end once the run's job stream is gone.
func watchRunEnd(ctx context.Context, js jetstream.JetStream, n names, end func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(Heartbeat):
		}
		c, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := js.Stream(c, n.jobsStream())
		cancel()
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			end()
			return
		}
	}
}

// resolveSource finds a source on this machine: at the coordinator's path
// when the file there matches the pinned sha256, in the cache, or fetched
// from the run's object store into the cache.
func resolveSource(ctx context.Context, obj jetstream.ObjectStore, s eval.SourceRef, cacheDir string) (string, error) {
	if s.SHA256 == "" { // a run that pins nothing: same machine
		return s.Path, nil
	}
	if st, err := os.Stat(s.Path); err == nil && st.Size() == s.Size {
		if sum, err := FileSHA256(s.Path); err == nil && sum == s.SHA256 {
			return s.Path, nil
		}
	}
	if cacheDir == "" {
		cacheDir = filepath.Join(os.TempDir(), "evomerge-sources")
	}
	cached := filepath.Join(cacheDir, s.SHA256+".gguf")
	if st, err := os.Stat(cached); err == nil && st.Size() == s.Size {
		return cached, nil
	}
	res, err := obj.Get(ctx, sourceObject(s.SHA256))
	if err != nil {
		return "", fmt.Errorf("source %s (sha256 %.12s…) is not at that path on this machine and the coordinator does not share it (distributed.share_max_mb)", s.Name, s.SHA256)
	}
	defer res.Close()
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return "", err
	}
	f, err := renameio.NewPendingFile(cached)
	if err != nil {
		return "", err
	}
	defer f.Cleanup()
	h := sha256.New()
	if _, err := io.Copy(io.MultiWriter(f, h), res); err != nil {
		return "", fmt.Errorf("fetching source %s: %w", s.Name, err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != s.SHA256 {
		return "", fmt.Errorf("source %s fetched from the coordinator has sha256 %.12s…, want %.12s…", s.Name, got, s.SHA256)
	}
	if err := f.CloseAtomicallyReplace(); err != nil {
		return "", err
	}
	return cached, nil
}

// FileSHA256 is the hex sha256 of a file.
func FileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("hashing %s: %w", path, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}
