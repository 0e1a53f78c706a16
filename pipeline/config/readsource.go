package config

import (
	"io"
	"os"

	"github.com/sweetspot-ml/sweetspot/sdk/describe"
)

// ReadSource reads a pipeline or variables file, but never more than one
// byte past describe.MaxSourceBytes: the source check refuses anything
// longer, and a path may name something with no end (/dev/zero, a pipe
// fed forever) or a file of gigabytes that would be read whole only to be
// refused.
func ReadSource(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, describe.MaxSourceBytes+1))
}
