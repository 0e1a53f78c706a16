//go:build !blas

package nn

import (
	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// Backend names the matrix product's implementation: gonum's pure-Go
// blas32 by default, OpenBLAS in a build with the blas tag
// (gemm_openblas.go).
const Backend = "gonum"

// Gonum's Sgemm splits a product into 64×64 blocks of C and, from four
// blocks up, hands them to GOMAXPROCS goroutines. The results do not depend
// on the scheduling (each block's sum runs in a fixed order), but the
// goroutines would compete with the fits the caller runs side by side. gemm
// therefore cuts C into tiles of at most tileRows×tileCols, below gonum's
// threshold, so that each call takes the serial path.
const (
	tileRows = 64
	tileCols = 3 * 64
)

// gemm computes C = alpha·op(A)·op(B) + beta·C on the calling goroutine, with
// op(A) m×k and op(B) k×n, all row-major with the given strides.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	impl := blas32.Implementation()
	tA, tB := blas.NoTrans, blas.NoTrans
	if transA {
		tA = blas.Trans
	}
	if transB {
		tB = blas.Trans
	}
	for i := 0; i < m; i += tileRows {
		mi := min(tileRows, m-i)
		// Row i of op(A): row i of A, or column i of A when transposed.
		aOff := i * lda
		if transA {
			aOff = i
		}
		for j := 0; j < n; j += tileCols {
			nj := min(tileCols, n-j)
			bOff := j
			if transB {
				bOff = j * ldb
			}
			impl.Sgemm(tA, tB, mi, nj, k, alpha, a[aOff:], lda, b[bOff:], ldb, beta, c[i*ldc+j:], ldc)
		}
	}
}
