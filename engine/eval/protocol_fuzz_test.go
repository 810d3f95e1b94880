package eval

import (
	"bytes"
	"encoding/json"
	"testing"
)

// FuzzProtocol: any line a worker or the parent might read — a request,
// a response, a result of each kind — decodes or fails without a panic,
// and what decodes re-encodes to JSON that decodes to the same encoding
// (non-finite values included, see Float).
func FuzzProtocol(f *testing.F) {
	for _, s := range []string{
		`{"id":1,"op":"perplexity","model":"m.gguf","texts":[{"name":"a","content":"x y z"}],"perplexity":{"context":256,"chunks":2}}`,
		`{"id":2,"event":"done","result":{"texts":[{"name":"a","perplexity":"+Inf","perplexity_stderr":"NaN","nll":812.5,"tokens":127,"chunks":1,"seconds":0.5}]}}`,
		`{"coherence":0.25,"ref_perplexity":"+Inf","distinct2":1,"samples":[{"prompt":"p","text":"t","ref_perplexity":"Inf","distinct2":1,"score":0}]}`,
		`{"tasks":2,"correct":1,"accuracy":0.5,"correct_norm":2,"accuracy_norm":1}`,
		`{"id":3,"event":"error","error":"boom","kind":"load","retire":true}`,
		`{"pid":1,"threads":2,"gpus":[],"loaded":["a"]}`,
		`"-Inf"`, `1e308`, `null`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		roundTrip(t, line, &Request{})
		roundTrip(t, line, &Response{})
		roundTrip(t, line, &PerplexityReply{})
		roundTrip(t, line, &CoherenceResult{})
		roundTrip(t, line, &TaskResult{})
		roundTrip(t, line, &Health{})
		roundTrip(t, line, &ModelInfo{})
		roundTrip(t, line, &GenerateResult{})
		var x Float
		roundTrip(t, line, &x)
	})
}

// roundTrip decodes line into v and, when that works, checks that v's
// encoding is stable: encode, decode into a fresh value, encode again.
func roundTrip[T any](t *testing.T, line []byte, v *T) {
	t.Helper()
	if err := json.Unmarshal(line, v); err != nil {
		return
	}
	a, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%T decoded from %q does not encode: %v", v, line, err)
	}
	var w T
	if err := json.Unmarshal(a, &w); err != nil {
		t.Fatalf("%T: its own encoding %s does not decode: %v", v, a, err)
	}
	b, err := json.Marshal(&w)
	if err != nil || !bytes.Equal(a, b) {
		t.Fatalf("%T changed in a round trip (%v):\n%s\n%s", v, err, a, b)
	}
}
