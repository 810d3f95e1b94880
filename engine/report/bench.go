package report

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// Bench is a benchmark result (bench.json) as a table. The file is read
// tolerantly: either a list of rows, or an object whose "rows", "results"
// or "benchmarks" member is that list and whose other scalar members are
// facts about the machine (device, CPU, version, ...). A row is an object
// with a "name" and any other members: numbers, units ("unit", "x_unit")
// or text. Each member becomes a column.
type Bench struct {
	Facts   []BenchFact
	Columns []string
	Rows    []BenchRow
}

// BenchFact is one scalar member of bench.json beside its rows.
type BenchFact struct{ Name, Value string }

// BenchRow is one named row; Cells align with Bench.Columns.
type BenchRow struct {
	Name  string
	Cells []string
}

// ReadBench reads a benchmark result file.
func ReadBench(path string) (*Bench, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("report: reading %s: %w", path, err)
	}
	b, err := parseBench(raw)
	if err != nil {
		return nil, fmt.Errorf("report: %s: %w", path, err)
	}
	return b, nil
}

func parseBench(raw []byte) (*Bench, error) {
	var top any
	if err := json.Unmarshal(raw, &top); err != nil {
		return nil, fmt.Errorf("not valid JSON: %w", err)
	}
	b := &Bench{}
	var rows []any
	switch v := top.(type) {
	case []any:
		rows = v
	case map[string]any:
		found := false
		for _, k := range []string{"rows", "results", "benchmarks"} {
			if list, ok := v[k].([]any); ok {
				rows, found = list, true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf(`no list of rows: expected a JSON array or an object with "rows", "results" or "benchmarks"`)
		}
		for _, k := range slices.Sorted(maps.Keys(v)) {
			if s, ok := scalar(v[k]); ok {
				b.Facts = append(b.Facts, BenchFact{Name: k, Value: s})
			}
		}
	default:
		return nil, fmt.Errorf("expected a JSON array or object, found %T", top)
	}
	var maps []map[string]any
	seen := map[string]bool{}
	for i, r := range rows {
		m, ok := r.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("row %d is not an object", i+1)
		}
		maps = append(maps, m)
		for k := range m {
			if k != "name" && !seen[k] {
				seen[k] = true
				b.Columns = append(b.Columns, k)
			}
		}
	}
	sort.Slice(b.Columns, func(i, j int) bool { return columnLess(b.Columns[i], b.Columns[j]) })
	for i, m := range maps {
		name, _ := scalar(m["name"])
		if name == "" {
			name = fmt.Sprintf("row %d", i+1)
		}
		row := BenchRow{Name: name}
		for _, c := range b.Columns {
			v, ok := m[c]
			s := ""
			if ok {
				if s, ok = scalar(v); !ok {
					enc, _ := json.Marshal(v)
					s = string(enc)
				}
			}
			row.Cells = append(row.Cells, s)
		}
		b.Rows = append(b.Rows, row)
	}
	return b, nil
}

// columnLess orders bench columns: "value" and "unit" first, then a
// number's unit right after it ("x", "x_unit"), otherwise by name.
func columnLess(a, b string) bool {
	rank := func(s string) int {
		switch s {
		case "value":
			return 0
		case "unit", "units":
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra < rb
	}
	sa, sb := strings.TrimSuffix(a, "_unit"), strings.TrimSuffix(b, "_unit")
	if sa != sb {
		return sa < sb
	}
	return len(a) < len(b)
}

// scalar formats a JSON scalar; false for objects, arrays and null.
func scalar(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case float64:
		return formatNumber(x), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func formatNumber(x float64) string {
	if x == float64(int64(x)) && x < 1e15 && x > -1e15 {
		return strconv.FormatInt(int64(x), 10)
	}
	return strconv.FormatFloat(x, 'g', 5, 64)
}
