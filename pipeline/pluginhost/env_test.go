package pluginhost

import (
	"context"
	"os"
	"testing"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/google/go-cmp/cmp"
	"github.com/zclconf/go-cty/cty"
)

func TestPluginEnvFilter(t *testing.T) {
	environ := []string{
		"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8", "GOMAXPROCS=2",
		"AWS_SECRET_ACCESS_KEY=s3cr3t", "OTEL_EXPORTER_OTLP_HEADERS=authorization=Bearer x",
		"SWEETSPOT_REATTACH={}", "PLUGIN_MIN_PORT=1", "HF_TOKEN=tok", "malformed",
	}
	for _, tc := range []struct {
		name      string
		pass, set []string
		want      []string
	}{
		{
			name: "base set only",
			want: []string{"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8", "GOMAXPROCS=2"},
		},
		{
			name: "listed secret passes",
			pass: []string{"AWS_SECRET_ACCESS_KEY", "UNSET_NAME"},
			want: []string{"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8", "GOMAXPROCS=2", "AWS_SECRET_ACCESS_KEY=s3cr3t"},
		},
		{
			name: "host-owned names never pass from the environment",
			pass: []string{"SWEETSPOT_REATTACH", "PLUGIN_MIN_PORT"},
			want: []string{"PATH=/usr/bin", "HOME=/home/u", "LC_ALL=C.UTF-8", "GOMAXPROCS=2"},
		},
		{
			name: "the host's own variables win",
			set:  []string{"SWEETSPOT_LOG_LEVEL=warn", "HOME=/elsewhere"},
			want: []string{"PATH=/usr/bin", "HOME=/elsewhere", "LC_ALL=C.UTF-8", "GOMAXPROCS=2", "SWEETSPOT_LOG_LEVEL=warn"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if diff := cmp.Diff(tc.want, pluginEnv(environ, tc.pass, tc.set)); diff != "" {
				t.Errorf("pluginEnv (-want +got):\n%s", diff)
			}
		})
	}
}

// TestSecretReachesPluginOnlyWhenListed starts the test plugin as a real
// process and has it report its own environment.
func TestSecretReachesPluginOnlyWhenListed(t *testing.T) {
	t.Setenv("AWS_SECRET_ACCESS_KEY", "s3cr3t")
	t.Setenv("OTEL_EXPORTER_OTLP_HEADERS", "authorization=Bearer x")
	t.Setenv("SWEETSPOT_SECRET_PLUMBING", "no")
	h, _ := newHost(t)
	names := []string{"AWS_SECRET_ACCESS_KEY", "OTEL_EXPORTER_OTLP_HEADERS", "SWEETSPOT_SECRET_PLUMBING", "PATH", "SWEETSPOT_LOG_LEVEL"}
	str := func(s string) *string { return &s }
	for _, tc := range []struct {
		name string
		pass []string
		want map[string]*string
	}{
		{
			name: "not listed",
			want: map[string]*string{
				"AWS_SECRET_ACCESS_KEY": nil, "OTEL_EXPORTER_OTLP_HEADERS": nil, "SWEETSPOT_SECRET_PLUMBING": nil,
				"PATH": str(os.Getenv("PATH")), "SWEETSPOT_LOG_LEVEL": str("warn"),
			},
		},
		{
			name: "listed",
			pass: []string{"AWS_SECRET_ACCESS_KEY", "SWEETSPOT_SECRET_PLUMBING"},
			want: map[string]*string{
				"AWS_SECRET_ACCESS_KEY": str("s3cr3t"), "OTEL_EXPORTER_OTLP_HEADERS": nil, "SWEETSPOT_SECRET_PLUMBING": nil,
				"PATH": str(os.Getenv("PATH")), "SWEETSPOT_LOG_LEVEL": str("warn"),
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := h.Start(context.Background(), "test", PassEnv(tc.pass...))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Kill()
			got := map[string]*string{}
			vals := make([]cty.Value, len(names))
			for i, n := range names {
				vals[i] = cty.StringVal(n)
			}
			_, err = c.Run(context.Background(), RunRequest{
				Kind: "getenv", Stage: "getenv.t", Config: cty.ObjectVal(map[string]cty.Value{"names": cty.ListVal(vals)}),
				Outputs: map[string]func(arrow.RecordBatch) error{"env": func(b arrow.RecordBatch) error {
					ns, vs := b.Column(0).(*array.String), b.Column(1).(*array.String)
					for i := 0; i < int(b.NumRows()); i++ {
						if vs.IsNull(i) {
							got[ns.Value(i)] = nil
						} else {
							got[ns.Value(i)] = str(vs.Value(i))
						}
					}
					return nil
				}},
			})
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("plugin environment (-want +got):\n%s", diff)
			}
		})
	}
}
