package runstore

import (
	"fmt"
)

// runIDLayout is what NewRunID makes, character by character: 'd' a
// decimal digit, 'x' a lower-case hex digit, '-' itself.
const runIDLayout = "dddddddd-dddddd-xxxxxx"

// InvalidRunIDError is a run id (or prefix) given to the store that is not
// of its own format. The store refuses it before it touches the file
// system, so no id can name a path outside the store ("../../x").
type InvalidRunIDError struct {
	ID string
}

func (e *InvalidRunIDError) Error() string {
	return fmt.Sprintf("%q is not a run id: run ids look like 20261128-231726-a1b2c3 (the time the run started, then 6 hex digits), and a unique prefix of one such as 20261128-2317 names a run too", e.ID)
}

// CheckRunID reports whether id is a run id as NewRunID makes them, or a
// non-empty prefix of one, and an *InvalidRunIDError if not.
func CheckRunID(id string) error {
	if !validRunIDPrefix(id) {
		return &InvalidRunIDError{ID: id}
	}
	return nil
}

// isRunID reports whether name is a whole run id.
func isRunID(name string) bool {
	return len(name) == len(runIDLayout) && validRunIDPrefix(name)
}

func validRunIDPrefix(id string) bool {
	if id == "" || len(id) > len(runIDLayout) {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		switch runIDLayout[i] {
		case 'd':
			if c < '0' || c > '9' {
				return false
			}
		case 'x':
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		default:
			if c != runIDLayout[i] {
				return false
			}
		}
	}
	return true
}
