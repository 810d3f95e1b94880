package zoo

import (
	"bytes"
	"fmt"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
	"github.com/evomerge/evomerge/kernels"
)

// A patch is a GGUF file holding only the tensors in which a fine-tuned
// model differs from its base, plus metadata naming the base. It is how the
// experts are committed: each expert was tuned with the token embedding
// frozen, so its patch is the ~6M other weights, stored as Q8_0 (~6 MB)
// instead of a 31 MB F16 model. Build materialises the full model.

const patchBaseKey = "evomerge.patch.base"

// Pack writes the tensors of model that differ from base into a patch at
// out, encoding 2-D tensors as typ (1-D tensors stay F32). extra metadata
// (provenance) is stored alongside.
func Pack(basePath, modelPath, out string, typ gguf.Type, extra gguf.Metadata) error {
	base, err := gguf.Open(basePath)
	if err != nil {
		return err
	}
	defer base.Close()
	model, err := gguf.Open(modelPath)
	if err != nil {
		return err
	}
	defer model.Close()
	if err := sameArchitecture(base, model); err != nil {
		return err
	}
	codec := kernels.Native{}
	var changed []gguf.TensorInfo
	for _, mt := range model.Tensors {
		bt, ok := base.Tensor(mt.Name)
		if !ok {
			return fmt.Errorf("pack: %s has tensor %q that the base %s lacks", modelPath, mt.Name, basePath)
		}
		if !equalShape(bt.Shape, mt.Shape) {
			return fmt.Errorf("pack: tensor %q is %v in %s but %v in the base", mt.Name, mt.Shape, modelPath, bt.Shape)
		}
		same, err := sameValues(base, bt, model, mt, codec)
		if err != nil {
			return err
		}
		if same {
			continue
		}
		ct := gguf.TensorInfo{Name: mt.Name, Shape: mt.Shape, Type: gguf.TypeF32}
		if len(mt.Shape) == 2 {
			ct.Type = typ
		}
		changed = append(changed, ct)
	}
	if len(changed) == 0 {
		return fmt.Errorf("pack: %s is identical to the base %s", modelPath, basePath)
	}
	md := gguf.Metadata{
		{Key: "general.architecture", Value: model.Metadata.Architecture()},
		{Key: "general.name", Value: model.Metadata.String("general.name")},
		{Key: patchBaseKey, Value: base.Metadata.String("general.name")},
	}
	md = append(md, extra...)
	fw, err := gguf.Create(out, gguf.Header{Metadata: md, Tensors: changed})
	if err != nil {
		return err
	}
	defer fw.Abort()
	for _, ct := range changed {
		mt, _ := model.Tensor(ct.Name)
		vals, err := kernels.DecodeTensor(model, mt, codec)
		if err != nil {
			return err
		}
		enc := make([]byte, ct.Bytes())
		if err := codec.Encode(ct.Type, enc, vals, int(ct.Shape[0])); err != nil {
			return fmt.Errorf("pack: %s: %w", ct.Name, err)
		}
		if err := fw.WriteTensor(ct.Name, enc); err != nil {
			return err
		}
	}
	return fw.Commit()
}

// Build materialises base+patch into a full model at out: the base's
// metadata and tensor order, the patch's tensors (type and bytes as stored)
// where it has them, and the patch's name and provenance keys.
func Build(basePath, patchPath, out string) error {
	base, err := gguf.Open(basePath)
	if err != nil {
		return err
	}
	defer base.Close()
	patch, err := gguf.Open(patchPath)
	if err != nil {
		return err
	}
	defer patch.Close()
	if err := sameArchitecture(base, patch); err != nil {
		return err
	}
	if want, got := patch.Metadata.String(patchBaseKey), base.Metadata.String("general.name"); want != got {
		return fmt.Errorf("build: %s patches base %q, but %s is %q", patchPath, want, basePath, got)
	}
	h := gguf.Header{Metadata: base.Metadata.Clone()}
	for _, kv := range patch.Metadata {
		if kv.Key == "general.name" || strings.HasPrefix(kv.Key, "evomerge.") {
			h.Metadata = h.Metadata.Set(kv.Key, kv.Value)
		}
	}
	src := make([]*gguf.File, 0, len(base.Tensors))
	for _, bt := range base.Tensors {
		t, f := bt, base
		if pt, ok := patch.Tensor(bt.Name); ok {
			if !equalShape(pt.Shape, bt.Shape) {
				return fmt.Errorf("build: %s: tensor %q is %v, the base has %v", patchPath, bt.Name, pt.Shape, bt.Shape)
			}
			t, f = pt, patch
		}
		h.Tensors = append(h.Tensors, gguf.TensorInfo{Name: t.Name, Shape: t.Shape, Type: t.Type})
		src = append(src, f)
	}
	for _, pt := range patch.Tensors {
		if _, ok := base.Tensor(pt.Name); !ok {
			return fmt.Errorf("build: %s: tensor %q is not in the base %s", patchPath, pt.Name, basePath)
		}
	}
	fw, err := gguf.Create(out, h)
	if err != nil {
		return err
	}
	defer fw.Abort()
	var buf []byte
	for i, t := range h.Tensors {
		st, _ := src[i].Tensor(t.Name)
		if buf, err = src[i].ReadTensor(st, buf); err != nil {
			return err
		}
		if err := fw.WriteTensor(t.Name, buf); err != nil {
			return err
		}
	}
	return fw.Commit()
}

func sameArchitecture(a, b *gguf.File) error {
	if a.Metadata.Architecture() != b.Metadata.Architecture() {
		return fmt.Errorf("%s is %q but %s is %q", a.Path, a.Metadata.Architecture(), b.Path, b.Metadata.Architecture())
	}
	return nil
}

func equalShape(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func sameValues(a *gguf.File, at gguf.TensorInfo, b *gguf.File, bt gguf.TensorInfo, codec kernels.Codec) (bool, error) {
	if at.Type == bt.Type {
		ra, err := a.ReadTensor(at, nil)
		if err != nil {
			return false, err
		}
		rb, err := b.ReadTensor(bt, nil)
		if err != nil {
			return false, err
		}
		return bytes.Equal(ra, rb), nil
	}
	va, err := kernels.DecodeTensor(a, at, codec)
	if err != nil {
		return false, err
	}
	vb, err := kernels.DecodeTensor(b, bt, codec)
	if err != nil {
		return false, err
	}
	for i := range va {
		if va[i] != vb[i] {
			return false, nil
		}
	}
	return true, nil
}
