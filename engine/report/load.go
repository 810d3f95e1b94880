package report

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/BurntSushi/toml"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/engine/evolve"
)

// The files of a run directory that the report reads.
const (
	SummaryFile = "summary.json"
	HistoryFile = "history.jsonl"
	ConfigFile  = "config.toml"
	BenchFile   = "bench.json"
)

// Candidate is one evaluated candidate: a line of history.jsonl, in the
// engine's own format.
type Candidate = evolve.Record

// Run is everything the report shows about one run directory.
type Run struct {
	Dir        string
	Result     evolve.Result
	Config     config.Config
	Candidates []Candidate // history order
	// Truncated is set when the last line of history.jsonl was cut short
	// (a killed run) and was skipped.
	Truncated bool
	Bench     *Bench // nil without bench.json
}

// Load reads a run directory: summary.json, history.jsonl and
// config.toml are required, bench.json is optional.
func Load(dir string) (*Run, error) {
	r := &Run{Dir: dir}
	if err := readJSON(filepath.Join(dir, SummaryFile), &r.Result); err != nil {
		return nil, err
	}
	cfg, err := readConfig(filepath.Join(dir, ConfigFile))
	if err != nil {
		return nil, err
	}
	r.Config = cfg
	if r.Candidates, r.Truncated, err = readHistory(filepath.Join(dir, HistoryFile)); err != nil {
		return nil, err
	}
	bp := filepath.Join(dir, BenchFile)
	if _, err := os.Stat(bp); err == nil {
		if r.Bench, err = ReadBench(bp); err != nil {
			return nil, err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("report: %w", err)
	}
	return r, nil
}

func readJSON(path string, v any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("report: %s is missing: is %s the output directory of a finished run?", path, filepath.Dir(path))
		}
		return fmt.Errorf("report: reading %s: %w", path, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		return fmt.Errorf("report: %s is not valid JSON: %w", path, err)
	}
	return nil
}

// readConfig decodes the run's saved configuration over the defaults,
// the way config.Parse does, but without validating it: the models it
// names may have moved since the run, and the report only describes them.
func readConfig(path string) (config.Config, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return config.Config{}, fmt.Errorf("report: %s is missing: the run's configuration is needed to describe it", path)
		}
		return config.Config{}, fmt.Errorf("report: reading %s: %w", path, err)
	}
	c := config.Default()
	c.Models = nil
	md, err := toml.Decode(string(raw), &c)
	if err != nil {
		return config.Config{}, fmt.Errorf("report: %s is not valid TOML: %w", path, err)
	}
	if !md.IsDefined("models") {
		c.Models = config.Default().Models
	}
	return c, nil
}

// readHistory reads history.jsonl. A line that does not parse is an error,
// except the last one: a run killed while writing leaves it cut short.
func readHistory(path string) ([]Candidate, bool, error) {
	f, err := os.Open(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, false, fmt.Errorf("report: %s is missing: is %s the output directory of a run?", path, filepath.Dir(path))
		}
		return nil, false, fmt.Errorf("report: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var (
		out     []Candidate
		bad     error // the last unparsable line, if it stays the last
		badLine int
	)
	for n := 1; ; n++ {
		line, rerr := br.ReadBytes('\n')
		if rerr != nil && !errors.Is(rerr, io.EOF) {
			return nil, false, fmt.Errorf("report: reading %s: %w", path, rerr)
		}
		if t := bytes.TrimSpace(line); len(t) > 0 {
			if bad != nil {
				return nil, false, fmt.Errorf("report: %s line %d is corrupt (%v); only a run's last line may be cut short", path, badLine, bad)
			}
			var c Candidate
			if err := json.Unmarshal(t, &c); err != nil {
				bad, badLine = err, n
			} else {
				out = append(out, c)
			}
		}
		if rerr != nil {
			break
		}
	}
	return out, bad != nil, nil
}
