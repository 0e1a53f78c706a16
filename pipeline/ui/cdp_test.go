//go:build unix

package ui

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sweetspot-ml/sweetspot/internal/browsertest"
)

// cdp drives one headless Chromium through the DevTools protocol over
// --remote-debugging-pipe (JSON messages ending in a NUL byte, on the
// browser's file descriptors 3 and 4): the tests that watch a page change
// while it stays open need more than a dump of its DOM at load.
type cdp struct {
	cmd     *exec.Cmd
	w       io.WriteCloser
	mu      sync.Mutex
	next    int
	waiting map[int]chan cdpReply
	session string
}

type cdpReply struct {
	Result json.RawMessage `json:"result"`
	Error  *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// openCDP starts the browser on url, attached to its page.
func openCDP(t *testing.T, bin, url, netlog string) *cdp {
	t.Helper()
	toBrowser, ours, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	theirs, fromBrowser, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	cmd := browsertest.Command(ctx, bin, append(browsertest.Args(t, netlog), "--remote-debugging-pipe"), url)
	cmd.ExtraFiles = []*os.File{toBrowser, fromBrowser}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	toBrowser.Close()
	fromBrowser.Close()
	c := &cdp{cmd: cmd, w: ours, waiting: map[int]chan cdpReply{}}
	go func() {
		rd := bufio.NewReader(theirs)
		for {
			msg, err := rd.ReadBytes(0)
			if err != nil {
				return
			}
			var m struct {
				ID int `json:"id"`
				cdpReply
			}
			if json.Unmarshal(msg[:len(msg)-1], &m) == nil && m.ID != 0 {
				c.mu.Lock()
				ch := c.waiting[m.ID]
				delete(c.waiting, m.ID)
				c.mu.Unlock()
				if ch != nil {
					ch <- m.cdpReply
				}
			}
		}
	}()
	t.Cleanup(func() {
		_, _ = c.call("", "Browser.close", nil)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-done
		}
		cancel()
		ours.Close()
		theirs.Close()
	})
	var page string
	deadline := time.Now().Add(60 * time.Second)
	for page == "" && time.Now().Before(deadline) {
		res, err := c.call("", "Target.getTargets", nil)
		if err != nil {
			t.Fatal(err)
		}
		var targets struct {
			TargetInfos []struct{ TargetID, Type, URL string } `json:"targetInfos"`
		}
		_ = json.Unmarshal(res, &targets)
		for _, ti := range targets.TargetInfos {
			if ti.Type == "page" {
				page = ti.TargetID
			}
		}
		if page == "" {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if page == "" {
		t.Fatal("chromium opened no page")
	}
	res, err := c.call("", "Target.attachToTarget", map[string]any{"targetId": page, "flatten": true})
	if err != nil {
		t.Fatal(err)
	}
	var att struct {
		SessionID string `json:"sessionId"`
	}
	_ = json.Unmarshal(res, &att)
	c.session = att.SessionID
	return c
}

func (c *cdp) call(session, method string, params any) (json.RawMessage, error) {
	c.mu.Lock()
	c.next++
	id := c.next
	ch := make(chan cdpReply, 1)
	c.waiting[id] = ch
	c.mu.Unlock()
	msg := map[string]any{"id": id, "method": method}
	if params != nil {
		msg["params"] = params
	}
	if session != "" {
		msg["sessionId"] = session
	}
	data, _ := json.Marshal(msg)
	if _, err := c.w.Write(append(data, 0)); err != nil {
		return nil, err
	}
	select {
	case r := <-ch:
		if r.Error != nil {
			return nil, fmt.Errorf("%s: %s", method, r.Error.Message)
		}
		return r.Result, nil
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("%s: no answer in 30 s", method)
	}
}

// evaluate runs a script in the page and returns its value as JSON.
func (c *cdp) evaluate(expr string) (json.RawMessage, error) {
	res, err := c.call(c.session, "Runtime.evaluate", map[string]any{"expression": expr, "returnByValue": true})
	if err != nil {
		return nil, err
	}
	var r struct {
		Result struct {
			Value json.RawMessage `json:"value"`
		} `json:"result"`
		ExceptionDetails any `json:"exceptionDetails"`
	}
	_ = json.Unmarshal(res, &r)
	if r.ExceptionDetails != nil {
		return nil, fmt.Errorf("script %q threw: %v", expr, r.ExceptionDetails)
	}
	return r.Result.Value, nil
}

// eval is evaluate in a page that has loaded: an error fails the test.
func (c *cdp) eval(t *testing.T, expr string) json.RawMessage {
	t.Helper()
	v, err := c.evaluate(expr)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor evaluates cond until it is true, or gives up after d. Until
// the page has a document to run it in, an error means "not yet".
func (c *cdp) waitFor(t *testing.T, cond string, d time.Duration) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	var last error
	for time.Now().Before(deadline) {
		v, err := c.evaluate(cond)
		if err == nil && string(v) == "true" {
			return true
		}
		last = err
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		t.Logf("last evaluation of %q: %v", cond, last)
	}
	return false
}
