package dist

import (
	"context"
	"time"

	"github.com/evomerge/evomerge/engine/eval"
)

// PoolExecutor runs jobs on an eval.Pool prepared with the run's sources.
// Paths maps source names (as jobs and recipes say them) to this
// machine's files; a name it lacks is used as a path.
type PoolExecutor struct {
	Pool  *eval.Pool
	Paths map[string]string
}

// Execute merges and scores a candidate on a worker, or scores a source
// model as it is (job.Model), with the same options.
func (p PoolExecutor) Execute(ctx context.Context, job *Job, progress func(stage string, done, total int)) (reply eval.CandidateReply, err error) {
	req := job.Request
	if job.Model == "" {
		return p.Pool.Candidate(ctx, req, progress)
	}
	t0 := time.Now()
	model := p.path(job.Model)
	defer func() { reply.EvalSeconds = time.Since(t0).Seconds() }()
	if req.Perplexity != nil && len(req.Texts) > 0 {
		var r eval.PerplexityReply
		r, err = p.Pool.Perplexity(ctx, model, req.Texts, *req.Perplexity, progress)
		if err != nil {
			return reply, err
		}
		reply.Perplexity = &r
	}
	if req.Coherence != nil {
		opt := *req.Coherence
		opt.Reference = p.path(opt.Reference)
		r, err := p.Pool.Coherence(ctx, model, opt)
		if err != nil {
			return reply, err
		}
		reply.Coherence = &r
	}
	if len(req.Tasks) > 0 {
		r, err := p.Pool.Tasks(ctx, model, req.Tasks)
		if err != nil {
			return reply, err
		}
		reply.Tasks = &r
	}
	return reply, nil
}

func (p PoolExecutor) path(name string) string {
	if q, ok := p.Paths[name]; ok {
		return q
	}
	return name
}
