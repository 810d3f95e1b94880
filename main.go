package main

import (
	"fmt"

	"github.com/evomerge/evomerge/engine/llm"
)

func main() { fmt.Println(llm.GPUs()) }
