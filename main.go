// Command evomerge-tui merges GGUF language models and evolves merge
// recipes; see README.md.
package main

import (
	"os"

	"github.com/evomerge/evomerge/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
