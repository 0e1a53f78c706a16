package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"runtime"
	"testing"
)

// int8Kernels lists every kernel this machine can run: the portable one
// and each accelerated one it supports. On amd64 under CI the AVX2 kernel
// must be among them, so that CI never passes without testing it.
func testedInt8Kernels(t *testing.T) []int8Kernels {
	ks := []int8Kernels{int8Portable}
	for _, k := range int8Accelerated {
		if int8Supported(k) {
			ks = append(ks, k)
		} else if os.Getenv("CI") != "" {
			t.Errorf("CI's %s machine does not run the %s int8 kernel", runtime.GOARCH, k.name)
		} else {
			t.Logf("this machine does not run the %s int8 kernel: only the portable one is tested", k.name)
		}
	}
	return ks
}

func randInt8(rng *rand.Rand, n int) []int8 {
	v := make([]int8, n)
	for i := range v {
		v[i] = int8(rng.IntN(255) - 127)
	}
	return v
}

// Every kernel's int32 sums equal a plain triple loop's, exactly, for
// shapes with and without padding, one row and several, at the extreme
// values too (±127 everywhere, the largest sums).
func TestInt8KernelsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, sh := range []struct{ rows, in, out int }{
		{1, 1, 1}, {1, 16, 4}, {2, 16, 4}, {3, 17, 5}, {1, 64, 10}, {5, 100, 33},
		{32, 64, 64}, {7, 256, 256}, {4, 1024, 300}, {3, 2000, 9},
	} {
		for _, extreme := range []bool{false, true} {
			w := randInt8(rng, sh.in*sh.out)
			x := randInt8(rng, sh.rows*sh.in)
			if extreme {
				for i := range w {
					w[i] = 127
				}
				for i := range x {
					x[i] = -127
				}
			}
			want := make([]int32, sh.rows*sh.out)
			for r := range sh.rows {
				for o := range sh.out {
					var s int64
					for i := range sh.in {
						s += int64(x[r*sh.in+i]) * int64(w[o*sh.in+i])
					}
					want[r*sh.out+o] = int32(s)
				}
			}
			L := clayer{in: sh.in, out: sh.out, int8: true, wq: w}
			p := packInt8(&L)
			xp := make([]int8, sh.rows*p.k)
			for r := range sh.rows {
				copy(xp[r*p.k:], x[r*sh.in:(r+1)*sh.in])
			}
			ld := p.blocks * int8Units
			for _, kern := range testedInt8Kernels(t) {
				t.Run(fmt.Sprintf("%s/%dx%dx%d/extreme=%t", kern.name, sh.rows, sh.in, sh.out, extreme), func(t *testing.T) {
					acc := make([]int32, sh.rows*ld)
					for i := range acc {
						acc[i] = -1 // every sum is written
					}
					int8Gemm(kern, &p, xp, sh.rows, acc, ld)
					for r := range sh.rows {
						for o := range sh.out {
							if got := acc[r*ld+o]; got != want[r*sh.out+o] {
								t.Fatalf("row %d unit %d: %d, want %d", r, o, got, want[r*sh.out+o])
							}
						}
						for o := sh.out; o < ld; o++ {
							if acc[r*ld+o] != 0 {
								t.Fatalf("row %d padding unit %d: %d, want 0", r, o, acc[r*ld+o])
							}
						}
					}
				})
			}
		}
	}
}

// quantizeRow is x·127/max|x| rounded half to even, clamped to ±127.
func TestQuantizeRow(t *testing.T) {
	for _, c := range []struct {
		x     []float32
		q     []int8
		scale float32
	}{
		{[]float32{0, 0}, []int8{0, 0}, 0},
		{[]float32{127, -127, 0.5, 1.5, 2.5, -0.5}, []int8{127, -127, 0, 2, 2, 0}, 1},
		{[]float32{-2, 1}, []int8{-127, 64}, 2.0 / 127}, // 63.5 rounds to the even 64
	} {
		q := make([]int8, len(c.x))
		if s := quantizeRow(c.x, q); s != c.scale || fmt.Sprint(q) != fmt.Sprint(c.q) {
			t.Errorf("quantizeRow(%v) = %v scale %g, want %v scale %g", c.x, q, s, c.q, c.scale)
		}
	}
	for _, bad := range [][]float32{{1, float32(math.NaN())}, {float32(math.Inf(-1)), 0}} {
		if s := quantizeRow(bad, make([]int8, 2)); !math.IsNaN(float64(s)) {
			t.Errorf("quantizeRow(%v) scale %g, want NaN", bad, s)
		}
	}
}
