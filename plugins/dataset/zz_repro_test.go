package dataset

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow/memory"
)

func TestZZRepro(t *testing.T) {
	files, _ := filepath.Glob("/tmp/fuzzlast-*")
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Skip()
		}
		start := time.Now()
		mem := memory.NewCheckedAllocator(memory.NewGoAllocator())
		tab, err := Load([]string{"fuzz.parquet", "fuzz.arrow", "fuzz.arrows"}[int(b[0])%3], bytes.NewReader(b[2:]), LoadOptions{MaxRows: int(b[1] % 16), Allocator: mem})
		t.Log(f, err, time.Since(start))
		if err == nil {
			mem.AssertSize(t, 0)
			checkConsistent(t, tab)
		}
	}
}
