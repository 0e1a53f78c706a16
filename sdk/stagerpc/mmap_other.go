//go:build !unix

package stagerpc

import (
	"errors"
	"os"
)

// FilesSupported says whether this platform can map input files, and so
// whether a plugin offers FEATURE_INPUT_FILES.
const FilesSupported = false

func mapFile(*os.File, int64) ([]byte, error) { return nil, ErrFilesUnsupported }

func unmapFile([]byte) error { return errors.ErrUnsupported }
