// Package openblas is sweetspot's own binding of OpenBLAS's cblas_sgemm
// (Debian's libopenblas-dev; `make openblas` installs it), built only with
// the blas build tag: there package nn's matrix products (the trainer's
// and the float32 predictor's) go through it instead of gonum's pure-Go
// blas32. Without the tag this package is empty and nothing links
// OpenBLAS, so the default build stays pure Go. It is a package of its
// own because a package using cgo cannot hold Go assembly, which nn does.
package openblas
