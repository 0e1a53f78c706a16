// Command testkit is the stage plugin the host's own tests build and run
// as a real process (pluginhost, runner and CLI tests).
package main

import (
	"fmt"
	"os"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

func main() {
	set := stages.NewSet("")
	var err error
	if len(os.Args) > 1 {
		// describe, -debug: exactly what a plugin's main does.
		err = set.Run(os.Args[1:])
	} else {
		// Serving as the host starts it, with a checked allocator that the
		// memcheck stage inspects.
		err = set.Serve(sdk.ServeAllocator(stages.Checked))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
