package ipcverify

import (
	"encoding/binary"
	"fmt"
	"io"

	"github.com/apache/arrow-go/v18/arrow/ipc"
	"github.com/apache/arrow-go/v18/arrow/memory"
)

// NewFileReader checks the Arrow IPC file r (its footer and every
// message's metadata) and opens it with arrow-go, allocating through mem
// (nil: memory.DefaultAllocator). The caller closes the reader, and reads
// batches under recover: bodies are not checked.
func NewFileReader(r ipc.ReadAtSeeker, mem memory.Allocator) (*ipc.FileReader, error) {
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, err
	}
	if err := VerifyFile(r, size); err != nil {
		return nil, err
	}
	return ipc.NewFileReader(r, ipc.WithAllocator(orDefault(mem)))
}

// NewStreamReader opens an Arrow IPC stream whose messages are each
// checked before arrow-go decodes them, and refused when their metadata or
// body claims more than maxBody bytes (the input's size when known). The
// reader reads the schema at once; the caller releases it, and reads
// batches under recover: bodies are not checked.
func NewStreamReader(r io.Reader, maxBody int64, mem memory.Allocator) (*ipc.Reader, error) {
	mem = orDefault(mem)
	maxBody = max(maxBody, 0)
	maxMeta := max(min(maxBody, MaxMetadataBytes), 1)
	checked := &verifiedStream{r: r, maxMeta: maxMeta, maxBody: maxBody}
	// ipc.NewReader ignores size limits (arrow-go v18.8.0): build the
	// message reader that applies them.
	msgs := ipc.NewMessageReader(checked, ipc.WithAllocator(mem), ipc.WithBodySizeLimit(max(maxBody, 1)), ipc.WithMetadataSizeLimit(maxMeta))
	// The reader owns msgs and releases it, even when it fails.
	return ipc.NewReaderFromMessageReader(msgs, ipc.WithAllocator(mem))
}

func orDefault(mem memory.Allocator) memory.Allocator {
	if mem == nil {
		return memory.DefaultAllocator
	}
	return mem
}

// verifiedStream passes an IPC stream through, checking the metadata of
// each message before handing it on. The bodies pass unread.
type verifiedStream struct {
	r        io.Reader
	maxMeta  int64
	maxBody  int64
	pending  []byte
	body     int64
	finished bool
}

func (v *verifiedStream) Read(p []byte) (int, error) {
	if len(v.pending) == 0 && v.body == 0 {
		if v.finished {
			return 0, io.EOF
		}
		if err := v.next(); err != nil {
			return 0, err
		}
	}
	if len(v.pending) > 0 {
		n := copy(p, v.pending)
		v.pending = v.pending[n:]
		return n, nil
	}
	if int64(len(p)) > v.body {
		p = p[:v.body]
	}
	n, err := v.r.Read(p)
	v.body -= int64(n)
	if err == io.EOF && v.body > 0 {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// next reads the framing and metadata of the next message.
func (v *verifiedStream) next() error {
	var head [8]byte
	if _, err := io.ReadFull(v.r, head[:4]); err != nil {
		if err == io.EOF {
			v.finished = true
		}
		return err
	}
	n := 4
	length := int64(int32(binary.LittleEndian.Uint32(head[:4])))
	if length == -1 { // the continuation marker 0xFFFFFFFF
		if _, err := io.ReadFull(v.r, head[4:]); err != nil {
			return err
		}
		n = 8
		length = int64(int32(binary.LittleEndian.Uint32(head[4:])))
	}
	v.pending = append(v.pending[:0], head[:n]...)
	if length == 0 { // end of stream
		v.finished = true
		return nil
	}
	if length < 0 || length > v.maxMeta {
		return fmt.Errorf("damaged Arrow stream: message metadata of %d bytes", length)
	}
	meta := make([]byte, length)
	if _, err := io.ReadFull(v.r, meta); err != nil {
		return fmt.Errorf("Arrow stream ends inside a message: %w", err)
	}
	body, err := VerifyMessage(meta)
	if err != nil {
		return err
	}
	if body > v.maxBody {
		return fmt.Errorf("damaged Arrow stream: message body of %d bytes, more than the %d the stream can hold", body, v.maxBody)
	}
	v.pending = append(v.pending, meta...)
	v.body = body
	return nil
}
