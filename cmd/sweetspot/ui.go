package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
	"github.com/sweetspot-ml/sweetspot/pipeline/ui"
)

func newUICmd() *cobra.Command {
	var root, addr string
	var allowRemote bool
	cmd := &cobra.Command{
		Use:   "ui",
		Short: "Serve a local, read-only web app over the run store: runs, live run pages, compare, traces",
		Long: `Serves the run store (--out) as a web app on your machine: the runs with
their status, pipeline, decision, duration and trace id; a run's page, with
the same charts, decisions and trials table as its report, that updates
while the run goes on; two runs or more compared, their curves overlaid;
and a run's trace as a waterfall read from its span files, with every
span's attributes and events, so no Jaeger is needed.

It changes nothing: every page is read from the run store as it is, a
damaged run is shown as damaged with the reason, and a run deleted while
it serves is gone from the list. Everything it serves is built into the
binary; its pages load nothing from any other origin.

It listens on loopback (127.0.0.1:8765) unless --addr names another
address, and refuses an address other machines can reach unless
--allow-remote says you mean it: anyone who reaches the port reads every
run.`,
		Example: `  sweetspot ui                              # http://127.0.0.1:8765/
  sweetspot ui --out /shared/runs --addr 127.0.0.1:9000
  sweetspot run examples/quickstart & sweetspot ui   # watch the run live`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--addr %q: %w", addr, err)}
			}
			loopback := isLoopback(host)
			if !loopback && !allowRemote {
				return &exitError{code: exitInvalid, err: fmt.Errorf("--addr %s is not a loopback address: other machines could read every run; pass --allow-remote to serve it there anyway", addr)}
			}
			if fi, err := os.Stat(root); err != nil || !fi.IsDir() {
				fmt.Fprintf(cmd.ErrOrStderr(), "no run store at %s yet: runs appear as `sweetspot run --out %s` writes them\n", root, root)
			}
			var opts []ui.Option
			if !loopback {
				opts = append(opts, ui.WithHosts()) // any Host: the user chose to serve the network
			} else if host != "localhost" && host != "127.0.0.1" && host != "::1" {
				opts = append(opts, ui.WithHosts("localhost", "127.0.0.1", "::1", host))
			}
			ln, err := net.Listen("tcp", addr)
			if err != nil {
				return &exitError{code: exitFailed, err: err}
			}
			srv := &http.Server{
				Handler:           ui.New(runstore.Open(root), opts...),
				ReadHeaderTimeout: 10 * time.Second,
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sweetspot ui: http://%s/ (run store %s; Ctrl-C stops)\n", ln.Addr(), root)
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			go func() {
				<-ctx.Done()
				sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				_ = srv.Shutdown(sctx)
			}()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				return &exitError{code: exitFailed, err: err}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&root, "out", runstore.DefaultRoot, "directory that holds run directories")
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8765", "address to listen on (host:port; loopback unless --allow-remote)")
	cmd.Flags().BoolVar(&allowRemote, "allow-remote", false, "allow an --addr that other machines can reach (they can then read every run)")
	return cmd
}

// isLoopback reports whether host names only this machine: localhost or a
// loopback IP. An empty host (":8765") listens on every address.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
