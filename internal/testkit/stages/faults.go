package stages

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"

	"github.com/sweetspot-ml/sweetspot/sdk"
)

// The fault kinds misbehave as real plugins do, each in one way the host
// must survive: a stage that ignores cancellation, writes to stdout, sends
// more than fits in a message, or leaks memory. Those that never write
// still declare an output, so that other stages can depend on them.

// BlobSchema is what bigbatch writes: an id and one large string per row.
var BlobSchema = arrow.NewSchema([]arrow.Field{
	{Name: "id", Type: arrow.PrimitiveTypes.Int64},
	{Name: "blob", Type: arrow.BinaryTypes.String},
}, nil)

type BigBatchConfig struct {
	Rows     int64 `hcl:"rows" doc:"Rows of the one batch."`
	RowBytes int64 `hcl:"row_bytes" doc:"Bytes of each row's blob."`
}

type LeakConfig struct {
	// StopMiB keeps a test whose host fails to enforce memory_limit from
	// taking the machine down with it.
	StopMiB int64 `hcl:"stop_mib,optional" doc:"Stop growing at this many MiB and wait (default 2048)."`
	Child   bool  `hcl:"child,optional" doc:"Leak in a child process instead of the plugin itself."`
}

// LeakChildArg makes the testkit binary a leaking child process (see
// leak with child = true).
const LeakChildArg = "leak-child"

func registerFaultStages(set *sdk.Set) {
	sdk.Register(set, "hang", sdk.StageInfo{
		Description: "Ignores cancellation: never returns; with child, first starts a child process that ignores SIGTERM and SIGINT and outlives its parent.",
		Outputs:     []sdk.Port{{Name: "table", Schema: TableSchema}},
	}, func(c HangConfig) (sdk.Stage, error) { return hang{c}, nil })
	sdk.Register(set, "stdout", sdk.StageInfo{
		Description: "Writes garbage to stdout, then waits until its context ends.",
		Outputs:     []sdk.Port{{Name: "table", Schema: TableSchema}},
	}, func(NoConfig) (sdk.Stage, error) { return stdout{}, nil })
	sdk.Register(set, "bigbatch", sdk.StageInfo{
		Description: "Writes one batch of rows*row_bytes bytes, however large.",
		Outputs:     []sdk.Port{{Name: "table", Schema: BlobSchema}},
	}, func(c BigBatchConfig) (sdk.Stage, error) {
		if c.Rows < 1 || c.RowBytes < 1 || c.Rows*c.RowBytes > 1<<30 {
			return nil, sdk.AttrError("rows", "Invalid size", "rows and row_bytes must be positive, and their product at most 1 GiB.")
		}
		return bigbatch{c}, nil
	})
	sdk.Register(set, "leak", sdk.StageInfo{
		Description: "Allocates memory and never frees it, until stop_mib.",
		Outputs:     []sdk.Port{{Name: "table", Schema: TableSchema}},
	}, func(c LeakConfig) (sdk.Stage, error) {
		if c.StopMiB <= 0 {
			c.StopMiB = 2048
		}
		return leak{c}, nil
	})
}

type HangConfig struct {
	Child bool `hcl:"child,optional" doc:"Start a child process that ignores SIGTERM and SIGINT and outlives this plugin, as a careless plugin's worker does."`
}

// StrayChildArg makes the testkit binary a child that ignores the polite
// signals and does not die with its parent (see hang with child = true).
const StrayChildArg = "stray-child"

type hang struct{ cfg HangConfig }

func (h hang) Run(context.Context, sdk.Inputs, sdk.Outputs) error {
	if h.cfg.Child {
		self, err := os.Executable()
		if err != nil {
			return err
		}
		if err := exec.Command(self, StrayChildArg).Start(); err != nil {
			return fmt.Errorf("stray child: %w", err)
		}
	}
	for {
		time.Sleep(time.Hour)
	}
}

type stdout struct{}

func (stdout) Run(ctx context.Context, _ sdk.Inputs, _ sdk.Outputs) error {
	// What a stray debugging print does: stdout belongs to the protocol.
	fmt.Println("DEBUG rows=42 \x00\x01 not for the host")
	<-ctx.Done()
	return ctx.Err()
}

type bigbatch struct{ cfg BigBatchConfig }

func (b bigbatch) Run(ctx context.Context, _ sdk.Inputs, out sdk.Outputs) error {
	w, err := out.Writer("table")
	if err != nil {
		return err
	}
	rb := array.NewRecordBuilder(sdk.Allocator(ctx), BlobSchema)
	defer rb.Release()
	ids := rb.Field(0).(*array.Int64Builder)
	blobs := rb.Field(1).(*array.StringBuilder)
	blobs.ReserveData(int(b.cfg.Rows * b.cfg.RowBytes))
	blob := strings.Repeat("x", int(b.cfg.RowBytes))
	for i := range b.cfg.Rows {
		ids.Append(i)
		blobs.Append(blob)
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	return w.Write(rec)
}

type leak struct{ cfg LeakConfig }

func (l leak) Run(ctx context.Context, _ sdk.Inputs, _ sdk.Outputs) error {
	if !l.cfg.Child {
		Leak(l.cfg.StopMiB)
		<-ctx.Done()
		return ctx.Err()
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, self, LeakChildArg, strconv.FormatInt(l.cfg.StopMiB, 10))
	cmd.Stderr = os.Stderr
	// The child must not outlive the plugin, however the plugin ends.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Run(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("leaking child: %w", err)
	}
	return ctx.Err()
}

// leaked keeps every chunk reachable, so the collector frees nothing.
var leaked [][]byte

// Leak grows the process's resident memory by 4 MiB every 10 ms, touching
// every page, until it holds stopMiB.
func Leak(stopMiB int64) {
	const chunk = 4 << 20
	for int64(len(leaked))*chunk < stopMiB<<20 {
		b := make([]byte, chunk)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		leaked = append(leaked, b)
		time.Sleep(10 * time.Millisecond)
	}
}
