package llm

import (
	"log/slog"
	"os"
	"testing"
)

// TestMain silences llama.cpp's informational logging, which the ollama
// wrapper routes through slog's default level.
func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	os.Exit(m.Run())
}
