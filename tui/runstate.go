package tui

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/evomerge/evomerge/engine/evolve"
	"github.com/evomerge/evomerge/engine/format"
)

// phase is where the workbench's tournament is.
type phase int

const (
	phaseIdle     phase = iota // no run yet
	phaseStarting              // run command issued, no RunStarted yet
	phaseRunning
	phaseFinished // Finished arrived (or the run returned)
	phaseFailed
)

func (p phase) active() bool { return p == phaseStarting || p == phaseRunning }

// candidate is everything known about one candidate.
type candidate struct {
	info       evolve.CandidateInfo
	status     evolve.Status
	fraction   float64
	scored     bool
	scores     evolve.Scores
	fitness    float64
	objectives []float64
	rank       int
	err        string
	mergeTime  time.Duration
	evalTime   time.Duration
	seen       int // arrival order
}

// hasScores reports whether the candidate has a fitness: it finished as
// done or cached (not failed, skipped or still on its way).
func (c *candidate) hasScores() bool { return c.scored && c.status.Scored() }

// genStat is one point of the fitness chart.
type genStat struct {
	gen                        int
	best, genBest, mean, worst float64
	bestID                     string
	evaluations                int
	elapsed                    time.Duration
}

// runState folds the engine's event stream into what the screens show. It
// is pure: apply does no IO and starts nothing, so tests can feed it a
// scripted stream and compare.
type runState struct {
	phase       phase
	started     evolve.RunStarted
	cands       map[string]*candidate
	order       []string // IDs in arrival order
	gens        []genStat
	curGen      int
	genIDs      map[int][]string // generation → candidate IDs in announced order
	evaluations int
	bestID      string
	best        float64
	paused      bool
	finished    *evolve.Finished
	result      *evolve.Result
	runErr      error
	lastElapsed time.Duration // engine-reported elapsed time at the last event that carried one
}

func newRunState() runState {
	return runState{cands: map[string]*candidate{}, genIDs: map[int][]string{}, best: math.Inf(-1), curGen: -1}
}

// logLine is a line for the log pane.
type logLine struct {
	time  time.Time
	level string
	text  string
}

// apply folds one event into the state and returns the log lines it
// produces (engine logs plus the workbench's own summaries).
func (s *runState) apply(ev evolve.Event) []logLine {
	switch e := ev.(type) {
	case evolve.RunStarted:
		*s = newRunState()
		s.phase = phaseRunning
		s.started = e
		shape := fmt.Sprintf("population %d × %d generations", e.Population, e.Generations)
		if e.Optimizer == "gradient" {
			shape = fmt.Sprintf("%d generations of one centre", e.Generations)
		}
		what := fmt.Sprintf("run started: %s, seed %d, %s, budget %d evaluations, %d sources",
			evolve.OptimizerText(e.Optimizer, e.Tuned), e.Seed, shape, e.Budget, len(e.Sources))
		if e.Resumed > 0 {
			what += fmt.Sprintf(" (resumed: %d evaluations replayed)", e.Resumed)
		}
		lines := []logLine{{time: e.Time, level: "info", text: what}}
		if e.BaseNote != "" {
			lines = append(lines, logLine{time: e.Time, level: "info", text: e.BaseNote})
		}
		for _, d := range e.LeftOut {
			lines = append(lines, logLine{time: e.Time, level: "warn", text: "zoo model " + d.Name + " left out: " + d.Reason})
		}
		for _, d := range e.Dropped {
			lines = append(lines, logLine{time: e.Time, level: "warn", text: "technique " + d.Name + " dropped: " + d.Reason})
		}
		if e.Device.Workers > 0 {
			level := "info"
			if e.Device.Unused != "" {
				level = "warn"
			}
			lines = append(lines, logLine{time: e.Time, level: level, text: "device: " + e.Device.String()})
		}
		return lines
	case evolve.GenerationStarted:
		if s.phase == phaseIdle || s.phase == phaseStarting {
			s.phase = phaseRunning
		}
		s.curGen = e.Generation
		ids := make([]string, 0, len(e.Candidates))
		for _, ci := range e.Candidates {
			c := s.get(ci.ID)
			c.info = ci
			if c.status == "" {
				c.status = evolve.StatusQueued
			}
			ids = append(ids, ci.ID)
		}
		s.genIDs[e.Generation] = ids
		return nil
	case evolve.CandidateProgress:
		c := s.get(e.ID)
		if !c.scored {
			c.status, c.fraction = e.Status, e.Fraction
		}
		return nil
	case evolve.CandidateScored:
		c := s.get(e.Candidate.ID)
		if e.Candidate.ID != "" {
			c.info = e.Candidate
		}
		c.scored = true
		c.status = e.Status
		c.fraction = 1
		c.scores, c.fitness, c.objectives, c.rank = e.Scores, e.Fitness, e.Objectives, e.Rank
		c.err, c.mergeTime, c.evalTime = e.Err, e.MergeTime, e.EvalTime
		if e.Evaluation > s.evaluations {
			s.evaluations = e.Evaluation
		}
		if e.Status.Scored() && e.Fitness > s.best {
			s.best, s.bestID = e.Fitness, e.Candidate.ID
		}
		if e.Status == evolve.StatusFailed {
			return []logLine{{level: "error", text: fmt.Sprintf("%s (%s) failed: %s", e.Candidate.ID, e.Candidate.Technique, e.Err)}}
		}
		return nil
	case evolve.GenerationDone:
		s.gens = append(s.gens, genStat{gen: e.Generation, best: e.Best, genBest: e.GenBest, mean: e.Mean,
			worst: e.Worst, bestID: e.BestID, evaluations: e.Evaluations, elapsed: e.Elapsed})
		if e.Evaluations > s.evaluations {
			s.evaluations = e.Evaluations
		}
		s.lastElapsed = e.Elapsed
		if e.BestID != "" && e.Best >= s.best {
			s.best, s.bestID = e.Best, e.BestID
		}
		text := fmt.Sprintf("generation %d done: best %s (%s), generation best %s, mean %s, worst %s, %d evaluations",
			e.Generation, format.Fitness(e.Best), e.BestID, format.Fitness(e.GenBest), format.Fitness(e.Mean), format.Fitness(e.Worst), e.Evaluations)
		if e.Stalled > 0 {
			text += fmt.Sprintf(", %d without improvement", e.Stalled)
		}
		return []logLine{{time: s.at(e.Elapsed), level: "info", text: text}}
	case evolve.Log:
		return []logLine{{time: e.Time, level: e.Level, text: e.Message}}
	case evolve.Paused:
		s.paused = e.Paused
		if e.Paused {
			return []logLine{{level: "warn", text: "engine paused: running candidates finish, no new ones start"}}
		}
		return []logLine{{level: "info", text: "engine resumed"}}
	case evolve.Finished:
		f := e
		s.finished = &f
		s.paused = false
		s.lastElapsed = e.Elapsed
		if e.Result != nil {
			s.result = e.Result
		}
		if e.Best.ID != "" && (s.bestID == "" || e.Fitness >= s.best) {
			s.best, s.bestID = e.Fitness, e.Best.ID
			c := s.get(e.Best.ID)
			if c.info.ID == "" {
				c.info = e.Best
			}
		}
		if e.Err != nil && e.Reason != "cancelled" {
			s.phase = phaseFailed
			s.runErr = e.Err
			return []logLine{{time: s.at(e.Elapsed), level: "error", text: fmt.Sprintf("run failed (%s): %v", e.Reason, e.Err)}}
		}
		s.phase = phaseFinished
		text := fmt.Sprintf("run finished (%s) after %s: best %s = %s", e.Reason, fmtDuration(e.Elapsed), e.Best.ID, format.Fitness(e.Fitness))
		if e.Result != nil && e.Result.BestModel != "" {
			text += ", written to " + e.Result.BestModel
		}
		lines := []logLine{{time: s.at(e.Elapsed), level: "info", text: text}}
		if e.Result != nil {
			for _, v := range e.Result.Verdict {
				lines = append(lines, logLine{time: s.at(e.Elapsed), level: "info", text: "held-out verdict: " + v.String()})
			}
		}
		return lines
	}
	return nil
}

// at converts an engine elapsed time into a clock time for the log.
func (s *runState) at(d time.Duration) time.Time {
	if s.started.Time.IsZero() {
		return time.Time{}
	}
	return s.started.Time.Add(d)
}

func (s *runState) get(id string) *candidate {
	c, ok := s.cands[id]
	if !ok {
		c = &candidate{info: evolve.CandidateInfo{ID: id}, seen: len(s.order)}
		s.cands[id] = c
		s.order = append(s.order, id)
	}
	return c
}

// rows returns the candidates the population table lists: the current
// generation in announced order, or every candidate seen; sorted by
// fitness (best first, unscored and failed last) when byFitness.
func (s *runState) rows(all, byFitness bool) []*candidate {
	var ids []string
	if all {
		ids = s.order
	} else {
		ids = s.genIDs[s.curGen]
	}
	out := make([]*candidate, 0, len(ids))
	for _, id := range ids {
		if c, ok := s.cands[id]; ok {
			out = append(out, c)
		}
	}
	if byFitness {
		slices.SortStableFunc(out, func(a, b *candidate) int {
			ra, rb := sortRank(a), sortRank(b)
			if ra != rb {
				return cmp.Compare(ra, rb)
			}
			if ra == 0 {
				return cmp.Compare(b.fitness, a.fitness)
			}
			return cmp.Compare(a.seen, b.seen)
		})
	}
	return out
}

func sortRank(c *candidate) int {
	switch {
	case c.hasScores():
		return 0
	case !c.scored:
		return 1
	}
	return 2
}

// counts tallies the statuses of the current generation.
func (s *runState) counts() map[evolve.Status]int {
	out := map[evolve.Status]int{}
	for _, id := range s.genIDs[s.curGen] {
		if c, ok := s.cands[id]; ok {
			out[c.status]++
		}
	}
	return out
}

// budget is the evaluation budget of the run (0 when unknown).
func (s *runState) budget() int {
	if s.started.Budget > 0 {
		return s.started.Budget
	}
	return s.started.Population * s.started.Generations
}

// elapsed is the run's running time: the engine's own figure once it
// finished, else the clock since RunStarted.
func (s *runState) elapsed(now time.Time) time.Duration {
	if s.finished != nil || s.phase == phaseFinished || s.phase == phaseFailed {
		return s.lastElapsed
	}
	if s.started.Time.IsZero() {
		return s.lastElapsed
	}
	return max(now.Sub(s.started.Time), s.lastElapsed)
}

// lineage returns the ancestry of id as indented lines (a tree), at most
// depth levels deep; a candidate reached twice is shown once.
func (s *runState) lineage(id string, depth int) []lineageNode {
	var out []lineageNode
	seen := map[string]bool{}
	var walk func(id, prefix string, last bool, level int)
	walk = func(id, prefix string, last bool, level int) {
		n := lineageNode{id: id, level: level}
		if level > 0 {
			if last {
				n.prefix = prefix + "└─ "
			} else {
				n.prefix = prefix + "├─ "
			}
		}
		c, known := s.cands[id]
		n.known = known
		if known {
			n.c = c
		}
		if seen[id] {
			n.repeat = true
			out = append(out, n)
			return
		}
		seen[id] = true
		out = append(out, n)
		if !known || level >= depth {
			if known && len(c.info.Parents) > 0 && level >= depth {
				out = append(out, lineageNode{prefix: childPrefix(prefix, last, level) + "└─ ", more: true, level: level + 1})
			}
			return
		}
		parents := c.info.Parents
		for i, p := range parents {
			walk(p, childPrefix(prefix, last, level), i == len(parents)-1, level+1)
		}
	}
	walk(id, "", true, 0)
	return out
}

func childPrefix(prefix string, last bool, level int) string {
	if level == 0 {
		return ""
	}
	if last {
		return prefix + "   "
	}
	return prefix + "│  "
}

// lineageNode is one line of a lineage tree.
type lineageNode struct {
	id     string
	prefix string
	level  int
	c      *candidate
	known  bool
	repeat bool // already shown above
	more   bool // depth limit reached: "…"
}

// fmtDuration formats a duration compactly: 45s, 3m07s, 2h05m.
func fmtDuration(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

func itoa(n int) string { return strconv.Itoa(n) }

// geoPPL is the geometric-mean perplexity of a candidate's scores.
func geoPPL(sc evolve.Scores) float64 {
	if sc.MeanLogPPL == 0 && len(sc.Perplexity) == 0 {
		return math.NaN()
	}
	return math.Exp(sc.MeanLogPPL)
}
