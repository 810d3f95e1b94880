package export

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"math"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/evolve"
)

func TestCompareNatural(t *testing.T) {
	ordered := []string{"", "g0-c1", "g0-c02", "g0-c9", "g0-c10", "g0-c100", "g1-c00", "g2", "g2-c0", "g10-c0", "h"}
	for i, a := range ordered {
		for j, b := range ordered {
			want := 0
			if i < j {
				want = -1
			} else if i > j {
				want = 1
			}
			if got := compareNatural(a, b); got != want {
				t.Errorf("compareNatural(%q, %q) = %d, want %d", a, b, got, want)
			}
		}
	}
	if compareNatural("c007", "c7") != 0 {
		t.Error("leading zeros change a number")
	}
}

// records are history lines as the engine writes them, out of order.
func records() []evolve.Record {
	return []evolve.Record{
		{ID: "g1-c10", Generation: 1, Key: "k3", Technique: "ties", Origin: "crossover", Parents: []string{"g0-c00", "g0-c01"},
			Summary: "ties λ=1.1, w=[0.6 0.3]", Recipe: "merge_method = \"ties\"\n",
			Scores:  evolve.Scores{Perplexity: map[string]float64{"moby": 12.25, "bible": 1.0 / 3, "notes": 7}, MeanLogPPL: 1.5, Coherence: 0.75},
			Fitness: -1.5, Objectives: []float64{-1.5, 0.375}, Status: evolve.StatusDone, MergeSec: 0.1234567, EvalSec: 2.0004},
		{ID: "g1-c9", Generation: 1, Key: "k2", Technique: "linear", Origin: "mutation", Parents: []string{"g0-c00"},
			Summary: "linear", Status: evolve.StatusFailed, Err: "merging: \"bad\", really", MergeSec: 0.5},
		{ID: "g0-c00", Generation: 0, Key: "k1", Technique: "slerp", Origin: "initial", Summary: "slerp t=0.5",
			Scores:  evolve.Scores{Perplexity: map[string]float64{"moby": 20, "bible": 30}, MeanLogPPL: math.Log(600) / 2},
			Fitness: -math.Log(600) / 2, Status: evolve.StatusDone, EvalSec: 1},
	}
}

func exported(recs []evolve.Record) []Candidate {
	var out []Candidate
	for _, r := range recs {
		out = append(out, FromRecord(r))
	}
	return out
}

func TestCSV(t *testing.T) {
	data, err := CSV(exported(records()), []string{"moby", "bible"})
	if err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(data)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	wantHead := []string{"id", "generation", "technique", "origin", "parents", "status", "fitness",
		"ppl_moby", "ppl_bible", "ppl_notes", "mean_log_ppl", "coherence", "task_accuracy",
		"merge_seconds", "eval_seconds", "key", "summary", "error"}
	if !slices.Equal(rows[0], wantHead) {
		t.Fatalf("header %q\nwant   %q", rows[0], wantHead)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows", len(rows))
	}
	row := func(id string) map[string]string {
		for _, r := range rows[1:] {
			if r[0] == id {
				m := map[string]string{}
				for i, h := range wantHead {
					m[h] = r[i]
				}
				return m
			}
		}
		t.Fatalf("no row %s", id)
		return nil
	}
	if ids := []string{rows[1][0], rows[2][0], rows[3][0]}; !slices.Equal(ids, []string{"g0-c00", "g1-c9", "g1-c10"}) {
		t.Errorf("row order %v, want candidate order", ids)
	}

	done := row("g1-c10")
	for col, want := range map[string]string{
		"generation": "1", "parents": "g0-c00 g0-c01", "status": "done", "fitness": "-1.5",
		"ppl_moby": "12.25", "ppl_notes": "7", "mean_log_ppl": "1.5", "coherence": "0.75", "task_accuracy": "0",
		"merge_seconds": "0.123", "eval_seconds": "2", "key": "k3", "summary": "ties λ=1.1, w=[0.6 0.3]", "error": "",
	} {
		if done[col] != want {
			t.Errorf("g1-c10 %s = %q, want %q", col, done[col], want)
		}
	}
	// Full precision: the value parses back exactly.
	if p, err := strconv.ParseFloat(done["ppl_bible"], 64); err != nil || p != 1.0/3 {
		t.Errorf("ppl_bible %q does not round-trip", done["ppl_bible"])
	}

	failed := row("g1-c9")
	for _, col := range []string{"fitness", "ppl_moby", "ppl_bible", "ppl_notes", "mean_log_ppl", "coherence", "task_accuracy"} {
		if failed[col] != "" {
			t.Errorf("failed candidate has %s %q", col, failed[col])
		}
	}
	if failed["error"] != `merging: "bad", really` || failed["merge_seconds"] != "0.5" {
		t.Errorf("failed row %v", failed)
	}
	if row("g0-c00")["ppl_notes"] != "" || row("g0-c00")["parents"] != "" {
		t.Errorf("g0-c00 row %v", row("g0-c00"))
	}
}

func TestJSON(t *testing.T) {
	data, err := JSON(exported(records()))
	if err != nil {
		t.Fatal(err)
	}
	var got []map[string]any
	if err := json.Unmarshal(data, &got); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[0]["id"] != "g0-c00" || got[2]["id"] != "g1-c10" {
		t.Fatalf("records %v", got)
	}
	failed := got[1]
	for _, k := range []string{"fitness", "perplexity", "mean_log_ppl", "coherence", "task_accuracy", "objectives"} {
		if _, ok := failed[k]; ok {
			t.Errorf("failed candidate has %q", k)
		}
	}
	if failed["error"] != `merging: "bad", really` {
		t.Errorf("error %v", failed["error"])
	}
	done := got[2]
	if done["fitness"] != -1.5 || done["recipe"] != "merge_method = \"ties\"\n" || done["merge_seconds"] != 0.123 ||
		!slices.Equal(done["objectives"].([]any), []any{-1.5, 0.375}) || done["perplexity"].(map[string]any)["moby"] != 12.25 {
		t.Errorf("done candidate %v", done)
	}
	if ps, ok := got[0]["parents"].([]any); !ok || len(ps) != 0 {
		t.Errorf("no parents must be an empty list, got %v", got[0]["parents"])
	}

	empty, err := JSON(nil)
	if err != nil || string(empty) != "[]\n" {
		t.Errorf("no candidates: %q, %v", empty, err)
	}
	head, err := CSV(nil, []string{"moby"})
	if err != nil || !strings.HasPrefix(string(head), "id,generation,technique,origin,parents,status,fitness,ppl_moby,mean_log_ppl,") || strings.Count(string(head), "\n") != 1 {
		t.Errorf("no candidates: %q, %v", head, err)
	}
}

// FromRecord must not share the record's slices and maps.
func TestFromRecordCopies(t *testing.T) {
	r := records()[0]
	c := FromRecord(r)
	r.Parents[0], r.Scores.Perplexity["moby"], r.Objectives[0] = "x", 0, 0
	if c.Parents[0] != "g0-c00" || c.Perplexity["moby"] != 12.25 || c.Objectives[0] != -1.5 {
		t.Errorf("export shares the record's data: %+v", c)
	}
}

func TestSeconds(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want float64
	}{{0, 0}, {1499 * time.Microsecond, 0.001}, {1500 * time.Microsecond, 0.002}, {2*time.Second + 3*time.Millisecond + 1, 2.003}} {
		if got := Seconds(tt.d); got != tt.want {
			t.Errorf("Seconds(%v) = %v, want %v", tt.d, got, tt.want)
		}
	}
}
