package evolve

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/renameio/v2"
	"github.com/nats-io/nats.go"

	"github.com/evomerge/evomerge/engine/dist"
	"github.com/evomerge/evomerge/engine/eval"
)

// queue is the run's job queue (engine/dist): the server — embedded in
// this process unless distributed.server names one —, the coordinator
// that submits candidates, and the local pool's host, which takes jobs
// from it as any joined worker does.
type queue struct {
	srv      *dist.Server // nil with an external server
	nc       *nats.Conn
	coord    *dist.Coordinator
	stopHost context.CancelFunc
	hostDone chan struct{}
	finished bool
}

// storeDir is where the embedded server keeps the run's streams.
func storeDir(out string) string { return filepath.Join(out, "nats") }

// runID is the run's id on the server: made once, kept in the run
// directory so that --resume finds the same streams.
func runID(out string, resume bool) (string, error) {
	path := filepath.Join(storeDir(out), "run-id")
	if raw, err := os.ReadFile(path); err == nil && resume {
		return strings.TrimSpace(string(raw)), nil
	}
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	id := hex.EncodeToString(b[:])
	if err := os.MkdirAll(storeDir(out), 0o755); err != nil {
		return "", err
	}
	return id, renameio.WriteFile(path, []byte(id+"\n"), 0o644)
}

// openQueue starts (or connects to) the job server, announces the run
// with prep's sources, and starts the local host on pool (nil: workers =
// 0, only joined workers evaluate).
func (e *engine) openQueue(ctx context.Context, prep eval.PrepareRequest, pool *eval.Pool) (*queue, error) {
	d := e.cfg.Distributed
	out := e.cfg.Output.Dir
	id, err := runID(out, e.opt.Resume)
	if err != nil {
		return nil, fmt.Errorf("job server: %w", err)
	}
	q := &queue{}
	if d.Server != "" {
		if q.nc, err = dist.Dial(d.Server, "evomerge coordinator"); err != nil {
			return nil, err
		}
	} else {
		so := dist.ServerOptions{StoreDir: storeDir(out), Listen: d.Listen, Token: d.Token}
		if d.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(d.TLSCert, d.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("distributed.tls_cert: %w", err)
			}
			so.TLS = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
		}
		if q.srv, err = dist.StartServer(so); err != nil {
			return nil, err
		}
		if q.nc, err = q.srv.Connect("evomerge coordinator"); err != nil {
			q.close()
			return nil, err
		}
		if d.Listen != "" {
			e.events.logf("info", "workers join with: evomerge-tui worker --join nats://TOKEN@%s", q.srv.Addr())
		}
	}
	if d.Remote() {
		// Pin every source for hosts on other machines.
		for i, s := range prep.Sources {
			sum, err := dist.FileSHA256(s.Path)
			if err != nil {
				q.close()
				return nil, err
			}
			st, err := os.Stat(s.Path)
			if err != nil {
				q.close()
				return nil, err
			}
			prep.Sources[i].SHA256, prep.Sources[i].Size = sum, st.Size()
		}
	}
	info := dist.RunInfo{Run: id, Prepare: prep, AckWait: time.Duration(d.AckWaitSeconds) * time.Second, MaxDeliver: d.MaxDeliver}
	q.coord, err = dist.OpenCoordinator(ctx, q.nc, dist.CoordinatorOptions{Info: info,
		Known: func(key string) bool { return e.ledger.lookup(key) != nil },
		Workers: func(_ []dist.WorkerInfo, change string) {
			if change != "" && d.Remote() { // alone, the local pool is no news
				e.events.logf("info", "%s", change)
			}
		}})
	if err != nil {
		q.close()
		return nil, err
	}
	if d.Remote() {
		for _, s := range prep.Sources {
			if s.Size > int64(d.ShareMaxMB)<<20 {
				continue
			}
			if err := q.coord.ShareFile(ctx, s.Path, s.SHA256); err != nil {
				q.close()
				return nil, err
			}
		}
	}
	if pool != nil {
		hctx, cancel := context.WithCancel(context.Background())
		q.stopHost, q.hostDone = cancel, make(chan struct{})
		go func() {
			defer close(q.hostDone)
			err := dist.Serve(hctx, q.nc, q.coord.Info(), dist.PoolExecutor{Pool: pool},
				dist.HostOptions{Name: "coordinator", Slots: pool.Size(), Local: true, Device: e.device.Short(),
					Logf: func(f string, a ...any) { e.events.logf("warn", f, a...) }})
			if err != nil && !errors.Is(err, context.Canceled) {
				e.events.logf("error", "local workers stopped taking jobs: %v", err)
			}
		}()
	}
	return q, nil
}

// close stops the local host and the coordinator; a finished run's
// streams are deleted, an interrupted one's kept for --resume.
func (q *queue) close() {
	if q.stopHost != nil {
		q.stopHost()
		<-q.hostDone
	}
	if q.coord != nil {
		q.coord.Close(q.finished)
	}
	if q.nc != nil {
		q.nc.Close()
	}
	if q.srv != nil {
		q.srv.Close()
	}
}
