package merge

// SumForm is an output tensor's arithmetic when it is a weighted sum of
// its inputs, for executors outside this package (engine/llm's ggml
// graph): Scale·Σ Coef_i·X_i, or, with a Base, Scale·(Base + Σ
// Coef_i·(X_i − Base)). The coefficients are the ones the fused kernels
// use (linearTerms, taskArithCoefs), in the same order, so an executor
// that sums in F32 in that order computes what ComputeTensor computes (the
// Go kernels fuse no multiply-adds).
//
// With Consensus (TIES whose every density is 1) the tensor is
// Scale·(Base + Lambda·SignConsensus(Coef_i·(X_i − Base), Coef_i,
// Normalize)): the Coefs are the weights w_i (kernels.SignConsensus).
type SumForm struct {
	Base      *Operand
	Terms     []SumTerm
	Scale     float64
	Consensus bool
	Normalize bool
	Lambda    float32
}

// SumTerm is one input of a SumForm.
type SumTerm struct {
	Operand
	Coef float32
}

// SumForm returns tensor i's arithmetic as a weighted sum, or ok = false
// when it is not one: methods other than linear, task_arithmetic and the
// members of its family whose every density is 1 (no sparsification; TIES
// as a Consensus form), copies that permute vocabulary rows, and tensors
// stored with an offset. A parameter error is returned as ComputeTensor returns
// it.
func (p *Plan) SumForm(i int) (f SumForm, ok bool, err error) {
	tp := &p.Tensors[i]
	if tp.vocab || tp.Offset != 0 {
		return f, false, nil
	}
	prog, ok, err := fusedFor(tp)
	if err != nil || !ok || len(prog.terms) == 0 {
		return f, false, err
	}
	f.Scale = tp.Scale
	f.Consensus, f.Normalize, f.Lambda = prog.consensus, prog.normalize, prog.lambda
	if prog.taskArith {
		b := *tp.Base
		f.Base = &b
	}
	for _, t := range prog.terms {
		if t.keep >= 0 {
			return SumForm{}, false, nil
		}
		coef := t.coef
		if prog.copy {
			coef = 1
		}
		f.Terms = append(f.Terms, SumTerm{Operand: tp.Models[t.model], Coef: coef})
	}
	return f, true, nil
}
