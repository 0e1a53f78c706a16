// Command testkit is the stage plugin the host's own tests build and run
// as a real process (pluginhost, runner and CLI tests).
//
// Copied under another name, the same binary becomes a broken plugin that
// still describes itself as testkit does (so pipelines using it load) but
// fails when the host starts it, by the end of its name:
//
//	sweetspot-plugin-NAME-exits    exits during the go-plugin handshake
//	sweetspot-plugin-NAME-garbage  prints garbage where the handshake belongs
//	sweetspot-plugin-NAME-rogue    serves the protocol without the SDK and
//	                               answers every Run with one Arrow message
//	                               over the gRPC message limit
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/testkit/stages"
	"github.com/sweetspot-ml/sweetspot/sdk"
)

func main() {
	set := stages.NewSet("")
	serving := len(os.Args) == 1 || os.Args[1] == "serve"
	name := strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe")
	var err error
	switch {
	case len(os.Args) == 2 && os.Args[1] == stages.StrayChildArg:
		signal.Ignore(syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
		// Bounded, so a host that fails to kill it does not leave it forever.
		time.Sleep(10 * time.Minute)
	case len(os.Args) == 3 && os.Args[1] == stages.LeakChildArg:
		stop, perr := strconv.ParseInt(os.Args[2], 10, 64)
		if perr != nil {
			err = perr
			break
		}
		stages.Leak(stop)
		time.Sleep(time.Hour)
	case serving && strings.HasSuffix(name, "-exits"):
		fmt.Fprintln(os.Stderr, "testkit: giving up before the handshake")
		os.Exit(2)
	case serving && strings.HasSuffix(name, "-garbage"):
		// A program that is not a plugin at all (or one that prints before
		// serving): its first line of stdout is not a handshake.
		fmt.Println("Welcome to testkit! Loading models...")
		time.Sleep(time.Hour)
	case serving && strings.HasSuffix(name, "-rogue"):
		err = serveRogue(set)
	case len(os.Args) > 1:
		// describe, -debug: exactly what a plugin's main does.
		err = set.Run(os.Args[1:])
	default:
		// Serving as the host starts it, with a checked allocator that the
		// memcheck stage inspects.
		err = set.Serve(sdk.ServeAllocator(stages.Checked))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}
