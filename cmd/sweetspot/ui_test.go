package main

import "testing"

func TestUIRefusesNonLoopbackAddr(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:0", ":0", "192.0.2.1:8765", "example.com:8765"} {
		if code := execute([]string{"ui", "--out", t.TempDir(), "--addr", addr}); code != exitInvalid {
			t.Errorf("ui --addr %s: exit %d, want %d (refused without --allow-remote)", addr, code, exitInvalid)
		}
	}
	if code := execute([]string{"ui", "--addr", "no-port"}); code != exitInvalid {
		t.Errorf("ui --addr no-port: exit %d, want %d", code, exitInvalid)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{"127.0.0.1": true, "127.3.2.1": true, "::1": true, "localhost": true, "": false, "0.0.0.0": false, "10.0.0.1": false, "::": false} {
		if got := isLoopback(host); got != want {
			t.Errorf("isLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}
