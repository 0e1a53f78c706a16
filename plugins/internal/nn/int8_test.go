package nn

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"testing"

	"github.com/sweetspot-ml/sweetspot/internal/testenv"
)

// int8Kernels lists every kernel this machine can run: the portable one
// and each accelerated one it supports. On amd64 under CI the AVX2 kernel
// must be among them, so that CI never passes without testing it.
func testedInt8Kernels(t *testing.T) []int8Kernels {
	ks := []int8Kernels{int8Portable}
	for _, k := range int8Accelerated {
		if int8Supported(k) {
			ks = append(ks, k)
		} else if testenv.Strict() {
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

// quantizeRow is x/(max|x|/127) rounded half to even.
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
		for _, kern := range testedInt8Kernels(t) {
			q := make([]int8, len(c.x))
			if s := quantizeRow(kern, c.x, q); s != c.scale || fmt.Sprint(q) != fmt.Sprint(c.q) {
				t.Errorf("%s: quantizeRow(%v) = %v scale %g, want %v scale %g", kern.name, c.x, q, s, c.q, c.scale)
			}
		}
	}
	for _, kern := range testedInt8Kernels(t) {
		for _, bad := range [][]float32{{1, float32(math.NaN())}, {float32(math.Inf(-1)), 0}, {1, 2, 3, 4, 5, 6, 7, 8, float32(math.NaN())}} {
			if s := quantizeRow(kern, bad, make([]int8, len(bad))); !math.IsNaN(float64(s)) {
				t.Errorf("%s: quantizeRow(%v) scale %g, want NaN", kern.name, bad, s)
			}
		}
	}
}

// Every kernel quantizes as a plain loop with float64 rounding does, on
// rows of every length up to 40 (vector bodies and tails), ties included.
func TestQuantizeKernelsMatchReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for n := 1; n <= 40; n++ {
		x := make([]float32, n)
		for i := range x {
			x[i] = float32(rng.NormFloat64())
			if i%5 == 0 {
				x[i] = float32(rng.IntN(9)-4) / 2 // ties once scaled by 1
			}
		}
		if n%3 == 0 {
			x[0] = 127 // a scale of exactly 1: the halves above are ties
		}
		var mx float64
		for _, v := range x {
			mx = max(mx, math.Abs(float64(v)))
		}
		inv := 1 / (float32(mx) / 127)
		want := make([]int8, n)
		for i, v := range x {
			want[i] = int8(math.RoundToEven(float64(v * inv)))
		}
		for _, kern := range testedInt8Kernels(t) {
			q := make([]int8, n)
			s := quantizeRow(kern, x, q)
			if s != float32(mx)/127 || fmt.Sprint(q) != fmt.Sprint(want) {
				t.Errorf("%s n=%d: %v scale %g, want %v scale %g", kern.name, n, q, s, want, float32(mx)/127)
			}
		}
	}
}

// refInt8Forward is a plain forward pass of an int8 model over its stored
// layers: each row quantized as quantizeRow defines it, int64 sums of the
// stored weights, then sum·sx·scale + bias and ReLU.
func refInt8Forward(c *Compact, x []float32, rows int) []float32 {
	in := x[:rows*c.spec.Inputs]
	for li := range c.layers {
		L := &c.layers[li]
		y := make([]float32, rows*L.out)
		for r := range rows {
			xr := in[r*L.in : (r+1)*L.in]
			var mx float64
			for _, v := range xr {
				mx = max(mx, math.Abs(float64(v)))
			}
			q := make([]int64, L.in)
			inv := 1 / (float32(mx) / 127)
			for i, v := range xr {
				if mx > 0 {
					q[i] = int64(math.RoundToEven(float64(v * inv)))
				}
			}
			sx := float32(mx) / 127
			for o := range L.out {
				var s int64
				if L.sparse {
					for k := L.rowPtr[o]; k < L.rowPtr[o+1]; k++ {
						s += int64(L.wq[k]) * q[L.cols[k]]
					}
				} else {
					for i := range L.in {
						s += int64(L.wq[o*L.in+i]) * q[i]
					}
				}
				v := float32(s)*sx*L.scale[o] + L.b[o]
				if li < len(c.layers)-1 && v < 0 {
					v = 0
				}
				y[r*L.out+o] = v
			}
		}
		in = y
	}
	return in
}

// An int8 model's predictor gives exactly the plain forward pass's
// outputs, on every kernel, dense or pruned (the sparse kernel at 97%),
// for batches that do and do not fill the two-row kernel.
func TestInt8PredictorMatchesReference(t *testing.T) {
	m := newMLP(Spec{Inputs: 37, Hidden: []int{100, 64}, Outputs: 10})
	m.init(7)
	rng := rand.New(rand.NewPCG(8, 9))
	x := make([]float32, 65*37)
	for i := range x {
		x[i] = float32(rng.NormFloat64())
	}
	defer func(k int8Kernels) { int8Kernel = k }(int8Kernel)
	for _, frac := range []float64{0, 0.5, 0.97} {
		c, err := m.compress(Compression{Int8: true, PruneFraction: frac})
		if err != nil {
			t.Fatal(err)
		}
		for _, kern := range testedInt8Kernels(t) {
			int8Kernel = kern
			for _, rows := range []int{1, 2, 5, 65} {
				want := refInt8Forward(c, x, rows)
				got := c.NewPredictor(rows).Predict(x, rows)
				for i := range want {
					if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
						t.Fatalf("%s prune %g rows %d: output %d is %g, want %g", kern.name, frac, rows, i, got[i], want[i])
					}
				}
			}
		}
	}
}
