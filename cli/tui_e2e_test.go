package cli

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/evomerge/evomerge/engine/config"
	"github.com/evomerge/evomerge/zoo"
)

// TestWorkbenchEndToEnd drives the real workbench (this test binary run as
// evomerge-tui, see TestMain) in a detached tmux session of 120×40, as a
// user would: edit the configuration through the forms and save it, run a
// tournament on the zoo and watch the chart and the table fill, chat with
// a source model, pause and resume a second run, and quit it through the
// confirmation dialog. Every step asserts on the screen tmux shows; a
// failure prints the last screen and the tail of the program's log. Each
// run writes to a run-<time> directory of its own under the configured
// output directory. The program runs with --log-level debug and its
// stderr goes to a file, which must stay empty: while the TUI owns the
// terminal, logs (workers' llama.cpp output included) go to the log file.
//
// The settings are tiny (population 4, 2 generations, one window per
// text, one thread per worker: two threads per worker spin against each
// other on a busy 2-core machine), so the whole test takes about 30 s on
// 2 cores, even beside another job.
func TestWorkbenchEndToEnd(t *testing.T) {
	if _, err := exec.LookPath("tmux"); err != nil {
		t.Fatal("tmux is not installed: install tmux: make test-deps")
	}
	if err := zoo.Check(); err != nil {
		t.Fatalf("the model zoo is missing: run make zoo\n%v", err)
	}
	exe, err := filepath.Abs(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "evomerge.toml")
	out1, out2 := filepath.Join(dir, "run1"), filepath.Join(dir, "run2")

	// The configuration on disk says population 6; the form changes it
	// to 4, and the run shows 4 candidates per generation.
	var models strings.Builder
	for _, name := range []string{"bible", "moby", "sotu", zoo.Base} {
		fmt.Fprintf(&models, "[[models]]\nname = %q\npath = %q\n\n", name, zoo.Model(name))
	}
	writeTestFile(t, cfgPath, models.String()+fmt.Sprintf(`[merge]
base = %q
techniques = ["linear", "ties"]

[evolution]
optimizer = "ga"
population = 6
generations = 2

[evaluation]
chunks = 1
test_chunks = 1
coherence_prompts = ["Once upon a time"]
coherence_tokens = 8

[hardware]
threads = 1
workers = 1

[output]
dir = %q
`, zoo.Base, out1))
	if _, err := config.Load(cfgPath); err != nil {
		t.Fatalf("the test's configuration does not load: %v", err)
	}

	start := time.Now()
	w := startWorkbench(t, dir, exe, "--config", cfgPath, "--log-file", filepath.Join(dir, "evomerge.log"), "--log-level", "debug")
	w.waitFor("the dashboard", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "1 Dashboard") && strings.Contains(s, "○ idle") && strings.Contains(s, "r starts a tournament")
	})

	// 1–2. The configuration page: population 6 → 4 through the form,
	// saved with ctrl+s.
	w.keys("2")
	w.waitFor("the configuration page", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "Configuration  editing "+cfgPath) && strings.Contains(s, "Models · page 1 of")
	})
	w.focusField("Population", 40)
	w.keys("BSpace")
	w.typeText("4")
	w.waitFor("population 4 typed", 5*time.Second, func(s string) bool { return regexp.MustCompile(`┃ > 4\b`).MatchString(s) })
	w.keys("C-s")
	w.waitFor("the saved message", 15*time.Second, savedTo(cfgPath))
	c, err := config.Load(cfgPath)
	if err != nil {
		t.Fatalf("the saved configuration does not load: %v\n%s", err, readTestFile(t, cfgPath))
	}
	if c.Evolution.Population != 4 || c.Output.Dir != out1 || c.Evolution.Generations != 2 ||
		strings.Join(c.Merge.Techniques, ",") != "linear,ties" || len(c.Models) != 4 || c.Hardware.Threads != 1 {
		t.Fatalf("the saved configuration does not hold the form's edit (population 4) and the rest unchanged:\n%s", readTestFile(t, cfgPath))
	}
	if !strings.Contains(readTestFile(t, cfgPath), "written by evomerge-tui") {
		t.Fatalf("%s was not written by the workbench:\n%s", cfgPath, readTestFile(t, cfgPath))
	}

	// 3. A tournament: the table lists candidates with their statuses,
	// the chart draws each generation, the run finishes.
	w.keys("Escape")
	w.waitFor("the dashboard again", 5*time.Second, func(s string) bool { return strings.Contains(s, "r starts a tournament") })
	w.keys("r")
	status := `(queued|merging|merge|evaluating|eval|done|cached)`
	w.waitFor("candidates of generation 0 in the population table", 60*time.Second, func(s string) bool {
		return regexp.MustCompile(`g0-c00 .*\b`+status+`\b`).MatchString(leftColumn(s)) &&
			(strings.Contains(s, "● running") || strings.Contains(s, "✓ finished"))
	})
	w.waitFor("generation 0 completed in the chart and the log", 90*time.Second, func(s string) bool {
		return strings.Contains(s, "generation 0 done") && !strings.Contains(s, "waiting for the first generation")
	})
	final := w.waitFor("the tournament to finish", 120*time.Second, func(s string) bool {
		return strings.Contains(s, "✓ finished") && strings.Contains(s, "report: ")
	})
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`Fitness ─+ best -?\d+\.\d{4}`),          // the chart's title
		regexp.MustCompile(`gen 1: -?\d+\.\d{4}`),                   // its legend, at the last generation
		regexp.MustCompile(`[⠁-⣿]{3}`),                              // its curves (braille)
		regexp.MustCompile(`Population ─+ generation 1 · 4/4 done`), // the population the form set
		regexp.MustCompile(`generation 1 done`),
		regexp.MustCompile(`evals \d+/8`),
	} {
		if !want.MatchString(final) {
			w.fatalf("the finished dashboard lacks %q", want)
		}
	}
	if rows := regexp.MustCompile(`(?m)^│[* ] g1-c0[0-3] +(linear|ties) .*\b(done|cached) +│$`).FindAllString(leftColumn(final), -1); len(rows) != 4 {
		w.fatalf("the population table does not list g1-c00…g1-c03 as done or cached: %q", rows)
	}
	if strings.Contains(final, "-c04") {
		w.fatalf("a fifth candidate: the run did not use the population saved by the form")
	}
	if found, _ := filepath.Glob(filepath.Join(out1, "run-*", "best.gguf")); len(found) != 1 {
		w.fatalf("the run wrote %d best models in run directories under %s, want 1", len(found), out1)
	}
	writeTestFile(t, filepath.Join(dir, "dashboard.txt"), final)
	if os.Getenv("EVOMERGE_WRITE_CAPTURE") == "1" {
		if err := os.MkdirAll(filepath.Join("..", "docs"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeTestFile(t, filepath.Join("..", "docs", "dashboard.txt"), final)
	}

	// 4. The chat: choose the base model, send a prompt, watch the text
	// stream in.
	w.keys("3")
	w.waitFor("the chat page", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "Models ─") && strings.Contains(s, "Sampling ─") && strings.Contains(s, "type a prompt, enter sends")
	})
	w.keys("Tab") // prompt → model list
	w.waitFor("the model list focused", 5*time.Second, func(s string) bool { return strings.Contains(s, "↑/↓ choose") })
	for i := 0; ; i++ {
		cur := chatModel(w.capture())
		if strings.HasPrefix(cur, zoo.Base) {
			break
		}
		if i == 10 {
			w.fatalf("could not select %s in the chat's model list", zoo.Base)
		}
		w.keys("Down")
		w.waitFor("the selection to move from "+cur, 5*time.Second, func(s string) bool { return chatModel(s) != cur })
	}
	w.keys("Enter") // back to the prompt
	w.waitFor("the prompt focused", 5*time.Second, func(s string) bool { return strings.Contains(s, "enter send") })
	const prompt = "Once upon a time"
	w.typeText(prompt)
	w.waitFor("the prompt typed", 5*time.Second, func(s string) bool { return strings.Contains(s, "› "+prompt) })
	w.keys("Enter")
	w.waitFor("the prompt sent to "+zoo.Base, 10*time.Second, func(s string) bool {
		return strings.Contains(s, "▸ "+zoo.Base) && !strings.Contains(s, "› "+prompt)
	})
	streamed := ""
	w.every = 20 * time.Millisecond // catch the text while it forms
	chat := w.waitFor("the generated text", 60*time.Second, func(s string) bool {
		if text := chatAnswer(s, prompt); text != "" && strings.Contains(s, "generating…") && streamed == "" {
			streamed = text
		}
		return regexp.MustCompile(`\d+ tokens · [\d.]+ tok/s · stopped by`).MatchString(s)
	})
	w.every = 0
	answer := chatAnswer(chat, prompt)
	if len(strings.Fields(answer)) < 3 {
		w.fatalf("%s did not continue %q (answer %q)", zoo.Base, prompt, answer)
	}
	if m := regexp.MustCompile(`(\d+) tokens · `).FindStringSubmatch(chat); m == nil || m[1] == "0" {
		w.fatalf("the chat reports no tokens")
	}
	if streamed == "" || streamed == answer {
		w.fatalf("the text did not stream in: no screen showed part of the answer while generating (answer %q)", answer)
	}
	t.Logf("chat: %q streamed as %q…", answer, streamed)

	// 5. A second run, paused and resumed. Through the form: a new output
	// directory (one that holds a run is not overwritten) and 50
	// generations, so that the run is still going when the test quits.
	w.keys("F2")
	w.waitFor("the configuration page", 10*time.Second, func(s string) bool { return strings.Contains(s, "Configuration  editing") })
	w.focusField("Generations", 40)
	w.keys("BSpace")
	w.typeText("50")
	w.waitFor("50 generations typed", 5*time.Second, func(s string) bool { return regexp.MustCompile(`┃ > 50\b`).MatchString(s) })
	w.focusField("Output directory", 60)
	w.keys("C-u")
	w.typeText(out2)
	w.waitFor("the new output directory typed", 10*time.Second, func(s string) bool { return strings.Contains(s, "┃ > "+out2) })
	w.keys("C-s")
	w.waitFor("the saved message", 15*time.Second, savedTo(cfgPath))
	if c, err := config.Load(cfgPath); err != nil || c.Output.Dir != out2 || c.Evolution.Generations != 50 || c.Evolution.Population != 4 {
		t.Fatalf("the second save did not write output.dir %s and generations 50 (population 4 kept): %v\n%s", out2, err, readTestFile(t, cfgPath))
	}
	w.keys("F1")
	w.waitFor("the dashboard", 5*time.Second, func(s string) bool { return strings.Contains(s, "tab next pane") })
	w.keys("F5")
	w.waitFor("the second run", 30*time.Second, func(s string) bool {
		return strings.Contains(s, "● running") && strings.Contains(s, "run started") && strings.Contains(s, "/200")
	})
	w.keys("p")
	w.waitFor("the paused state", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "‖ paused") && strings.Contains(s, "engine paused")
	})
	w.keys("F7")
	w.waitFor("the run resumed", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "● running") && strings.Contains(s, "engine resumed")
	})

	// 6. Quit while the run is active: the dialog asks, y quits, the
	// engine stops its workers, the process exits 0.
	w.keys("q")
	w.waitFor("the quit confirmation", 10*time.Second, func(s string) bool {
		return strings.Contains(s, "Quit and stop it?") && strings.Contains(s, "y quit")
	})
	w.keys("y")
	code := w.waitExit(20 * time.Second)
	if code != 0 {
		w.fatalf("evomerge-tui exited with status %d (128+N: killed by signal N)", code)
	}
	w.checkNoProcessesLeft(30 * time.Second)
	if found, _ := filepath.Glob(filepath.Join(out2, "run-*", "best.gguf")); len(found) != 0 {
		t.Fatalf("the second run wrote %s: it finished instead of being stopped by the quit", found)
	}
	if found, _ := filepath.Glob(filepath.Join(out2, "run-*", "history.jsonl")); len(found) != 1 {
		t.Fatalf("the second run left %d histories under %s, want 1", len(found), out2)
	}
	if errs := readTestFile(t, w.stderrFile); errs != "" {
		t.Fatalf("the program wrote to stderr while the TUI owned the terminal:\n%s", errs)
	}
	if log := readTestFile(t, filepath.Join(dir, "evomerge.log")); !strings.Contains(log, "worker: ") || !strings.Contains(log, `msg="run started"`) {
		t.Fatalf("the log file lacks the workers' debug output or the run's start:\n%s", log)
	}
	t.Logf("end to end in %s; processes seen: %d", time.Since(start).Round(100*time.Millisecond), len(w.seen))
}

// leftColumn keeps the dashboard's left column of each row (at 120
// columns: the chart and the population table), so that a pattern cannot
// match text of the details or log pane beside it.
func leftColumn(screen string) string {
	rows := strings.Split(screen, "\n")
	for i, row := range rows {
		if r := []rune(row); len(r) > 120*58/100 {
			rows[i] = string(r[:120*58/100])
		}
	}
	return strings.Join(rows, "\n")
}

// The chat page at 120 columns: the model list and the sampling settings
// fill columns 0–39, the transcript panel columns 40–119.
const chatLeft = 40

// chatModel is the model selected in the chat's model list.
func chatModel(screen string) string {
	for _, row := range strings.Split(screen, "\n") {
		r := []rune(row)
		if len(r) > chatLeft && strings.HasPrefix(string(r[:chatLeft]), "│› ") {
			return strings.TrimSpace(strings.Trim(string(r[3:chatLeft]), "│"))
		}
	}
	return ""
}

// savedTo matches the configuration page after a save to path: the form
// starts again at its first page (a save rebuilds it) under the message.
// (The message alone may be left from an earlier save.)
func savedTo(path string) func(string) bool {
	return func(s string) bool {
		return strings.Contains(s, "saved to "+path) && strings.Contains(s, "Models · page 1 of")
	}
}

// chatAnswer is the text the model wrote after prompt in a screen of the
// chat page: the transcript lines after the prompt, up to the status line.
func chatAnswer(screen, prompt string) string {
	var lines []string
	inAnswer := false
	for _, row := range strings.Split(screen, "\n") {
		r := []rune(row)
		if len(r) < 120 {
			continue
		}
		cell := strings.TrimSpace(string(r[chatLeft+1 : 119]))
		switch {
		case !inAnswer && cell == prompt:
			inAnswer = true
		case inAnswer && (cell == "" || cell == "generating…" || regexp.MustCompile(`^\d+ tokens · `).MatchString(cell)):
			return strings.Join(lines, " ")
		case inAnswer:
			lines = append(lines, cell)
		}
	}
	return ""
}

// tuiSession is evomerge-tui running in a tmux session of its own.
type tuiSession struct {
	t          *testing.T
	tmux       []string // tmux -L socket -f config
	target     string
	logFile    string
	last       string         // the last screen captured
	every      time.Duration  // polling interval (0: 100 ms)
	panePID    int            // the shell that runs the program
	statusFile string         // where the shell writes the program's exit status
	stderrFile string         // where the shell sends the program's stderr
	shown      bool           // a failure message showed the last screen
	seen       map[int]string // processes the program started (pid → command line)
}

// startWorkbench starts exe with args in a new tmux server (a socket of
// its own, killed at cleanup), under a shell that writes the program's
// exit status to a file when it ends.
func startWorkbench(t *testing.T, dir, exe string, args ...string) *tuiSession {
	t.Helper()
	sock := fmt.Sprintf("evomerge-e2e-%d-%d", os.Getpid(), time.Now().UnixNano())
	conf := filepath.Join(dir, "tmux.conf")
	writeTestFile(t, conf, "set -g remain-on-exit on\nset -g status off\n")
	w := &tuiSession{t: t, tmux: []string{"-L", sock, "-f", conf}, target: "e2e", seen: map[int]string{},
		statusFile: filepath.Join(dir, "exit-status"), stderrFile: filepath.Join(dir, "stderr")}
	for i, a := range args {
		if a == "--log-file" && i+1 < len(args) {
			w.logFile = args[i+1]
		}
	}
	cmd := append([]string{"new-session", "-d", "-x", "120", "-y", "40", "-s", w.target, "-c", dir,
		"env", "EVOMERGE_CLI_MAIN=1", "E2E_STATUS=" + w.statusFile, "E2E_STDERR=" + w.stderrFile,
		"sh", "-c", `"$0" "$@" 2>"$E2E_STDERR"; echo $? >"$E2E_STATUS.tmp" && mv "$E2E_STATUS.tmp" "$E2E_STATUS"`, exe}, args...)
	if out, err := exec.Command("tmux", append(w.tmux, cmd...)...).CombinedOutput(); err != nil {
		t.Fatalf("tmux new-session: %v\n%s", err, out)
	}
	t.Cleanup(func() {
		if t.Failed() && !w.shown {
			w.capture()
			t.Logf("last screen (120×40):\n%s", w.last)
		}
		_ = exec.Command("tmux", append(w.tmux, "kill-server")...).Run()
	})
	pid, err := strconv.Atoi(strings.TrimSpace(w.tmuxOut("display-message", "-p", "-t", w.target, "#{pane_pid}")))
	if err != nil {
		t.Fatalf("no pane pid: %v", err)
	}
	w.panePID = pid
	return w
}

func (w *tuiSession) tmuxOut(args ...string) string {
	out, err := exec.Command("tmux", append(w.tmux, args...)...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		w.t.Fatalf("tmux %s: %v %s\nlast screen:\n%s", strings.Join(args, " "), err, bytes.TrimSpace(stderr), w.last)
	}
	return string(out)
}

// capture returns the screen as text (no colours) and remembers it.
func (w *tuiSession) capture() string {
	out, err := exec.Command("tmux", append(w.tmux, "capture-pane", "-p", "-t", w.target)...).Output()
	if err == nil {
		w.last = strings.TrimRight(string(out), "\n")
	}
	return w.last
}

// keys sends tmux key names one at a time, spaced as a fast typist's
// (huh's forms drop keys that arrive in one burst).
func (w *tuiSession) keys(keys ...string) {
	w.t.Helper()
	for _, k := range keys {
		w.tmuxOut("send-keys", "-t", w.target, k)
		time.Sleep(45 * time.Millisecond)
	}
}

// typeText types s literally, one character at a time.
func (w *tuiSession) typeText(s string) {
	w.t.Helper()
	for _, r := range s {
		w.tmuxOut("send-keys", "-t", w.target, "-l", string(r))
		time.Sleep(45 * time.Millisecond)
	}
}

// focusField presses enter through the configuration form until the field
// titled title has the focus, one field at a time.
func (w *tuiSession) focusField(title string, most int) {
	w.t.Helper()
	for i := 0; ; i++ {
		cur := focusedField(w.capture())
		if cur == title {
			return
		}
		if i == most {
			w.fatalf("the field %q never got the focus (%d × enter)", title, most)
		}
		w.keys("Enter")
		w.waitFor("the focus to leave "+cur, 5*time.Second, func(s string) bool { return focusedField(s) != cur })
	}
}

// focusedField is the title of the form field that has the focus: huh
// draws a bar (┃) left of it, the title on its first line.
func focusedField(screen string) string {
	for _, row := range strings.Split(screen, "\n") {
		if t, ok := strings.CutPrefix(row, "┃ "); ok {
			if i := strings.Index(t, "│"); i >= 0 { // the problems panel, right
				t = t[:i]
			}
			return strings.TrimSpace(t)
		}
	}
	return ""
}

// waitFor polls the screen until cond holds and returns that screen; it
// fails after timeout, or at once if the program has exited.
func (w *tuiSession) waitFor(what string, timeout time.Duration, cond func(screen string) bool) string {
	w.t.Helper()
	every := w.every
	if every == 0 {
		every = 100 * time.Millisecond
	}
	deadline := time.Now().Add(timeout)
	for {
		s := w.capture()
		if cond(s) {
			return s
		}
		w.recordProcesses()
		if dead, code := w.exited(); dead {
			w.fatalf("waiting for %s: evomerge-tui exited (status %d)", what, code)
		}
		if time.Now().After(deadline) {
			w.fatalf("waiting for %s: not on the screen after %s", what, timeout)
		}
		time.Sleep(every)
	}
}

// fatalf fails the test with the last screen and the log's tail.
func (w *tuiSession) fatalf(format string, args ...any) {
	w.t.Helper()
	msg := fmt.Sprintf(format, args...)
	msg += "\n--- last screen (120×40) ---\n" + w.last
	w.shown = true
	if w.logFile != "" {
		if b, err := os.ReadFile(w.logFile); err == nil {
			lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
			msg += "\n--- end of " + w.logFile + " ---\n" + strings.Join(lines[max(0, len(lines)-15):], "\n")
		}
	}
	w.t.Fatal(msg)
}

// exited reports whether the program has exited, and its exit status.
// The shell around it writes the status to a file: tmux's own record
// (#{pane_dead_status}) is not reliable: tmux 3.3 was seen leaving the
// exited program an unreaped zombie for over a minute.
func (w *tuiSession) exited() (bool, int) {
	b, err := os.ReadFile(w.statusFile)
	if err != nil || !strings.HasSuffix(string(b), "\n") {
		if exec.Command("tmux", append(w.tmux, "has-session", "-t", w.target)...).Run() != nil {
			return true, -1 // the session is gone
		}
		return false, 0
	}
	code, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return true, -1
	}
	return true, code
}

// waitExit waits for the program to exit and returns its status.
func (w *tuiSession) waitExit(timeout time.Duration) int {
	w.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		w.recordProcesses()
		if dead, code := w.exited(); dead {
			w.capture()
			return code
		}
		if time.Now().After(deadline) {
			w.capture()
			w.fatalf("evomerge-tui still running %s after the quit was confirmed", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// recordProcesses notes the program and every process below it (the
// evaluation and chat workers), so that the end can check they are gone.
func (w *tuiSession) recordProcesses() {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, ok := procStatus(pid); ok {
			children[st.ppid] = append(children[st.ppid], pid)
		}
	}
	queue := []int{w.panePID}
	for len(queue) > 0 {
		pid := queue[0]
		queue = queue[1:]
		if _, ok := w.seen[pid]; !ok {
			cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			w.seen[pid] = strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))
		}
		queue = append(queue, children[pid]...)
	}
}

// checkNoProcessesLeft waits until every process the program started has
// ended, and that no process of this binary other than this test (and its
// own children) runs: a worker orphaned by the exit would be one.
func (w *tuiSession) checkNoProcessesLeft(timeout time.Duration) {
	w.t.Helper()
	self, _ := os.Executable()
	deadline := time.Now().Add(timeout)
	for {
		var left []string
		for pid, cmd := range w.seen {
			st, ok := procStatus(pid)
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); ok && st.state != "Z" && err == nil && exe == self {
				left = append(left, fmt.Sprintf("%d %s", pid, cmd))
			}
		}
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			st, ok := procStatus(pid)
			if !ok || st.state == "Z" || st.ppid == os.Getpid() {
				continue
			}
			if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil && exe == self {
				if _, known := w.seen[pid]; !known {
					cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
					left = append(left, fmt.Sprintf("%d %s (orphan)", pid, strings.ReplaceAll(string(cmd), "\x00", " ")))
				}
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.fatalf("processes still running %s after evomerge-tui exited:\n%s", timeout, strings.Join(left, "\n"))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type procInfo struct {
	state string
	ppid  int
}

// procStatus reads a process's state and parent from /proc/PID/stat.
func procStatus(pid int) (procInfo, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procInfo{}, false
	}
	// pid (comm) state ppid …; comm may hold spaces and parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return procInfo{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return procInfo{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return procInfo{state: f[0], ppid: ppid}, true
}

func writeTestFile(t *testing.T, path, text string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func readTestFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
