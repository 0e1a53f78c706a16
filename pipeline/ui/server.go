// Package ui is `sweetspot ui`: a local, read-only web app over a run
// store. It lists the runs, shows a run as its report does (the same
// renderer, pipeline/report's View) and keeps the page current while the
// run goes on (server-sent events fed by watching the run's files), sorts
// and filters a run's trials, overlays the curves of runs side by side,
// and draws a run's trace from its span files, so no Jaeger is needed.
//
// Its security model (docs/ui.md): it serves what it renders from the run
// store and its own embedded assets, nothing else (no file of the store is
// served by path, run ids are checked against the store's own format
// before any file is touched); no handler changes anything (GET and HEAD
// only); every page forbids outside origins by its content security
// policy; requests naming a host other than the one it listens on are
// refused (a web page cannot reach it through DNS rebinding); and it
// listens on loopback unless told otherwise (cmd/sweetspot).
package ui

import (
	"embed"
	"html/template"
	"io/fs"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sweetspot-ml/sweetspot/pipeline/runstore"
)

// Server serves one run store.
type Server struct {
	store *runstore.Store
	mux   *http.ServeMux
	// poll is how often a live page's run is looked at for changes.
	poll time.Duration
	// hosts are the Host header values a request may carry; empty
	// accepts any (a server bound to a non-loopback address on purpose).
	hosts map[string]bool
	// requests counts the requests served, for tests that check a page
	// asks for nothing more than they expect.
	requests atomic.Int64
}

// Option tunes New.
type Option func(*Server)

// WithPollInterval sets how often a live page's run is checked for
// changes (default 500 ms).
func WithPollInterval(d time.Duration) Option { return func(s *Server) { s.poll = d } }

// WithHosts sets the host names (host or host:port) requests may address;
// by default loopback names only. No names at all accepts any Host.
func WithHosts(hosts ...string) Option {
	return func(s *Server) {
		s.hosts = map[string]bool{}
		for _, h := range hosts {
			s.hosts[strings.ToLower(h)] = true
		}
	}
}

// New returns a server of store's runs.
func New(store *runstore.Store, opts ...Option) *Server {
	s := &Server{store: store, poll: 500 * time.Millisecond, mux: http.NewServeMux()}
	WithHosts("localhost", "127.0.0.1", "::1")(s)
	for _, o := range opts {
		o(s)
	}
	s.mux.HandleFunc("GET /{$}", s.runsPage)
	s.mux.HandleFunc("GET /api/runs", s.runsJSON)
	s.mux.HandleFunc("GET /runs/{id}", s.runPage)
	s.mux.HandleFunc("GET /runs/{id}/events", s.runEvents)
	s.mux.HandleFunc("GET /runs/{id}/trace", s.tracePage)
	s.mux.HandleFunc("GET /compare", s.comparePage)
	s.mux.HandleFunc("GET /static/{name}", s.static)
	return s
}

// Requests is how many requests the server has answered.
func (s *Server) Requests() int64 { return s.requests.Load() }

// ContentSecurityPolicy is every response's policy: the page's own
// scripts, styles and event stream, and nothing from any other origin.
// Inline styles are allowed: the charts and the waterfall place their
// marks with style attributes. Inline scripts are not.
const ContentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.requests.Add(1)
	h := w.Header()
	h.Set("Content-Security-Policy", ContentSecurityPolicy)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cross-Origin-Opener-Policy", "same-origin")
	h.Set("Cross-Origin-Resource-Policy", "same-origin")
	h.Set("Cache-Control", "no-store")
	if !s.hostAllowed(r.Host) {
		http.Error(w, "this server answers only requests addressed to "+s.hostList(), http.StatusMisdirectedRequest)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		h.Set("Allow", "GET, HEAD")
		http.Error(w, "sweetspot ui is read-only", http.StatusMethodNotAllowed)
		return
	}
	s.mux.ServeHTTP(w, r)
}

func (s *Server) hostAllowed(host string) bool {
	if len(s.hosts) == 0 {
		return true
	}
	host = strings.ToLower(host)
	if s.hosts[host] {
		return true
	}
	if h, _, err := net.SplitHostPort(host); err == nil {
		return s.hosts[h] || s.hosts[strings.Trim(h, "[]")]
	}
	return false
}

func (s *Server) hostList() string {
	var names []string
	for h := range s.hosts {
		names = append(names, h)
	}
	return strings.Join(names, ", ")
}

//go:embed assets
var assets embed.FS

//go:embed templates/*.html
var templateFS embed.FS

var pages = template.Must(template.New("").Funcs(template.FuncMap{
	"join":        strings.Join,
	"statusClass": statusClass,
}).ParseFS(templateFS, "templates/*.html"))

func mustSub(f fs.FS, dir string) fs.FS {
	sub, err := fs.Sub(f, dir)
	if err != nil {
		panic(err)
	}
	return sub
}

var assetFS = mustSub(assets, "assets")
