package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"gopkg.in/natefinch/lumberjack.v2"
)

// The log: slog writes to a rotating file (--log-file, by default in the
// user's cache directory) and, unless the TUI owns the terminal, to
// stderr (warnings, or the --log-level given). Evaluation workers' stderr
// (llama.cpp's log) reaches it through the pool at debug level, its error
// lines at warn (eval.PoolOptions.Log); a run's events are logged by
// runLog (runlog.go).

// The log file is rotated at logMaxMB megabytes; logBackups old files are
// kept beside it (evomerge-<time>.log).
const (
	logMaxMB   = 10
	logBackups = 3
)

func defaultLogFile() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "evomerge", "evomerge.log")
}

// setupLogging sends slog to the rotating log file and, unless the TUI owns
// the terminal, to stderr as well (warnings only, unless --log-level is
// given). A log file that cannot be written is
// said once on stderr; the command goes on without it.
func (g *globals) setupLogging(cmd *cobra.Command) error {
	var level slog.Level
	if err := level.UnmarshalText([]byte(g.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", g.logLevel)
	}
	opts := &slog.HandlerOptions{Level: level}
	var handlers []slog.Handler
	if g.logFile != "" {
		if w, err := openLogFile(g.logFile); err != nil {
			fmt.Fprintf(cmd.ErrOrStderr(), "evomerge-tui: warning: no log file: %v (--log-file PATH writes it elsewhere, --log-file \"\" turns it off)\n", err)
		} else {
			handlers = append(handlers, slog.NewTextHandler(w, opts))
		}
	}
	if !usesTUI(cmd, isTerminal()) {
		// The terminal gets warnings, or what --log-level asks for when
		// it is given: a headless run's progress is on stdout and its
		// story in the log file.
		errOpts := &slog.HandlerOptions{Level: max(level, slog.LevelWarn)}
		if cmd.Flags().Changed("log-level") {
			errOpts = opts
		}
		handlers = append(handlers, belowError{slog.NewTextHandler(cmd.ErrOrStderr(), errOpts)})
	}
	slog.SetDefault(slog.New(slog.NewMultiHandler(handlers...)))
	return nil
}

// belowError passes on the records below slog.LevelError. An error that
// ends a command is printed by the command itself, as its last line on
// stderr; the stderr side of the log would only repeat it (the log file
// keeps it).
type belowError struct{ slog.Handler }

func (h belowError) Enabled(ctx context.Context, l slog.Level) bool {
	return l < slog.LevelError && h.Handler.Enabled(ctx, l)
}

func (h belowError) WithAttrs(as []slog.Attr) slog.Handler {
	return belowError{h.Handler.WithAttrs(as)}
}

func (h belowError) WithGroup(name string) slog.Handler {
	return belowError{h.Handler.WithGroup(name)}
}

// openLogFile makes sure the log file can be written — the rotating writer
// would find out only at its first write, and slog drops write errors —
// and returns the rotating writer.
func openLogFile(path string) (io.WriteCloser, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}
	return &lumberjack.Logger{Filename: path, MaxSize: logMaxMB, MaxBackups: logBackups}, nil
}

// usesTUI reports whether cmd, as its flags stand, takes over the
// terminal: the workbench (the root command without an action) and the
// configuration forms, and --run without --headless, on a terminal.
func usesTUI(cmd *cobra.Command, terminal bool) bool {
	if !terminal {
		return false
	}
	flag := func(name string) string {
		if f := cmd.Flags().Lookup(name); f != nil {
			return f.Value.String()
		}
		return ""
	}
	switch {
	case cmd == cmd.Root():
		switch {
		case flag("evaluate") != "", flag("generate") != "":
			return false
		case flag("run") == "true":
			return flag("headless") != "true"
		}
		return true // the workbench, or --generate-config's forms
	case cmd.Name() == "run":
		return flag("headless") != "true"
	case cmd.Name() == "generate-config":
		return true
	}
	return false
}
