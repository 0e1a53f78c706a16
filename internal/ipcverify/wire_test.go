package ipcverify

import (
	"encoding/binary"
	"strings"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// splitStream cuts an IPC stream into its messages' metadata and bodies,
// as Flight framing carries them.
func splitStream(t testing.TB, data []byte) (metas, bodies [][]byte) {
	t.Helper()
	for len(data) >= 8 {
		if binary.LittleEndian.Uint32(data) != 0xFFFFFFFF {
			t.Fatal("no continuation marker")
		}
		n := int(binary.LittleEndian.Uint32(data[4:]))
		if n == 0 {
			break
		}
		meta := data[8 : 8+n]
		body, err := VerifyMessage(meta)
		if err != nil {
			t.Fatal(err)
		}
		metas = append(metas, meta)
		bodies = append(bodies, data[8+n:8+n+int(body)])
		data = data[8+n+int(body):]
	}
	return metas, bodies
}

func TestVerifyWireMessage(t *testing.T) {
	recs := arrowBatches(t, memory.NewGoAllocator())
	defer release(recs)
	metas, bodies := splitStream(t, writeStream(t, recs))
	for i := range metas {
		if err := VerifyWireMessage(metas[i], len(bodies[i])); err != nil {
			t.Errorf("message %d refused: %v", i, err)
		}
	}
	last := len(metas) - 1
	if len(bodies[last]) == 0 {
		t.Fatal("the last message has no body")
	}
	err := VerifyWireMessage(metas[last], len(bodies[last])-1)
	if err == nil || !strings.Contains(err.Error(), "announce a body of") {
		t.Errorf("short body: got %v", err)
	}
	if err := VerifyWireMessage(metas[0][:len(metas[0])/2], 0); err == nil {
		t.Error("cut metadata passed")
	}

	metas, bodies = splitStream(t, writeStream(t, recs, ipc.WithLZ4()))
	err = VerifyWireMessage(metas[last], len(bodies[last]))
	if err == nil || !strings.Contains(err.Error(), "compressed Arrow message") {
		t.Errorf("compressed batch: got %v", err)
	}
}
