package merge

import (
	"fmt"
	"reflect"
	"sort"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// chooseTypes sets each output tensor's type. "keep" (the default) keeps
// the reference tensor's type; a named type applies to tensors of two or
// more dimensions while vectors (norms, biases) stay F32, as llama.cpp
// expects. A type the codec cannot write for a tensor (K-quants need rows
// that are multiples of 256; 1- and 2-bit IQ types need an importance
// matrix) falls back to Q8_0, then F16, and the plan says so.
func (p *Plan) chooseTypes(ref *gguf.File, codec kernels.Codec) {
	want := strings.ToLower(p.Recipe.OutType)
	var requested gguf.Type
	keep := want == "" || want == "keep"
	if !keep {
		t, err := gguf.ParseType(want)
		if err != nil {
			p.Warnings = append(p.Warnings, fmt.Sprintf("out_type %q is not a GGUF type; keeping the inputs' types", p.Recipe.OutType))
			keep = true
		}
		requested = t
	}
	type fallback struct{ from, to gguf.Type }
	fallbacks := map[fallback][]string{}
	for i := range p.Tensors {
		tp := &p.Tensors[i]
		t := tp.Out.Type
		if !keep {
			t = requested
			if len(tp.Out.Shape) < 2 {
				t = gguf.TypeF32
			}
		}
		if raw, _, _ := p.rawCopyType(tp); keep && raw == t {
			tp.Out.Type = t // a byte copy needs no codec
			continue
		}
		if !writable(codec, t, tp.Out.Shape[0]) {
			to := gguf.TypeF16
			if writable(codec, gguf.TypeQ8_0, tp.Out.Shape[0]) && t.Quantized() {
				to = gguf.TypeQ8_0
			}
			fallbacks[fallback{t, to}] = append(fallbacks[fallback{t, to}], tp.Out.Name)
			t = to
		}
		tp.Out.Type = t
	}
	keys := make([]fallback, 0, len(fallbacks))
	for k := range fallbacks {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return keys[i].from < keys[j].from || (keys[i].from == keys[j].from && keys[i].to < keys[j].to)
	})
	for _, k := range keys {
		names := fallbacks[k]
		ex := names[0]
		if len(names) > 1 {
			ex += fmt.Sprintf(" and %d more", len(names)-1)
		}
		p.Warnings = append(p.Warnings, fmt.Sprintf("%d tensors cannot be written as %s (%s): written as %s", len(names), k.from, ex, k.to))
	}
}

func writable(codec kernels.Codec, t gguf.Type, rowLen uint64) bool {
	return codec.CanEncode(t) && rowLen%t.BlockSize() == 0
}

// rawCopyType returns the stored type of a tensor that is a plain copy
// from a file.
func (p *Plan) rawCopyType(tp *TensorPlan) (gguf.Type, bool, error) {
	if tp.Method != nil || tp.Scale != 1 || len(tp.Models) != 1 || tp.vocab {
		return 0, false, nil
	}
	fs, ok := p.sources[tp.Models[0].Source].(*fileSource)
	if !ok {
		return 0, false, nil
	}
	info, ok := fs.info(tp.Models[0].Tensor)
	return info.Type, ok, nil
}

// outputMetadata is the reference's metadata with the name, block count,
// per-layer arrays, file type and provenance updated.
func (p *Plan) outputMetadata(ref *gguf.File) (gguf.Metadata, error) {
	md := ref.Metadata.Clone()
	r := p.Recipe
	name := r.Name
	if name == "" {
		name = "evomerge " + r.Method
	}
	md = md.Set("general.name", name)
	arch := md.Architecture()
	if p.outLayers > 0 {
		refLayers := blockCount(ref)
		key := arch + ".block_count"
		md = md.Set(key, sameIntType(md, key, uint64(p.outLayers)))
		// Per-layer arrays (one entry per block) follow their blocks.
		for i, kv := range md {
			a, ok := kv.Value.(gguf.Array)
			if !ok || !strings.HasPrefix(kv.Key, arch+".") || a.Len() != refLayers || refLayers < 2 {
				continue
			}
			v, err := p.perLayer(kv.Key, a)
			if err != nil {
				return nil, err
			}
			md[i].Value = v
		}
	}
	if ft, ok := fileType(p.Tensors); ok {
		md = md.Set("general.file_type", sameIntType(md, "general.file_type", uint64(ft)))
	}
	md = p.vocabMetadata(md)
	md = md.Set("evomerge.method", r.Method)
	md = md.Set("evomerge.sources", gguf.Array{Elem: gguf.ValueString, Values: r.modelNames()})
	if text, err := r.Encode(); err == nil {
		md = md.Set("evomerge.recipe", string(text))
	}
	return md, nil
}

// sameIntType stores n with the integer type the key already has (u32 if new).
func sameIntType(md gguf.Metadata, key string, n uint64) any {
	v, _ := md.Get(key)
	switch v.(type) {
	case uint64:
		return n
	case int32:
		return int32(n)
	case int64:
		return int64(n)
	case uint16:
		return uint16(n)
	}
	return uint32(n)
}

// fileType is llama.cpp's general.file_type for the dominant 2-D tensor
// type, when there is a matching value.
func fileType(ts []TensorPlan) (uint32, bool) {
	counts := map[gguf.Type]uint64{}
	for _, t := range ts {
		if len(t.Out.Shape) >= 2 {
			counts[t.Out.Type] += t.Out.Elements()
		}
	}
	var best gguf.Type
	var n uint64
	for t, c := range counts {
		if c > n || (c == n && t < best) {
			best, n = t, c
		}
	}
	ft, ok := map[gguf.Type]uint32{
		gguf.TypeF32: 0, gguf.TypeF16: 1, gguf.TypeQ4_0: 2, gguf.TypeQ4_1: 3, gguf.TypeQ8_0: 7,
		gguf.TypeQ5_0: 8, gguf.TypeQ5_1: 9, gguf.TypeQ2_K: 10, gguf.TypeQ3_K: 12, gguf.TypeQ4_K: 15,
		gguf.TypeQ5_K: 17, gguf.TypeQ6_K: 18, gguf.TypeIQ4_NL: 25, gguf.TypeIQ4_XS: 30, gguf.TypeBF16: 32,
	}[best]
	return ft, ok && n > 0
}

// perLayer is the per-layer array key (ref is the reference's) for the
// output blocks: block k's entry comes from the model its block comes
// from — that model's own array when it has one of the same type and one
// entry per block (models of different depths have arrays of different
// lengths), else the reference's.
func (p *Plan) perLayer(key string, ref gguf.Array) (gguf.Array, error) {
	out := reflect.MakeSlice(reflect.TypeOf(ref.Values), len(p.layerOrigin), len(p.layerOrigin))
	for k, op := range p.layerOrigin {
		vals := reflect.ValueOf(ref.Values)
		if f := p.sources[op.Source].file(); f != nil {
			if v, ok := f.Metadata.Get(key); ok {
				if a, ok := v.(gguf.Array); ok && a.Elem == ref.Elem && a.Len() == blockCount(f) && reflect.TypeOf(a.Values) == vals.Type() {
					vals = reflect.ValueOf(a.Values)
				}
			}
		}
		l := LayerOf(op.Tensor)
		if l < 0 || l >= vals.Len() {
			return gguf.Array{}, fmt.Errorf("metadata %s: no entry for layer %d of model %s", key, l, op.Source)
		}
		out.Index(k).Set(vals.Index(l))
	}
	return gguf.Array{Elem: ref.Elem, Values: out.Interface()}, nil
}
