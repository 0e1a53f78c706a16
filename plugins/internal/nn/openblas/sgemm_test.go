//go:build blas

package openblas

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"gonum.org/v1/gonum/blas"
	"gonum.org/v1/gonum/blas/blas32"
)

// OpenBLAS's products agree with gonum's pure-Go Sgemm, which we did not
// write either, on every transpose, padded strides, alpha and beta, up to
// float32 rounding of sums in another order.
func TestSgemmAgreesWithGonum(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	fill := func(n int) []float32 {
		s := make([]float32, n)
		for i := range s {
			s[i] = float32(rng.NormFloat64())
		}
		return s
	}
	for _, sh := range [][3]int{{1, 1, 1}, {3, 5, 7}, {64, 10, 64}, {65, 129, 33}, {7, 3, 0}} {
		m, n, k := sh[0], sh[1], sh[2]
		for _, tA := range []bool{false, true} {
			for _, tB := range []bool{false, true} {
				t.Run(fmt.Sprintf("%dx%dx%d/tA=%v/tB=%v", m, n, k, tA, tB), func(t *testing.T) {
					ar, ac := m, k
					if tA {
						ar, ac = k, m
					}
					br, bc := k, n
					if tB {
						br, bc = n, k
					}
					lda, ldb, ldc := ac+2, bc+1, n+3
					a, b, c := fill(ar*lda), fill(br*ldb), fill(m*ldc)
					want := append([]float32(nil), c...)
					op := func(tr bool) blas.Transpose {
						if tr {
							return blas.Trans
						}
						return blas.NoTrans
					}
					if k > 0 {
						blas32.Implementation().Sgemm(op(tA), op(tB), m, n, k, 0.5, a, lda, b, ldb, 0.25, want, ldc)
					} else {
						for i := range m {
							for j := range n {
								want[i*ldc+j] *= 0.25
							}
						}
					}
					Sgemm(tA, tB, m, n, k, 0.5, a, lda, b, ldb, 0.25, c, ldc)
					for i := range m {
						for j := range ldc {
							g, w := c[i*ldc+j], want[i*ldc+j]
							if j >= n && g != w {
								t.Fatalf("C[%d][%d] beyond the %d columns changed: %g, was %g", i, j, n, g, w)
							}
							if tol := 1e-5 * float64(max(k, 1)); math.Abs(float64(g-w)) > tol*(1+math.Abs(float64(w))) {
								t.Fatalf("C[%d][%d] = %g, gonum %g", i, j, g, w)
							}
						}
					}
				})
			}
		}
	}
}

// A slice too short for its shape panics before C reads past it.
func TestSgemmShortSlicePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || fmt.Sprint(r) != "openblas: Sgemm: B of 4×4 with stride 4 in 15 values" {
			t.Errorf("recovered %v", r)
		}
	}()
	Sgemm(false, false, 4, 4, 4, 1, make([]float32, 16), 4, make([]float32, 15), 4, 0, make([]float32, 16), 4)
}
