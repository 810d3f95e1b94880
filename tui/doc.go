// Package tui is evomerge's terminal workbench: a dashboard that watches a
// tournament (fitness chart, population table, candidate details with
// lineage, log, status bar), configuration forms, a chat pane that talks
// to any source or candidate, help, pause/resume and export.
//
// # Architecture
//
// One root model owns all state and routes every message; it is one
// type split across files by concern: app.go the entry point and the
// routing (Update, the key router), runcontrol.go starting, pausing,
// finishing and stopping a tournament, statusbar.go the status bar,
// overlays.go the help screen and the quit confirmation, chrome.go the
// screen around the pages (tab bar, hint bar, window title), theme.go
// the theme switch, keys.go the key map and the help derived from it
// (wizard.go is the standalone configuration wizard, GenerateConfig).
// The pages and panes (dashboard, popTable, fitnessChart, detailsPane,
// logPane, configPage, chatPage) are plain structs with update methods
// the root calls and view functions that render into an exact
// rectangle; none is a tea.Model. A shared *programContext (sizes, theme
// and styles, key map, the configuration the next run uses, the backend)
// is handed to every component, as in gh-dash, so that a resize reaches
// everything at once; a theme change goes through applyTheme, which also
// restyles the components that keep styles of their own.
//
// Update does no IO and never waits: starting a run, pausing, saving a
// configuration, exporting, merging a candidate for the chat and
// generating text are tea.Cmds, and commands receive copies of what they
// need, never the model. Rendering reads the model and never writes it.
//
// Each run started here writes to a directory of its own under the
// configured output directory (runcontrol.go), so a second run never
// meets the first's history, and R resumes a finished, interrupted or
// failed run in its directory. When the last run failed, Run returns its
// error: the screen is gone by then, and the caller's exit status and
// stderr carry the reason.
//
// The engine runs behind the Backend interface (the CLI implements it),
// so this package has no cgo and tests in seconds with a scripted fake.
// The engine's events reach the program through one relay goroutine per
// run that calls program.Send: the sink only appends to a batch under a
// mutex, progress updates replace older ones for the same candidate, and
// at most one batch per 50 ms is delivered, so the screen keeps up with
// any event rate; terminal events (Finished, errors) are never dropped,
// and the relay is flushed before the run's result message, so the
// result always follows the last event. Generated chat text takes the
// same path in chunks.
//
// # Keys
//
// keyMap (keys.go) is the only place a key is named: the routers match
// presses against its bindings, the help screen (? or F10) lists them
// (keyMap.fullHelp), and the hint bar shows those that act on the focused
// element (model.ShortHelp). keys_test.go checks that every key shown
// does something where it is shown and that every key that does
// something is shown. A key that types no text — the F-keys (F1
// dashboard, F2 config, F3 chat, F4 resume, F5 run, F6 export, F7 pause,
// F8 zoom, F9 theme, F10 help) and ctrl+c — keeps its global meaning while a text
// field has the focus, so scripts driving the binary through tmux can
// always reach every screen.
//
// # Themes and terminals
//
// Themes come from package themes (dark, light, high-contrast), chosen by
// ui.theme and cycled with t. NO_COLOR removes colour and switches the
// styles to reverse video and bold. Layouts adapt to the terminal: all
// four dashboard panes side by side from 110×26, stacked below that, and
// usable at 80×24; z zooms the focused pane.
package tui
