//go:build blas

package openblas

// The two functions are declared here rather than taken from cblas.h, so
// that `go vet -tags blas` checks this file on a machine without
// OpenBLAS's headers (linking still needs the library); the enums of the
// CBLAS interface are C ints, and their values are fixed by it.

/*
#cgo LDFLAGS: -lopenblas
void cblas_sgemm(int order, int transA, int transB, int m, int n, int k,
	float alpha, const float *a, int lda, const float *b, int ldb,
	float beta, float *c, int ldc);
void openblas_set_num_threads(int n);
*/
import "C"

import "fmt"

// The CBLAS enums' values.
const (
	rowMajor = 101
	noTrans  = 111
	trans    = 112
)

// OpenBLAS is told to use one thread: sweetspot runs fits side by side on
// goroutines, each product on its caller's thread, as gonum's path does.
func init() { C.openblas_set_num_threads(1) }

// Sgemm computes C = alpha·op(A)·op(B) + beta·C with op(A) m×k and op(B)
// k×n, all row-major with the given strides, on the calling thread. C
// would read past a short slice without a word, so every length is
// checked first, and a short one panics as gonum's Sgemm does.
func Sgemm(transA, transB bool, m, n, k int, alpha float32, a []float32, lda int, b []float32, ldb int, beta float32, c []float32, ldc int) {
	if m < 0 || n < 0 || k < 0 {
		panic(fmt.Sprintf("openblas: Sgemm of %d×%d×%d", m, n, k))
	}
	if m == 0 || n == 0 {
		return
	}
	ar, ac := m, k
	if transA {
		ar, ac = k, m
	}
	br, bc := k, n
	if transB {
		br, bc = n, k
	}
	check := func(name string, s []float32, rows, cols, ld int) {
		if ld < max(1, cols) || (rows > 0 && len(s) < (rows-1)*ld+cols) {
			panic(fmt.Sprintf("openblas: Sgemm: %s of %d×%d with stride %d in %d values", name, rows, cols, ld, len(s)))
		}
	}
	check("A", a, ar, ac, lda)
	check("B", b, br, bc, ldb)
	check("C", c, m, n, ldc)
	if k == 0 {
		// No product: C = beta·C (a reference to A or B would be out of
		// range).
		for i := range m {
			row := c[i*ldc : i*ldc+n]
			for j := range row {
				if beta == 0 {
					row[j] = 0
				} else {
					row[j] *= beta
				}
			}
		}
		return
	}
	tA, tB := C.int(noTrans), C.int(noTrans)
	if transA {
		tA = trans
	}
	if transB {
		tB = trans
	}
	C.cblas_sgemm(rowMajor, tA, tB, C.int(m), C.int(n), C.int(k), C.float(alpha),
		(*C.float)(&a[0]), C.int(lda), (*C.float)(&b[0]), C.int(ldb), C.float(beta), (*C.float)(&c[0]), C.int(ldc))
}
