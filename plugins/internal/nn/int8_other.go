//go:build !amd64 || purego

package nn

// int8Accelerated is empty: this architecture (or the purego build) has
// only the portable kernel.
var int8Accelerated []int8Kernels

func int8Supported(int8Kernels) bool { return false }
