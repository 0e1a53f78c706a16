package runner

import (
	"context"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/sweetspot-ml/sweetspot/pipeline/pluginhost"
)

// DefaultMaxPlugins is how many plugin processes a run keeps at once when
// Runner.MaxPlugins is not set: two per core. A stage's process mostly
// waits on its inputs, its outputs and its peers, but each costs a Go
// runtime, a gRPC server and its share of the CPU while it starts, and
// starting hundreds at once made their handshakes time out.
func DefaultMaxPlugins() int { return 2 * runtime.NumCPU() }

// processes holds a run's plugin processes: at most max alive at once.
// A process is started when its stage is ready to run and stopped when
// nothing later needs it. One that a later use may want (a loop stage's
// process between rounds, the process that checked configs before its
// plugin's first stage) is parked: it keeps its place but gives it up,
// oldest first, to a stage that needs a new process when no place is
// free, so parked processes never hold up a run.
//
// A stage waiting for a place waits here, before its process starts: the
// wait is no part of the start, whose handshake has its own timeout.
type processes struct {
	launcher Launcher

	// stopping counts the processes being stopped in the background.
	stopping sync.WaitGroup

	mu     sync.Mutex
	free   int
	parked []parkedProcess // oldest first
	closed bool
	// changed is closed, and replaced, when a place is freed or a process
	// parked: what a waiting acquire waits for.
	changed chan struct{}
}

// parkedProcess is an idle process and the use it is kept for.
type parkedProcess struct {
	key    string
	client *pluginhost.Client
}

func newProcesses(launcher Launcher, max int) *processes {
	if max <= 0 {
		max = DefaultMaxPlugins()
	}
	return &processes{launcher: launcher, free: max, changed: make(chan struct{})}
}

// stageKey and checkKey name what a parked process is kept for: the next
// round of one stage, or the first stage of a plugin started with the
// same pass_env.
func stageKey(addr string) string { return "stage " + addr }

func checkKey(plugin string, passEnv []string) string {
	env := slices.Clone(passEnv)
	slices.Sort(env)
	return "plugin " + plugin + "\x00" + strings.Join(env, "\x00")
}

// acquire returns a process for one use: the process parked under one of
// keys (in order of preference), or a new one started with opts once a
// place is free. fresh says which.
func (p *processes) acquire(ctx context.Context, plugin string, keys []string, opts ...pluginhost.StartOption) (c *pluginhost.Client, fresh bool, err error) {
	if err := p.place(ctx, keys, &c); err != nil {
		return nil, false, err
	}
	if c != nil {
		return c, false, nil
	}
	c, err = p.launcher.Start(ctx, plugin, opts...)
	if err != nil {
		p.release()
		return nil, false, err
	}
	return c, true, nil
}

// place takes the process parked under one of keys (into *c), or a free
// place, or the place of the oldest parked process, which it stops;
// otherwise it waits for one of those.
func (p *processes) place(ctx context.Context, keys []string, c **pluginhost.Client) error {
	for {
		p.mu.Lock()
		for _, k := range keys {
			if i := slices.IndexFunc(p.parked, func(pp parkedProcess) bool { return pp.key == k }); i >= 0 {
				*c = p.parked[i].client
				p.parked = slices.Delete(p.parked, i, i+1)
				p.mu.Unlock()
				return nil
			}
		}
		if p.free > 0 {
			p.free--
			p.mu.Unlock()
			return nil
		}
		if len(p.parked) > 0 {
			oldest := p.parked[0]
			p.parked = p.parked[1:]
			p.mu.Unlock()
			// Its place is this caller's once it is gone.
			oldest.client.Kill()
			return nil
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return context.Cause(ctx)
		}
	}
}

// done ends a use of c: parked under key for a later use when key is not
// "", else stopped, and its place freed once the process is gone.
func (p *processes) done(c *pluginhost.Client, key string) {
	p.mu.Lock()
	if key != "" && !p.closed {
		p.parked = append(p.parked, parkedProcess{key: key, client: c})
		p.signal()
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	// Stopped in the background: the stages after this one need not wait
	// for it. Its place is free once it is gone.
	p.stopping.Add(1)
	go func() {
		defer p.stopping.Done()
		c.Kill()
		p.release()
	}()
}

// drop stops the process parked under key, if any: no later use wants it.
func (p *processes) drop(key string) {
	p.mu.Lock()
	i := slices.IndexFunc(p.parked, func(pp parkedProcess) bool { return pp.key == key })
	if i < 0 {
		p.mu.Unlock()
		return
	}
	c := p.parked[i].client
	p.parked = slices.Delete(p.parked, i, i+1)
	p.mu.Unlock()
	c.Kill()
	p.release()
}

// release frees one place.
func (p *processes) release() {
	p.mu.Lock()
	p.free++
	p.signal()
	p.mu.Unlock()
}

// signal wakes the waiting acquires; p.mu is held.
func (p *processes) signal() {
	close(p.changed)
	p.changed = make(chan struct{})
}

// close stops every parked process and waits for every process being
// stopped; a process still in use is stopped when its use ends.
func (p *processes) close() {
	p.mu.Lock()
	p.closed = true
	parked := p.parked
	p.parked = nil
	p.mu.Unlock()
	var wg sync.WaitGroup
	for _, pp := range parked {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pp.client.Kill()
			p.release()
		}()
	}
	wg.Wait()
	p.stopping.Wait()
}
