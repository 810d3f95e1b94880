//go:build race

package tui

import "time"

// keySpacing is how long the terminal-driven form tests wait between keys
// (the race detector slows the program tenfold).
const keySpacing = 400 * time.Millisecond
