//go:build !race

package tui

import "time"

// keySpacing is how long the terminal-driven form tests wait between keys.
const keySpacing = 100 * time.Millisecond
