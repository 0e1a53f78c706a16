package stagerpc

import (
	"errors"
	"testing"

	"github.com/sweetspot-ml/sweetspot/sdk/stagepb"
)

// A peer that sends data on a port it has ended breaks the protocol; the
// receiver says so instead of panicking on the closed queue.
func TestDeliverAfterEnd(t *testing.T) {
	b := NewInbox("p", 4, func(string, int) {})
	if err := b.Deliver(&stagepb.ArrowData{Port: "p"}); err != nil {
		t.Fatal(err)
	}
	b.End()
	b.End()
	err := b.Deliver(&stagepb.ArrowData{Port: "p"})
	if !errors.Is(err, ErrProtocol) || err.Error() != `stage protocol violation: port "p": data after the port's end` {
		t.Errorf("got %v", err)
	}
}
