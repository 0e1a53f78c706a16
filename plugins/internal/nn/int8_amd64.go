//go:build !purego

package nn

import "golang.org/x/sys/cpu"

// The AVX2 kernels (int8_amd64.s) widen 16 int8 of an activation row and of
// each of four weight rows to int16 (VPMOVSXBW), multiply them and add
// adjacent pairs into int32 (VPMADDWD), exactly, and keep eight such sums
// per output unit in a register until the row ends.
var int8AVX2 = int8Kernels{name: "avx2", one: int8DotAVX2x1, two: int8DotAVX2x2, maxAbs: maxAbsAVX2, quantize: quantizeRowAVX2}

func init() {
	if cpu.X86.HasAVX2 {
		int8Kernel = int8AVX2
	}
}

// int8Accelerated lists the kernels of this architecture besides the
// portable one, whether this machine runs them or not.
var int8Accelerated = []int8Kernels{int8AVX2}

func int8Supported(k int8Kernels) bool { return k.name == "avx2" && cpu.X86.HasAVX2 }

//go:noescape
func int8Dot1x4AVX2(x, w *int8, k, blocks int, y *int32)

//go:noescape
func int8Dot2x4AVX2(x0, x1, w *int8, k, blocks int, y0, y1 *int32)

func int8DotAVX2x1(x, w []int8, k, blocks int, y []int32) {
	checkInt8Args(len(x), len(w), k, blocks, len(y))
	int8Dot1x4AVX2(&x[0], &w[0], k, blocks, &y[0])
}

func int8DotAVX2x2(x0, x1, w []int8, k, blocks int, y0, y1 []int32) {
	checkInt8Args(len(x0), len(w), k, blocks, len(y0))
	checkInt8Args(len(x1), len(w), k, blocks, len(y1))
	int8Dot2x4AVX2(&x0[0], &x1[0], &w[0], k, blocks, &y0[0], &y1[0])
}

// checkInt8Args is the bounds check the assembly does not make.
func checkInt8Args(nx, nw, k, blocks, ny int) {
	if k <= 0 || k%int8Step != 0 || blocks <= 0 || nx < k || nw < blocks*int8Units*k || ny < blocks*int8Units {
		panic("nn: int8 kernel arguments out of range")
	}
}

//go:noescape
func maxAbsBitsAVX2(x *float32, n int) uint32

//go:noescape
func quantizeAVX2(x *float32, n int, inv float32, q *int8)

func maxAbsAVX2(x []float32) uint32 {
	n := len(x) &^ 7
	var m uint32
	if n > 0 {
		m = maxAbsBitsAVX2(&x[0], n)
	}
	return max(m, maxAbsGo(x[n:]))
}

func quantizeRowAVX2(x []float32, inv float32, q []int8) {
	q = q[:len(x)]
	n := len(x) &^ 7
	if n > 0 {
		quantizeAVX2(&x[0], n, inv, &q[0])
	}
	quantizeGo(x[n:], inv, q[n:])
}
