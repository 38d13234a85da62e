// Command fn builds, runs and hosts WeChat cloud functions and LeanEngine cloud code.
package main

import (
	"os"

	"github.com/fnhq/fn/commands"
)

func main() {
	os.Exit(int(commands.Main()))
}
