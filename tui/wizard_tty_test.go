package tui

import (
	"bytes"
	"io"
	"path/filepath"
	"testing"
	"time"

	"github.com/charmbracelet/x/ansi"

	"github.com/evomerge/evomerge/engine/config"
)

// The interactive (non-accessible) forms, driven by key bytes as a
// terminal would send them: enter through every field keeps the defaults;
// the population is typed over its default.
func TestGenerateConfigInteractive(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tty.toml")
	in, w := io.Pipe()
	var out syncWriter
	var buf bytes.Buffer
	out.w = &buf
	errc := make(chan error, 1)
	go func() { errc <- GenerateConfig(in, &out, path, false) }()
	send := func(s string) {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
		// huh moves to the next field through a command; a key that
		// arrives before that command's message would act on the same
		// field again (as with a fast typist), so keys are spaced —
		// wider under the race detector, which slows the program tenfold.
		time.Sleep(keySpacing)
	}
	time.Sleep(100 * time.Millisecond)
	// Models, base, techniques, layer groups, output type, optimizer; then
	// the population: erase "10", type 6.
	for range 6 {
		send("\r")
	}
	send("\x7f")
	send("\x7f")
	send("6")
	for range 45 {
		send("\r")
		select {
		case err := <-errc:
			if err != nil {
				t.Fatal(err)
			}
			c, err := config.Load(path)
			if err != nil {
				t.Fatal(err)
			}
			if c.Evolution.Population != 6 || c.Evolution.Generations != config.Default().Evolution.Generations {
				t.Fatalf("population %d", c.Evolution.Population)
			}
			return
		default:
		}
	}
	w.Close()
	out.mu.Lock() // the program may still be rendering
	defer out.mu.Unlock()
	t.Fatalf("form did not finish:\n%s", ansi.Strip(buf.String()[max(0, buf.Len()-4000):]))
}
