package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/evomerge/evomerge/engine/eval/evaltest"
)

// The cli test binary doubles as evomerge-tui: run with
// EVOMERGE_CLI_MAIN=1 it executes the command line in its arguments. The
// evaluation pool starts workers from os.Executable(), so in-process tests
// get real `evomerge-tui worker` children, and the tmux test drives the
// whole program, without depending on a separately built binary. With
// evaltest's variable set, the workers are stand-ins without llama.cpp.
func TestMain(m *testing.M) {
	evaltest.ServeIfWorker() // a stand-in worker, when a test asks for one
	if os.Getenv("EVOMERGE_CLI_MAIN") == "1" || (len(os.Args) > 1 && os.Args[1] == "worker") {
		os.Exit(Main(os.Args[1:]))
	}
	os.Setenv("EVOMERGE_CLI_MAIN", "1") // for every child this process starts
	os.Exit(m.Run())
}

// runCLI runs the command line in-process and returns its exit code and output.
func runCLI(t testing.TB, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(append(args, "--log-file", ""), strings.NewReader(""), &out, &errb)
	return code, out.String(), errb.String()
}
