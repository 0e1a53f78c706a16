//go:build blas

package nn

import "github.com/sweetspot-ml/sweetspot/plugins/internal/nn/openblas"

// Backend names the matrix product's implementation.
const Backend = "openblas"

// gemm computes C = alpha·op(A)·op(B) + beta·C on the calling thread
// through OpenBLAS (the blas build tag), with op(A) m×k and op(B) k×n,
// all row-major with the given strides.
func gemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	openblas.Sgemm(transA, transB, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc)
}
