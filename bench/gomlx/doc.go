// Package gomlxbench trains, with GoMLX's pure-Go backend (simplego: no cgo,
// no XLA), the MLP that plugins/internal/nn's BenchmarkTrain trains, so the
// two trainers' GFLOP/s can be compared on one machine in one `make bench`.
//
// It is a module of its own so that GoMLX never enters sweetspot's go.mod.
package gomlxbench
