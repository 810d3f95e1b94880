package evolve

import (
	"os"
	"testing"

	"github.com/evomerge/evomerge/engine/eval/evaltest"
)

// The test binary doubles as a stand-in evaluation worker (evaltest), so
// Run — merging, the worker pool, the held-out comparison — is tested
// without llama.cpp.
func TestMain(m *testing.M) {
	evaltest.ServeIfWorker()
	serveIfDistRole()
	os.Exit(m.Run())
}
