package cli

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestLogFileProblemIsSaid: a log file that cannot be created is said on
// stderr, with how to choose another, and the command still runs.
func TestLogFileProblemIsSaid(t *testing.T) {
	dir := t.TempDir()
	notDir := filepath.Join(dir, "file")
	writeTestFile(t, notDir, "a file, not a directory")
	var out, errb bytes.Buffer
	code := run([]string{"report", filepath.Join(dir, "no-run"), "--log-file", filepath.Join(notDir, "logs", "evomerge.log")},
		strings.NewReader(""), &out, &errb)
	stderr := errb.String()
	if code != 1 || !strings.Contains(stderr, "evomerge-tui: warning: no log file: mkdir "+notDir+": not a directory") ||
		!strings.Contains(stderr, "--log-file PATH writes it elsewhere") || !strings.Contains(stderr, "summary.json is missing") {
		t.Fatalf("exit %d, stderr:\n%s\nwant the log file's problem said, then the command's own error", code, stderr)
	}
}

// TestLogFileRotates: the log file is rotated at its size limit, the old
// part kept beside it.
func TestLogFileRotates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "logs", "evomerge.log")
	w, err := openLogFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	log := slog.New(slog.NewTextHandler(w, nil))
	line := strings.Repeat("x", 1000)
	for i := range logMaxMB*1024 + 100 { // a little more than the limit
		log.Info("filler", "i", i, "text", line)
	}
	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
		info, _ := e.Info()
		if info.Size() > logMaxMB<<20 {
			t.Errorf("%s holds %d bytes, over the %d MB limit", e.Name(), info.Size(), logMaxMB)
		}
	}
	if len(names) != 2 || !strings.HasPrefix(names[0], "evomerge-") || names[1] != "evomerge.log" {
		t.Fatalf("log directory holds %v, want evomerge.log and one rotated file", names)
	}
}

// TestUsesTUI: slog stays off stderr exactly when the command takes over
// the terminal.
func TestUsesTUI(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		terminal bool
		want     bool
	}{
		{nil, true, true}, // the workbench
		{[]string{"--config", "x.toml"}, true, true},
		{[]string{"--run"}, true, true},
		{[]string{"--run", "--headless"}, true, false},
		{[]string{"--run"}, false, false},
		{[]string{"--generate-config"}, true, true},
		{[]string{"--evaluate", "m.gguf"}, true, false},
		{[]string{"--generate", "m.gguf", "--prompt", "x"}, true, false},
		{[]string{"run"}, true, true},
		{[]string{"run", "--headless"}, true, false},
		{[]string{"generate-config"}, true, true},
		{[]string{"evaluate", "m.gguf"}, true, false},
		{[]string{"merge", "r.toml"}, true, false},
		{[]string{"worker"}, true, false},
	} {
		root := newRoot()
		cmd, rest, err := root.Find(tt.args)
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatal(err)
		}
		if got := usesTUI(cmd, tt.terminal); got != tt.want {
			t.Errorf("%v on a terminal %v: usesTUI %v, want %v", tt.args, tt.terminal, got, tt.want)
		}
	}
}
