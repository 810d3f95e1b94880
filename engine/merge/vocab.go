package merge

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"slices"
	"strings"

	"github.com/evomerge/evomerge/engine/gguf"
)

// Vocabularies. Fine-tunes often add tokens (chat markers, tool tokens) to
// their base's vocabulary, so their embedding matrices have more rows than
// the base's and a row index no longer names the same token everywhere.
// mergekit's tokenizer_source (mergekit/tokenizer/build.py and embed.py)
// handles this, and evomerge follows its implemented behaviour:
//
//   - the output vocabulary is the base model's ("base"; the first model
//     without a base), a named model's, or the union of all ("union": the
//     base's tokens, then every other model's ordinary tokens it lacks,
//     then their added tokens, in model order; appended ordinary tokens
//     become user-defined tokens, as Hugging Face's add_tokens makes them);
//   - each model's token_embd and output rows are permuted into the output
//     vocabulary by token text;
//   - a row a model lacks is filled, for that model only, with: the row of
//     the one model that has the token; zeros when none has it; the base's
//     row when the base has it; otherwise the mean of the rows of the
//     models that have it. The merge method then runs on the permuted
//     rows like on any tensor.
//
// The output GGUF carries the chosen model's tokenizer.* metadata (token
// types, scores, merges, special-token ids, chat template); a union adds
// its tokens with score 0. Vocabularies are comparable only when they
// share their ordinary tokens position by position and differ in added
// tokens (CONTROL, USER_DEFINED or UNUSED tokens: added or renamed
// specials) or by tokens appended at the end; anything else means the
// models were trained with different tokenizers, and the merge stops with
// the first differing token.

// TokenizerSources are the fixed values of Recipe.TokenizerSource besides
// a model name.
var TokenizerSources = []string{"base", "union"}

// llama.cpp's token types (enum llama_token_type) that mark added tokens.
const (
	tokenControl     = 3
	tokenUserDefined = 4
	tokenUnused      = 5
)

// vocabulary is a model's tokenizer vocabulary as its GGUF stores it.
type vocabulary struct {
	model  string // tokenizer.ggml.model ("llama", "gpt2", …)
	tokens []string
	types  []int32   // nil when the file has none
	scores []float32 // nil when the file has none
	index  map[string]int
}

func readVocabulary(md gguf.Metadata) *vocabulary {
	toks, ok := md.Strings("tokenizer.ggml.tokens")
	if !ok {
		return nil
	}
	v := &vocabulary{model: md.String("tokenizer.ggml.model"), tokens: toks, index: make(map[string]int, len(toks))}
	for i, t := range toks {
		if _, dup := v.index[t]; !dup {
			v.index[t] = i
		}
	}
	if a, ok := md.Get("tokenizer.ggml.token_type"); ok {
		if arr, ok := a.(gguf.Array); ok {
			if ts, ok := arr.Values.([]int32); ok && len(ts) == len(toks) {
				v.types = ts
			}
		}
	}
	if a, ok := md.Get("tokenizer.ggml.scores"); ok {
		if arr, ok := a.(gguf.Array); ok {
			if sc, ok := arr.Values.([]float32); ok && len(sc) == len(toks) {
				v.scores = sc
			}
		}
	}
	return v
}

// added reports whether token i is an added token (control, user-defined
// or unused), the kind fine-tunes add or rename.
func (v *vocabulary) added(i int) bool {
	if v.types == nil || i >= len(v.types) {
		return false
	}
	switch v.types[i] {
	case tokenControl, tokenUserDefined, tokenUnused:
		return true
	}
	return false
}

func (v *vocabulary) typeOf(i int) int32 {
	if v.types == nil {
		return 1
	}
	return v.types[i]
}

// VocabRelation is how one model's vocabulary relates to another's.
type VocabRelation int

const (
	// VocabIdentical: the same tokens in the same order.
	VocabIdentical VocabRelation = iota
	// VocabAddedTokens: the same ordinary tokens; they differ only in added
	// tokens (appended, or specials renamed in place).
	VocabAddedTokens
	// VocabExtended: one appends ordinary tokens to the other's.
	VocabExtended
	// VocabUnrelated: different tokenizers; rows cannot be aligned.
	VocabUnrelated
)

func (r VocabRelation) String() string {
	switch r {
	case VocabIdentical:
		return "identical"
	case VocabAddedTokens:
		return "the same ordinary tokens, different added tokens"
	case VocabExtended:
		return "one vocabulary extends the other"
	}
	return "unrelated"
}

// VocabError says how a model's vocabulary differs from the reference's
// and where first.
type VocabError struct {
	Model, Reference string
	Relation         VocabRelation
	Index            int    // first position that differs
	Token, RefToken  string // the tokens there ("" if beyond the vocabulary)
	// ModelKind, RefKind are the tokenizer models when they differ.
	ModelKind, RefKind string
	// Sizes are the two vocabularies' sizes (this model's, the reference's).
	Sizes [2]int
}

func (e *VocabError) Error() string {
	at := func(tok string) string {
		if tok == "" {
			return "absent"
		}
		return fmt.Sprintf("%q", tok)
	}
	where := fmt.Sprintf("token %d is %s there, %s here", e.Index, at(e.RefToken), at(e.Token))
	switch {
	case e.ModelKind != e.RefKind:
		return fmt.Sprintf("model %s: its tokenizer (%s) is not the one of %s (%s): vocabularies of different tokenizer types cannot be aligned",
			e.Model, e.ModelKind, e.Reference, e.RefKind)
	case e.Relation == VocabUnrelated:
		return fmt.Sprintf("model %s: vocabulary unrelated to %s's (%s): different tokenizers cannot be aligned", e.Model, e.Reference, where)
	case e.Sizes[0] != e.Sizes[1]:
		return fmt.Sprintf("model %s: vocabulary of %d tokens differs from %d in %s (%s; %s): set tokenizer_source to base, union or a model",
			e.Model, e.Sizes[0], e.Sizes[1], e.Reference, where, e.Relation)
	}
	return fmt.Sprintf("model %s: vocabulary differs from %s's in added tokens (%s): set tokenizer_source to base, union or a model",
		e.Model, e.Reference, where)
}

// relate compares vocabulary v (of model) with ref.
func relate(v, ref *vocabulary, model, refName string) *VocabError {
	e := &VocabError{Model: model, Reference: refName, Index: -1, ModelKind: v.model, RefKind: ref.model,
		Sizes: [2]int{len(v.tokens), len(ref.tokens)}}
	if v.model != ref.model {
		e.Relation = VocabUnrelated
		return e
	}
	n := min(len(v.tokens), len(ref.tokens))
	for i := range n {
		if v.tokens[i] == ref.tokens[i] {
			continue
		}
		if e.Index < 0 {
			e.Index, e.Token, e.RefToken = i, v.tokens[i], ref.tokens[i]
		}
		if !v.added(i) && !ref.added(i) {
			e.Relation = VocabUnrelated
			e.Index, e.Token, e.RefToken = i, v.tokens[i], ref.tokens[i]
			return e
		}
		e.Relation = VocabAddedTokens
	}
	longer, tail := v, v.tokens[n:]
	if len(ref.tokens) > n {
		longer, tail = ref, ref.tokens[n:]
	}
	for j := range tail {
		if e.Index < 0 {
			e.Index = n
			if longer == v {
				e.Token = tail[0]
			} else {
				e.RefToken = tail[0]
			}
		}
		if longer.added(n + j) {
			e.Relation = max(e.Relation, VocabAddedTokens)
		} else {
			e.Relation = VocabExtended
		}
	}
	if e.Index < 0 {
		return nil
	}
	return e
}

// CompareVocabularies compares the vocabularies of GGUF files with the
// first one's. It returns the widest relation found (VocabIdentical when
// all are equal) and, unless all are identical, the error describing the
// first model that differs most.
func CompareVocabularies(paths ...string) (VocabRelation, error) {
	if len(paths) == 0 {
		return VocabIdentical, nil
	}
	vocab := func(p string) (*vocabulary, error) {
		f, err := gguf.Open(p)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		v := readVocabulary(f.Metadata)
		if v == nil {
			return nil, fmt.Errorf("model %s: no tokenizer.ggml.tokens", p)
		}
		return v, nil
	}
	ref, err := vocab(paths[0])
	if err != nil {
		return VocabIdentical, err
	}
	rel := VocabIdentical
	var worst *VocabError
	for _, p := range paths[1:] {
		v, err := vocab(p)
		if err != nil {
			return VocabIdentical, err
		}
		if e := relate(v, ref, p, paths[0]); e != nil && (worst == nil || e.Relation > worst.Relation) {
			worst, rel = e, e.Relation
		}
	}
	if worst == nil {
		return VocabIdentical, nil
	}
	return rel, worst
}

// vocabPlan is the output vocabulary and how each source's embedding rows
// map onto it.
type vocabPlan struct {
	out   *vocabulary
	from  *gguf.File            // whose tokenizer.* metadata the output carries
	perm  map[string][]int32    // source key → per output token, its row there or −1
	size  map[string]int        // source key → its vocabulary size
	key   [32]byte              // digest of the output vocabulary, for tensor cache keys
	extra map[string]gguf.Array // tokenizer arrays replaced in the output (union)
}

// isEmbedding reports whether a tensor has one row per token (mergekit's
// is_embed weights: the token embedding and the output head).
func isEmbedding(name string) bool {
	return name == "token_embd.weight" || name == "output.weight"
}

// planVocab checks the sources' vocabularies against the reference and,
// when they differ and the recipe says how, plans the output vocabulary.
func (p *Plan) planVocab(ref *gguf.File, errs *problems) {
	r := p.Recipe
	vocabs := map[string]*vocabulary{}
	var keys []string
	for _, m := range r.modelNames() {
		var v *vocabulary
		switch s := p.sources[m].(type) {
		case *fileSource:
			v = readVocabulary(s.f.Metadata)
		case *planSource:
			v = s.plan.outputVocabulary()
		}
		if v != nil {
			vocabs[m] = v
			keys = append(keys, m)
		}
	}
	refV := vocabs[p.refKey]
	if refV == nil {
		return
	}
	differ := false
	for _, m := range keys {
		if !slices.Equal(vocabs[m].tokens, refV.tokens) {
			differ = true
		}
	}
	src := r.TokenizerSource
	if !differ && (src == "" || src == "base" || src == "union") {
		return
	}
	if differ && src == "" {
		for _, m := range keys {
			if e := relate(vocabs[m], refV, m, p.refKey); e != nil {
				errs.add("model "+m, "%s", strings.TrimPrefix(e.Error(), "model "+m+": "))
			}
		}
		return
	}
	// The kept vocabulary: base (the reference: the base, else the first
	// model), a named model, or the union built on the base's.
	keep, keepKey := refV, p.refKey
	from := ref
	if src != "base" && src != "union" {
		k, f, v, err := p.namedVocab(src)
		if err != nil {
			errs.add("tokenizer_source", "%v", err)
			return
		}
		keep, keepKey, from = v, k, f
	}
	for _, m := range keys {
		if e := relate(vocabs[m], keep, m, keepKey); e != nil && e.Relation == VocabUnrelated {
			errs.add("model "+m, "%s", strings.TrimPrefix(e.Error(), "model "+m+": "))
		}
	}
	if len(*errs) > 0 {
		return
	}
	out := keep
	vp := &vocabPlan{from: from, perm: map[string][]int32{}, size: map[string]int{}}
	if src == "union" {
		out, vp.extra = unionVocabulary(keep, keys, vocabs)
	}
	vp.out = out
	for _, m := range keys {
		v := vocabs[m]
		perm := make([]int32, len(out.tokens))
		for i, tok := range out.tokens {
			perm[i] = -1
			if j, ok := v.index[tok]; ok {
				perm[i] = int32(j)
			}
		}
		vp.perm[m], vp.size[m] = perm, len(v.tokens)
	}
	h := sha256.New()
	for _, t := range out.tokens {
		h.Write([]byte(t))
		h.Write([]byte{0})
	}
	copy(vp.key[:], h.Sum(nil))
	p.vocab = vp
}

// namedVocab finds the model tokenizer_source names: one of the recipe's
// models (by its path or file name) or another GGUF file.
func (p *Plan) namedVocab(name string) (string, *gguf.File, *vocabulary, error) {
	for _, m := range p.Recipe.modelNames() {
		if m == name || shortName(m) == strings.TrimSuffix(filepath.Base(name), ".gguf") {
			f := p.sources[m].file()
			if f == nil {
				break
			}
			return m, f, readVocabulary(f.Metadata), nil
		}
	}
	f, err := gguf.Open(name)
	if err != nil {
		return "", nil, nil, fmt.Errorf("%q is neither base, union, one of the models nor a GGUF file: %w", name, err)
	}
	p.files = append(p.files, f)
	v := readVocabulary(f.Metadata)
	if v == nil {
		return "", nil, nil, fmt.Errorf("%s has no vocabulary", name)
	}
	return name, f, v, nil
}

// unionVocabulary is mergekit's union: the base's tokens, then the other
// models' ordinary tokens it lacks, then their added tokens, each once, in
// model order. It returns the new tokenizer arrays for the output.
func unionVocabulary(base *vocabulary, keys []string, vocabs map[string]*vocabulary) (*vocabulary, map[string]gguf.Array) {
	out := &vocabulary{model: base.model, tokens: slices.Clone(base.tokens), index: map[string]int{}}
	types := make([]int32, len(base.tokens))
	scores := make([]float32, len(base.tokens))
	for i := range base.tokens {
		types[i] = base.typeOf(i)
		if base.scores != nil {
			scores[i] = base.scores[i]
		}
		if _, dup := out.index[base.tokens[i]]; !dup {
			out.index[base.tokens[i]] = i
		}
	}
	add := func(tok string, typ int32) {
		if _, ok := out.index[tok]; ok {
			return
		}
		out.index[tok] = len(out.tokens)
		out.tokens = append(out.tokens, tok)
		types = append(types, typ)
		scores = append(scores, 0)
	}
	for _, addedPass := range []bool{false, true} {
		for _, m := range keys {
			v := vocabs[m]
			for i, tok := range v.tokens {
				if v.added(i) == addedPass {
					typ := v.typeOf(i)
					if !addedPass {
						typ = tokenUserDefined // Hugging Face's add_tokens: matched as a whole string
					}
					add(tok, typ)
				}
			}
		}
	}
	out.types, out.scores = types, scores
	return out, map[string]gguf.Array{
		"tokenizer.ggml.tokens":     {Elem: gguf.ValueString, Values: out.tokens},
		"tokenizer.ggml.token_type": {Elem: gguf.ValueInt32, Values: types},
		"tokenizer.ggml.scores":     {Elem: gguf.ValueFloat32, Values: scores},
	}
}

// outputVocabulary is the vocabulary the plan's output carries.
func (p *Plan) outputVocabulary() *vocabulary {
	if p.vocab != nil {
		return p.vocab.out
	}
	if f := p.sources[p.refKey].file(); f != nil {
		return readVocabulary(f.Metadata)
	}
	return nil
}

// applyVocab resizes the embedding tensors to the output vocabulary and
// marks those with an operand whose rows must be permuted (the others stay
// plain copies or merges, byte-exact where they were).
func (p *Plan) applyVocab() {
	if p.vocab == nil {
		return
	}
	n := len(p.vocab.out.tokens)
	for i := range p.Tensors {
		tp := &p.Tensors[i]
		if !isEmbedding(tp.Out.Name) || len(tp.Out.Shape) != 2 {
			continue
		}
		tp.Out.Shape[1] = uint64(n)
		for _, op := range tp.operands() {
			if !p.vocab.identity(op.Source) {
				tp.vocab = true
			}
		}
	}
}

// identity reports whether a source's rows are already the output's.
func (vp *vocabPlan) identity(source string) bool {
	perm, ok := vp.perm[source]
	if !ok || vp.size[source] != len(perm) {
		return false
	}
	for i, j := range perm {
		if int(j) != i {
			return false
		}
	}
	return true
}

// vocabMetadata replaces md's tokenizer.* entries with those of the
// vocabulary's source (the union's arrays in place of its own).
func (p *Plan) vocabMetadata(md gguf.Metadata) gguf.Metadata {
	if p.vocab == nil {
		return md
	}
	var out gguf.Metadata
	inserted := false
	insert := func() {
		for _, kv := range p.vocab.from.Metadata {
			if !strings.HasPrefix(kv.Key, "tokenizer.") {
				continue
			}
			if a, ok := p.vocab.extra[kv.Key]; ok {
				kv.Value = a
			}
			out = append(out, kv)
		}
		inserted = true
	}
	for _, kv := range md {
		if strings.HasPrefix(kv.Key, "tokenizer.") {
			if !inserted {
				insert()
			}
			continue
		}
		out = append(out, kv)
	}
	if !inserted {
		insert()
	}
	if key := out.Architecture() + ".vocab_size"; out.Index(key) >= 0 {
		out = out.Set(key, sameIntType(out, key, uint64(len(p.vocab.out.tokens))))
	}
	return out
}

// readEmbeddings reads the operands of an embedding tensor, each permuted
// into the output vocabulary, into bufs (one per operand, output-sized),
// filling the rows an operand lacks as mergekit's embed.py does. base is
// the index in ops of the base model, or −1.
func (p *Plan) readEmbeddings(read func(Operand, []float32) error, tp *TensorPlan, ops []Operand, base int, bufs [][]float32) error {
	dim := int(tp.Out.Shape[0])
	nOut := int(tp.Out.Shape[1])
	src := make([][]float32, len(ops))
	for k, op := range ops {
		perm, ok := p.vocab.perm[op.Source]
		if !ok {
			return fmt.Errorf("tensor %s: no vocabulary for %s", tp.Out.Name, op.Source)
		}
		src[k] = p.floats.get(dim * p.vocab.size[op.Source])
		defer p.floats.put(src[k])
		if len(perm) != nOut {
			return fmt.Errorf("tensor %s: %s maps %d tokens, the output has %d", tp.Out.Name, op.Source, len(perm), nOut)
		}
		if err := read(op, src[k]); err != nil {
			return err
		}
	}
	row := func(k, j int) []float32 {
		r := int(p.vocab.perm[ops[k].Source][j])
		return src[k][r*dim : (r+1)*dim]
	}
	fill := make([]float32, dim)
	for j := range nOut {
		var have []int
		for k := range ops {
			if p.vocab.perm[ops[k].Source][j] >= 0 {
				have = append(have, k)
			}
		}
		if len(have) < len(ops) {
			switch {
			case len(have) == 1:
				copy(fill, row(have[0], j))
			case len(have) == 0:
				clear(fill)
			case base >= 0 && slices.Contains(have, base):
				copy(fill, row(base, j))
			default:
				clear(fill)
				for _, k := range have {
					for i, x := range row(k, j) {
						fill[i] += x
					}
				}
				for i := range fill {
					fill[i] /= float32(len(have))
				}
			}
		}
		for k := range ops {
			dst := bufs[k][j*dim : (j+1)*dim]
			if p.vocab.perm[ops[k].Source][j] >= 0 {
				copy(dst, row(k, j))
			} else {
				copy(dst, fill)
			}
		}
	}
	return nil
}
