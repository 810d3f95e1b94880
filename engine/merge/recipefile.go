package merge

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"
	"gopkg.in/yaml.v3"
)

// Recipe files. The native format is TOML with mergekit's key names, so a
// mergekit YAML config and an evomerge recipe read alike:
//
//	merge_method = "ties"
//	base_model   = "zoo/build/stories15M.gguf"
//	out_type     = "keep"            # or f16, q8_0, ... (mergekit: dtype / out_dtype)
//	seed         = 42
//	[parameters]
//	lambda = 1.0
//	[[models]]
//	model = "zoo/build/bible.gguf"
//	parameters = { weight = 0.5, density = [0.3, 0.7] }
//
// plus slices ([[slices]] with [[slices.sources]] model/layer_range), a dfs
// layer path ([[layers]] model/layer/scale) and named sub-recipes
// ([sources.NAME], usable as a model by NAME). Both formats decode to a
// generic map first, then one converter checks every key and reports all
// problems at once.

// LoadRecipe reads a recipe from a .toml file or a mergekit .yml/.yaml
// config. Relative model paths are resolved against the file's directory
// when a file exists there.
func LoadRecipe(path string) (*Recipe, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	switch strings.ToLower(filepath.Ext(path)) {
	case ".yml", ".yaml":
		if err := yaml.Unmarshal(raw, &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	default:
		if _, err := toml.Decode(string(raw), &m); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
	}
	r, err := RecipeFromMap(m)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	r.relativeTo(filepath.Dir(path))
	return r, nil
}

// ParseRecipe reads a TOML recipe from memory.
func ParseRecipe(text string) (*Recipe, error) {
	var m map[string]any
	if _, err := toml.Decode(text, &m); err != nil {
		return nil, err
	}
	return RecipeFromMap(m)
}

// relativeTo rewrites relative model paths that exist under dir.
func (r *Recipe) relativeTo(dir string) {
	fix := func(p *string) {
		if *p == "" || filepath.IsAbs(*p) || r.Sources[*p] != nil {
			return
		}
		cand := filepath.Join(dir, *p)
		if _, err := os.Stat(cand); err == nil {
			*p = cand
		}
	}
	fix(&r.Base)
	if !slices.Contains(TokenizerSources, r.TokenizerSource) {
		fix(&r.TokenizerSource)
	}
	for i := range r.Models {
		fix(&r.Models[i].Model)
	}
	for i := range r.Slices {
		for j := range r.Slices[i].Sources {
			fix(&r.Slices[i].Sources[j].Model)
		}
	}
	for i := range r.Layers {
		fix(&r.Layers[i].Model)
	}
	for _, s := range r.Sources {
		s.relativeTo(dir)
	}
}

// problems collects every error found while converting a file.
type problems []string

func (p *problems) add(path, format string, args ...any) {
	*p = append(*p, path+": "+fmt.Sprintf(format, args...))
}

func (p problems) err() error {
	if len(p) == 0 {
		return nil
	}
	return errors.New("invalid recipe:\n  " + strings.Join(p, "\n  "))
}

// RecipeFromMap converts a decoded TOML or YAML document.
func RecipeFromMap(m map[string]any) (*Recipe, error) {
	var p problems
	r := recipeFromMap(m, "", &p)
	if err := p.err(); err != nil {
		return nil, err
	}
	return r, nil
}

var recipeKeys = []string{"name", "merge_method", "method", "base_model", "out_type", "dtype", "out_dtype", "seed",
	"parameters", "models", "slices", "layers", "sources", "tokenizer_source", "tokenizer", "chat_template"}

func recipeFromMap(m map[string]any, at string, p *problems) *Recipe {
	r := &Recipe{}
	key := func(k string) string {
		if at == "" {
			return k
		}
		return at + "." + k
	}
	checkKeys(m, at, recipeKeys, p)
	r.Name = str(m, "name", key("name"), p)
	r.Method = str(m, "merge_method", key("merge_method"), p)
	if alt := str(m, "method", key("method"), p); alt != "" {
		if r.Method != "" && r.Method != alt {
			p.add(key("method"), "conflicts with merge_method %q", r.Method)
		}
		r.Method = alt
	}
	if r.Method == "" {
		p.add(key("merge_method"), "missing (one of %s)", strings.Join(append(Methods(), "passthrough", "dfs"), ", "))
	}
	r.Base = modelName(m["base_model"], key("base_model"), p)
	r.OutType = str(m, "out_type", key("out_type"), p)
	for _, k := range []string{"out_dtype", "dtype"} { // mergekit spellings; out_dtype wins
		if v := str(m, k, key(k), p); v != "" && r.OutType == "" {
			r.OutType = mergekitDtype(v)
		}
	}
	if v, ok := m["seed"]; ok {
		if n, ok := number(v); ok && n >= 0 && n == math.Trunc(n) && n < 1<<53 {
			r.Seed = uint64(n)
		} else {
			p.add(key("seed"), "must be a non-negative integer, got %v", v)
		}
	}
	r.TokenizerSource = tokenizerSource(m, key, p)
	r.Params = params(m["parameters"], key("parameters"), p)
	for i, item := range list(m["models"], key("models"), p) {
		at := fmt.Sprintf("%s[%d]", key("models"), i)
		mm, ok := item.(map[string]any)
		if !ok { // mergekit allows a bare model name
			r.Models = append(r.Models, ModelRef{Model: modelName(item, at, p)})
			continue
		}
		checkKeys(mm, at, []string{"model", "parameters"}, p)
		r.Models = append(r.Models, ModelRef{Model: modelName(mm["model"], at+".model", p), Params: params(mm["parameters"], at+".parameters", p)})
	}
	for i, item := range list(m["slices"], key("slices"), p) {
		at := fmt.Sprintf("%s[%d]", key("slices"), i)
		sm, ok := item.(map[string]any)
		if !ok {
			p.add(at, "must be a table with sources")
			continue
		}
		checkKeys(sm, at, []string{"sources", "parameters"}, p)
		s := Slice{Params: params(sm["parameters"], at+".parameters", p)}
		for j, src := range list(sm["sources"], at+".sources", p) {
			sat := fmt.Sprintf("%s.sources[%d]", at, j)
			srm, ok := src.(map[string]any)
			if !ok {
				p.add(sat, "must be a table with model and layer_range")
				continue
			}
			checkKeys(srm, sat, []string{"model", "layer_range", "parameters"}, p)
			ss := SliceSource{Model: modelName(srm["model"], sat+".model", p), Params: params(srm["parameters"], sat+".parameters", p)}
			lr := list(srm["layer_range"], sat+".layer_range", p)
			if len(lr) != 2 {
				p.add(sat+".layer_range", "must be [from, to) — two integers")
			} else {
				from, ok1 := number(lr[0])
				to, ok2 := number(lr[1])
				if !ok1 || !ok2 || from != math.Trunc(from) || to != math.Trunc(to) || from < 0 || to <= from {
					p.add(sat+".layer_range", "must be two integers 0 ≤ from < to, got %v", lr)
				} else {
					ss.From, ss.To = int(from), int(to)
				}
			}
			s.Sources = append(s.Sources, ss)
		}
		if len(s.Sources) == 0 {
			p.add(at+".sources", "a slice needs at least one source")
		}
		r.Slices = append(r.Slices, s)
	}
	for i, item := range list(m["layers"], key("layers"), p) {
		at := fmt.Sprintf("%s[%d]", key("layers"), i)
		lm, ok := item.(map[string]any)
		if !ok {
			p.add(at, "must be a table with model, layer and scale")
			continue
		}
		checkKeys(lm, at, []string{"model", "layer", "scale"}, p)
		step := LayerStep{Model: modelName(lm["model"], at+".model", p), Scale: 1}
		if n, ok := number(lm["layer"]); ok && n >= 0 && n == math.Trunc(n) {
			step.Layer = int(n)
		} else {
			p.add(at+".layer", "must be a non-negative integer, got %v", lm["layer"])
		}
		if v, ok := lm["scale"]; ok {
			if n, ok := number(v); ok && !math.IsNaN(n) && !math.IsInf(n, 0) {
				step.Scale = n
			} else {
				p.add(at+".scale", "must be a number, got %v", v)
			}
		}
		r.Layers = append(r.Layers, step)
	}
	if srcs, ok := m["sources"]; ok {
		sm, ok := srcs.(map[string]any)
		if !ok {
			p.add(key("sources"), "must be a table of named sub-recipes")
		}
		r.Sources = map[string]*Recipe{}
		for name, v := range sm {
			sub, ok := v.(map[string]any)
			if !ok {
				p.add(key("sources."+name), "must be a recipe table")
				continue
			}
			r.Sources[name] = recipeFromMap(sub, key("sources."+name), p)
		}
	}
	return r
}

// tokenizerSource reads tokenizer_source, or mergekit's tokenizer table
// (source; per-token embedding overrides are not supported).
func tokenizerSource(m map[string]any, key func(string) string, p *problems) string {
	src := str(m, "tokenizer_source", key("tokenizer_source"), p)
	if v, ok := m["tokenizer"]; ok {
		tm, ok := v.(map[string]any)
		if !ok {
			p.add(key("tokenizer"), "must be a table with source")
			return src
		}
		checkKeys(tm, key("tokenizer"), []string{"source"}, p)
		if s := modelName(tm["source"], key("tokenizer.source"), p); s != "" {
			if src != "" && src != s {
				p.add(key("tokenizer.source"), "conflicts with tokenizer_source %q", src)
			}
			src = s
		}
	}
	return src
}

func checkKeys(m map[string]any, at string, allowed []string, p *problems) {
	var unknown []string
	for k := range m {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(unknown)
	for _, k := range unknown {
		where := k
		if at != "" {
			where = at + "." + k
		}
		p.add(where, "unknown key (allowed: %s)", strings.Join(allowed, ", "))
	}
}

func str(m map[string]any, k, at string, p *problems) string {
	v, ok := m[k]
	if !ok || v == nil {
		return ""
	}
	s, ok := v.(string)
	if !ok {
		p.add(at, "must be a string, got %v", v)
	}
	return s
}

// modelName accepts "path" or mergekit's {model: "path"} form.
func modelName(v any, at string, p *problems) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	case map[string]any:
		checkKeys(v, at, []string{"model"}, p)
		return modelName(v["model"], at+".model", p)
	}
	p.add(at, "must be a model path, got %v", v)
	return ""
}

func list(v any, at string, p *problems) []any {
	switch v := v.(type) {
	case nil:
		return nil
	case []any:
		return v
	case []map[string]any: // BurntSushi decodes arrays of tables this way
		out := make([]any, len(v))
		for i := range v {
			out[i] = v[i]
		}
		return out
	}
	p.add(at, "must be a list, got %v", v)
	return nil
}

func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	case bool:
		if v {
			return 1, true
		}
		return 0, true
	}
	return 0, false
}

func params(v any, at string, p *problems) Params {
	if v == nil {
		return nil
	}
	m, ok := v.(map[string]any)
	if !ok {
		p.add(at, "must be a table of parameters")
		return nil
	}
	out := Params{}
	for k, raw := range m {
		if val, ok := value(raw, at+"."+k, p); ok {
			out[k] = val
		}
	}
	return out
}

// value decodes a number, a list of numbers (gradient) or a list of
// {filter, value} tables.
func value(raw any, at string, p *problems) (Value, bool) {
	if n, ok := number(raw); ok {
		return Scalar(n), true
	}
	items := list(raw, at, p)
	if len(items) == 0 {
		p.add(at, "must be a number, a boolean, a list of numbers or a list of {filter, value}")
		return Value{}, false
	}
	if _, isTable := items[0].(map[string]any); !isTable {
		anchors, ok := numbers(items, at, p)
		return Value{Anchors: anchors}, ok
	}
	var v Value
	for i, it := range items {
		fat := fmt.Sprintf("%s[%d]", at, i)
		fm, ok := it.(map[string]any)
		if !ok {
			p.add(fat, "mixes filters and numbers")
			return Value{}, false
		}
		checkKeys(fm, fat, []string{"filter", "value"}, p)
		f := Filtered{Filter: str(fm, "filter", fat+".filter", p)}
		if n, ok := number(fm["value"]); ok {
			f.Anchors = []float64{n}
		} else if anchors, ok := numbers(list(fm["value"], fat+".value", p), fat+".value", p); ok && len(anchors) > 0 {
			f.Anchors = anchors
		} else {
			p.add(fat+".value", "must be a number or a list of numbers")
			return Value{}, false
		}
		v.Filters = append(v.Filters, f)
	}
	return v, true
}

func numbers(items []any, at string, p *problems) ([]float64, bool) {
	out := make([]float64, 0, len(items))
	for i, it := range items {
		n, ok := number(it)
		if !ok {
			p.add(fmt.Sprintf("%s[%d]", at, i), "must be a number, got %v", it)
			return nil, false
		}
		out = append(out, n)
	}
	return out, true
}

// mergekitDtype maps mergekit's torch dtype names to GGUF type names.
func mergekitDtype(s string) string {
	switch strings.ToLower(s) {
	case "float32", "fp32":
		return "f32"
	case "float16", "fp16", "half":
		return "f16"
	case "bfloat16", "bf16":
		return "bf16"
	}
	return s
}

// Encode writes the recipe as native TOML that LoadRecipe reads back.
func (r *Recipe) Encode() ([]byte, error) {
	var buf bytes.Buffer
	enc := toml.NewEncoder(&buf)
	enc.Indent = ""
	if err := enc.Encode(r.toMap()); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (r *Recipe) toMap() map[string]any {
	m := map[string]any{"merge_method": r.Method}
	if r.Name != "" {
		m["name"] = r.Name
	}
	if r.Base != "" {
		m["base_model"] = r.Base
	}
	if r.OutType != "" {
		m["out_type"] = r.OutType
	}
	if r.Seed != 0 {
		m["seed"] = int64(r.Seed)
	}
	if r.TokenizerSource != "" {
		m["tokenizer_source"] = r.TokenizerSource
	}
	if len(r.Params) > 0 {
		m["parameters"] = r.Params.toMap()
	}
	if len(r.Models) > 0 {
		models := make([]map[string]any, len(r.Models))
		for i, mr := range r.Models {
			models[i] = map[string]any{"model": mr.Model}
			if len(mr.Params) > 0 {
				models[i]["parameters"] = mr.Params.toMap()
			}
		}
		m["models"] = models
	}
	if len(r.Slices) > 0 {
		sl := make([]map[string]any, len(r.Slices))
		for i, s := range r.Slices {
			srcs := make([]map[string]any, len(s.Sources))
			for j, src := range s.Sources {
				srcs[j] = map[string]any{"model": src.Model, "layer_range": []int{src.From, src.To}}
				if len(src.Params) > 0 {
					srcs[j]["parameters"] = src.Params.toMap()
				}
			}
			sl[i] = map[string]any{"sources": srcs}
			if len(s.Params) > 0 {
				sl[i]["parameters"] = s.Params.toMap()
			}
		}
		m["slices"] = sl
	}
	if len(r.Layers) > 0 {
		ls := make([]map[string]any, len(r.Layers))
		for i, l := range r.Layers {
			ls[i] = map[string]any{"model": l.Model, "layer": l.Layer, "scale": l.Scale}
		}
		m["layers"] = ls
	}
	if len(r.Sources) > 0 {
		srcs := map[string]any{}
		for name, s := range r.Sources {
			srcs[name] = s.toMap()
		}
		m["sources"] = srcs
	}
	return m
}

func (ps Params) toMap() map[string]any {
	out := map[string]any{}
	for k, v := range ps {
		out[k] = v.encode(isBoolParam(k))
	}
	return out
}

func (v Value) encode(asBool bool) any {
	num := func(a []float64) any {
		if len(a) == 1 {
			if asBool {
				return a[0] != 0
			}
			return a[0]
		}
		return a
	}
	if len(v.Filters) == 0 {
		return num(v.Anchors)
	}
	out := make([]map[string]any, len(v.Filters))
	for i, f := range v.Filters {
		out[i] = map[string]any{"value": num(f.Anchors)}
		if f.Filter != "" {
			out[i]["filter"] = f.Filter
		}
	}
	return out
}

// isBoolParam reports whether any technique declares name as a boolean.
func isBoolParam(name string) bool {
	for _, t := range Techniques() {
		for _, p := range t.Params {
			if p.Name == name && p.Bool {
				return true
			}
		}
	}
	return false
}
