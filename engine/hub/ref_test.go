package hub

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestParseRef(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Ref
		err  error
	}{
		{in: "org/name", want: Ref{Repo: "org/name"}},
		{in: "hf://org/name", want: Ref{Repo: "org/name"}},
		{in: "TheOrg/Model-7B.v2_x:Q8_0", want: Ref{Repo: "TheOrg/Model-7B.v2_x", Quant: "Q8_0"}},
		{in: "org/name:UD-Q4_K_XL", want: Ref{Repo: "org/name", Quant: "UD-Q4_K_XL"}},
		{in: "org/name:model.Q4_K_M.gguf", want: Ref{Repo: "org/name", File: "model.Q4_K_M.gguf"}},
		{in: "org/name:sub/model.GGUF", want: Ref{Repo: "org/name", File: "sub/model.GGUF"}},
		{in: "org/name/model.gguf", want: Ref{Repo: "org/name", File: "model.gguf"}},
		{in: "org/name/a/b/model.gguf", want: Ref{Repo: "org/name", File: "a/b/model.gguf"}},
		{in: "org/name@v1.0", want: Ref{Repo: "org/name", Revision: "v1.0"}},
		{in: "org/name@refs/pr/3:q8_0", want: Ref{Repo: "org/name", Revision: "refs/pr/3", Quant: "q8_0"}},
		{in: "org/name@0123456789abcdef0123456789abcdef01234567:m.gguf", want: Ref{Repo: "org/name", Revision: "0123456789abcdef0123456789abcdef01234567", File: "m.gguf"}},

		// Prefixes: huggingface_hub's, Ollama's and the bare host.
		{in: "hf:org/name", want: Ref{Repo: "org/name"}},
		{in: "hf.co/org/name:Q4_K_M", want: Ref{Repo: "org/name", Quant: "Q4_K_M"}},
		{in: "huggingface.co/org/name", want: Ref{Repo: "org/name"}},
		{in: "hf://org/name/sub/m.gguf", want: Ref{Repo: "org/name", File: "sub/m.gguf"}},

		// Legacy ids without an organisation: the hub redirects them.
		{in: "gpt2", want: Ref{Repo: "gpt2"}},
		{in: "bert-base-uncased", want: Ref{Repo: "bert-base-uncased"}},
		{in: "distilbert-base-uncased:Q8_0", want: Ref{Repo: "distilbert-base-uncased", Quant: "Q8_0"}},
		{in: "gpt2@v1:model.gguf", want: Ref{Repo: "gpt2", Revision: "v1", File: "model.gguf"}},
		{in: "hf:gpt2", want: Ref{Repo: "gpt2"}},

		// Links, as copied from the hub's pages.
		{in: "https://huggingface.co/org/name", want: Ref{Repo: "org/name"}},
		{in: "https://huggingface.co/org/name/", want: Ref{Repo: "org/name"}},
		{in: "https://hf.co/org/name:Q8_0", want: Ref{Repo: "org/name", Quant: "Q8_0"}},
		{in: "https://huggingface.co/org/name/tree/main", want: Ref{Repo: "org/name"}},
		{in: "https://huggingface.co/org/name/tree/v2.0", want: Ref{Repo: "org/name", Revision: "v2.0"}},
		{in: "https://huggingface.co/org/name/blob/main/m-Q4_K_M.gguf", want: Ref{Repo: "org/name", File: "m-Q4_K_M.gguf"}},
		{in: "https://www.huggingface.co/org/name/resolve/main/sub/m.gguf?download=true", want: Ref{Repo: "org/name", File: "sub/m.gguf"}},
		{in: "https://huggingface.co/org/name/resolve/refs%2Fpr%2F3/m.gguf", want: Ref{Repo: "org/name", Revision: "refs/pr/3", File: "m.gguf"}},
		{in: "http://huggingface.co/gpt2", want: Ref{Repo: "gpt2"}},
		{in: "https://huggingface.co/gpt2/blob/main/model.gguf", want: Ref{Repo: "gpt2", File: "model.gguf"}},

		{in: "model.gguf", err: ErrInvalidRef},
		{in: "https://example.com/org/name", err: ErrInvalidRef},
		{in: "https://huggingface.co/datasets/org/name", err: ErrInvalidRef},
		{in: "https://huggingface.co/", err: ErrInvalidRef},
		{in: "https://huggingface.co/org/name/tree/main/sub", err: ErrInvalidRef},
		{in: "https://huggingface.co/org/name/blob/main", err: ErrInvalidRef},
		{in: "https://huggingface.co/org/name/resolve", err: ErrInvalidRef},
		{in: "https://huggingface.co/org/name/commits/main", err: ErrInvalidRef},
		{in: "https://huggingface.co/org/name/blob/main/config.json", err: ErrInvalidRef},
		{in: "https://huggingface.co/org/name/blob/main/..%2F..%2Fx.gguf", err: ErrUnsafePath},
		{in: "", err: ErrInvalidRef},
		{in: "org/", err: ErrInvalidRef},
		{in: "/name", err: ErrInvalidRef},
		{in: "org/na me", err: ErrInvalidRef},
		{in: "org/-name", err: ErrInvalidRef},
		{in: "org/na--me", err: ErrInvalidRef},
		{in: "org/name:", err: ErrInvalidRef},
		{in: "org/name@", err: ErrInvalidRef},
		{in: "org/name:Q8 0", err: ErrInvalidRef},
		{in: "org/name/sub/dir", err: ErrInvalidRef},
		{in: "hf://", err: ErrInvalidRef},
		{in: "org/name:model.safetensors/x", err: ErrInvalidRef},
		{in: "org/name/a.gguf:Q8_0", err: ErrInvalidRef},
		{in: "org/name:../x.gguf", err: ErrUnsafePath},
		{in: "org/name/../../x.gguf", err: ErrUnsafePath},
		{in: "org/name:/etc/x.gguf", err: ErrUnsafePath},
		{in: `org/name:a\..\x.gguf`, err: ErrUnsafePath},
		{in: "org/name:a//x.gguf", err: ErrUnsafePath},
		{in: "org/name@../../x", err: ErrUnsafePath},
	} {
		got, err := ParseRef(tc.in)
		if tc.err != nil {
			if !errors.Is(err, tc.err) {
				t.Errorf("ParseRef(%q) = %+v, %v; want %v", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRef(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		// String round-trips.
		if again, err := ParseRef(got.String()); err != nil || again != got {
			t.Errorf("ParseRef(%q.String() = %q) = %+v, %v", tc.in, got.String(), again, err)
		}
	}
}

func TestIsLocalPath(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, p := range []string{"models/m.gguf", "org/name", "exists.gguf"} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		in         string
		local, hub bool
	}{
		{in: "./x.gguf", local: true},
		{in: "../x.gguf", local: true},
		{in: "/abs/x.gguf", local: true},
		{in: "~/models/x.gguf", local: true},
		{in: "exists.gguf", local: true},
		{in: "org/name", local: true},             // an existing file wins
		{in: "models/m.gguf", local: true},        // exists
		{in: "models/missing.gguf", local: true},  // .gguf under an existing directory
		{in: "nodir/missing.gguf", local: true},   // a file in a directory: no hub form
		{in: "missing.gguf", local: true},         // a file name
		{in: "nodir/sub/missing.gguf", hub: true}, // org/name/file form, no such directory
		{in: "models/sub/missing.gguf", local: true},
		{in: "hf://org/name", hub: true}, // forced
		{in: "hf:exists.gguf", hub: false},
		{in: "hf.co/org/name", hub: true},
		{in: "https://huggingface.co/org/name", hub: true},
		{in: "acme/tiny-GGUF", hub: true},
		{in: "acme/tiny-GGUF:Q8_0", hub: true},
		{in: "acme/tiny-GGUF:m.gguf", hub: true},
		{in: "acme/tiny-GGUF/m.gguf", hub: true},
		{in: "gpt2", hub: true}, // a legacy id
		{in: "bert-base-uncased", hub: true},
		{in: "https://example.com/m.gguf"},
		{in: ""},
	} {
		if got := IsLocalPath(tc.in); got != tc.local {
			t.Errorf("IsLocalPath(%q) = %v", tc.in, got)
		}
		if got := IsHubRef(tc.in); got != tc.hub {
			t.Errorf("IsHubRef(%q) = %v", tc.in, got)
		}
	}
}
