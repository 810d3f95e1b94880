package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
)

// The assembly loops (simd_amd64.s) against the scalar Go loops they
// replace, bit for bit, over lengths that exercise the 32-wide loop, the
// 8-wide loop and the Go tail, on data full of special values. Without
// AVX2 (or with -tags purego) both sides run Go and the tests check the
// dispatch only.

// testLengths covers every tail of the 8- and 32-element loops and a few
// block-sized lengths.
var testLengths = func() []int {
	var ns []int
	for n := range 70 {
		ns = append(ns, n)
	}
	return append(ns, 1000, 1023, 1024, 1025, 4099)
}()

// specialVec draws normal values and sprinkles ±0, subnormals, huge
// values, infinities and NaNs (quiet and signalling, both signs).
func specialVec(rng *rand.Rand, n int) []float32 {
	specials := []uint32{0, 0x80000000, 1, 0x80000001, 0x007fffff, 0x7f7fffff, 0xff7fffff,
		0x7f800000, 0xff800000, 0x7fc00000, 0xffc00001, 0x7f800001, 0x7fa00000, 0x3f800000, 0x33000000}
	v := make([]float32, n)
	for i := range v {
		switch r := rng.IntN(16); {
		case r == 0:
			v[i] = math.Float32frombits(specials[rng.IntN(len(specials))])
		case r == 1:
			v[i] = math.Float32frombits(rng.Uint32())
		default:
			v[i] = float32(rng.NormFloat64())
		}
	}
	return v
}

// sameBits reports whether a and b are bitwise equal, or both NaN (a NaN's
// payload depends on operand order, which Go leaves to the compiler).
func sameBits(a, b float32) bool {
	return math.Float32bits(a) == math.Float32bits(b) || (a != a && b != b)
}

func checkBits(t *testing.T, name string, n int, got, want []float32) {
	t.Helper()
	for i := range want {
		if !sameBits(got[i], want[i]) {
			t.Fatalf("%s, n=%d: [%d] = %#08x, scalar loop %#08x", name, n, i, math.Float32bits(got[i]), math.Float32bits(want[i]))
		}
	}
}

func TestElementwiseMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(41, 42))
	a, c := float32(0.7), float32(-1.3)
	kernels := []struct {
		name string
		fast func(d, x, y []float32)
		ref  func(d, x, y []float32)
	}{
		{"Axpy", func(d, x, _ []float32) { Axpy(d, x, a) },
			func(d, x, _ []float32) {
				for j := range d {
					d[j] += float32(a * x[j])
				}
			}},
		{"Scale", func(d, x, _ []float32) { Scale(d, x, a) },
			func(d, x, _ []float32) {
				for j := range d {
					d[j] = float32(a * x[j])
				}
			}},
		{"Sub", func(d, x, y []float32) { Sub(d, x, y) },
			func(d, x, y []float32) {
				for j := range d {
					d[j] = x[j] - y[j]
				}
			}},
		{"AxpyDiff", func(d, x, y []float32) { AxpyDiff(d, x, y, a) },
			func(d, x, y []float32) {
				for j := range d {
					d[j] += float32(a * (x[j] - y[j]))
				}
			}},
		{"AddScaled", func(d, x, _ []float32) { AddScaled(d, x, a) },
			func(d, x, _ []float32) {
				for j := range d {
					d[j] = x[j] + float32(a*d[j])
				}
			}},
		{"LinComb2", func(d, x, y []float32) { LinComb2(d, x, y, a, c) },
			func(d, x, y []float32) {
				for j := range d {
					d[j] = float32(a*x[j]) + float32(c*y[j])
				}
			}},
		{"signElect", func(d, x, _ []float32) { signElect(d, x) },
			func(d, x, _ []float32) {
				for j := range d {
					d[j] = -1
					if x[j] >= 0 {
						d[j] = 1
					}
				}
			}},
		{"divNonZero", func(d, x, _ []float32) { divNonZero(d, x) },
			func(d, x, _ []float32) {
				for j := range d {
					q := x[j]
					if q == 0 {
						q = 1
					}
					d[j] /= q
				}
			}},
	}
	for _, k := range kernels {
		for _, n := range testLengths {
			d0, x, y := specialVec(rng, n), specialVec(rng, n), specialVec(rng, n)
			if k.name == "divNonZero" {
				for j := range x {
					if rng.IntN(4) == 0 {
						x[j] = 0
					}
				}
			}
			got, want := append([]float32(nil), d0...), append([]float32(nil), d0...)
			k.fast(got, x, y)
			k.ref(want, x, y)
			checkBits(t, k.name, n, got, want)
		}
	}
}

func TestConsensusAddMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(43, 44))
	for _, n := range testLengths {
		for _, w := range []float32{0.5, -0.25, 0} {
			d0, q0, x := specialVec(rng, n), specialVec(rng, n), specialVec(rng, n)
			el := make([]float32, n)
			for j := range el {
				el[j] = float32(1 - 2*rng.IntN(2))
			}
			d, q := append([]float32(nil), d0...), append([]float32(nil), q0...)
			consensusAdd(d, q, x, el, w)
			for j := range x { // the loop SignConsensus had
				dv := float32(w * x[j])
				in := maskIf(dv*el[j] > 0)
				d0[j] += math.Float32frombits(math.Float32bits(dv) & in)
				q0[j] += math.Float32frombits(math.Float32bits(w) & in)
			}
			checkBits(t, "consensusAdd d", n, d, d0)
			checkBits(t, "consensusAdd q", n, q, q0)
		}
	}
}

func TestNonFinite(t *testing.T) {
	rng := rand.New(rand.NewPCG(45, 46))
	for _, n := range testLengths {
		x := randVec(rng, n, 1)
		if got := NonFinite(x); got != -1 {
			t.Fatalf("n=%d: NonFinite of finite data = %d", n, got)
		}
		for _, bad := range []uint32{0x7f800000, 0xff800000, 0x7fc00000, 0x7f800001} {
			for _, at := range []int{0, n / 2, n - 1} {
				if n == 0 {
					continue
				}
				y := append([]float32(nil), x...)
				y[at] = math.Float32frombits(bad)
				if at > 0 && rng.IntN(2) == 0 { // a second one after the first
					y[n-1] = math.Float32frombits(bad)
				}
				if got := NonFinite(y); got != at {
					t.Fatalf("n=%d: NonFinite with %#08x at %d = %d", n, bad, at, got)
				}
			}
		}
	}
}

func TestKeepRangeMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(47, 48))
	for _, n := range testLengths {
		x := specialVec(rng, n)
		for _, r := range [][2]uint32{{0, maxKey}, {0x3f000000, 0x3f800000}, {0x3f800000, 0x3f000000}, {0, 0}, {0x7f800000, maxKey}, {5, 1 << 31}} {
			got := append([]float32(nil), x...)
			keepRange(got, r[0], r[1])
			for j, v := range x {
				k := magKey(v)
				want := keepIf(v, k >= r[0] && k <= r[1])
				if math.Float32bits(got[j]) != math.Float32bits(want) {
					t.Fatalf("n=%d range %#x: [%d] = %v, want %v", n, r, j, got[j], want)
				}
			}
		}
	}
}

// f16Sweep is every float32 whose low 13 mantissa bits take all values (the
// bits F16 rounding looks at), for every exponent and sign and a few
// high-mantissa patterns: 2·256·8·8192 = 33.5M values.
func f16Sweep(yield func([]float32)) {
	buf := make([]float32, 1<<13)
	for s := range uint32(2) {
		for e := range uint32(256) {
			for _, hi := range []uint32{0, 1, 0x155, 0x2aa, 0x3fe, 0x3ff, 0x200, 0x1ff} {
				base := s<<31 | e<<23 | hi<<13
				for lo := range uint32(1 << 13) {
					buf[lo] = math.Float32frombits(base | lo)
				}
				yield(buf)
			}
		}
	}
}

func TestF16CodecMatchesScalar(t *testing.T) {
	// Decoding: every half value, through the vector loop.
	all := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(all[2*i:], uint16(i))
	}
	got, want := make([]float32, 1<<16), make([]float32, 1<<16)
	DecodeF16(got, all)
	decodeF16Go(want, all)
	for i := range want {
		if math.Float32bits(got[i]) != math.Float32bits(want[i]) {
			t.Fatalf("DecodeF16(%#04x) = %#08x, table %#08x", i, math.Float32bits(got[i]), math.Float32bits(want[i]))
		}
	}
	// Encoding: the sweep, and random bits.
	h1, h2 := make([]byte, 2<<13), make([]byte, 2<<13)
	check := func(f []float32) {
		EncodeF16(h1[:2*len(f)], f)
		encodeF16Go(h2[:2*len(f)], f)
		for i := range f {
			if a, b := binary.LittleEndian.Uint16(h1[2*i:]), binary.LittleEndian.Uint16(h2[2*i:]); a != b {
				t.Fatalf("EncodeF16(%#08x) = %#04x, scalar %#04x", math.Float32bits(f[i]), a, b)
			}
		}
	}
	f16Sweep(check)
	rng := rand.New(rand.NewPCG(49, 50))
	for _, n := range testLengths {
		if n <= 1<<13 {
			check(specialVec(rng, n))
		}
	}
}

func TestBF16CodecMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(51, 52))
	// Every bf16 pattern decodes alike; encoding sees every low half-word
	// under a spread of high half-words.
	all := make([]byte, 2<<16)
	for i := range 1 << 16 {
		binary.LittleEndian.PutUint16(all[2*i:], uint16(i))
	}
	got, want := make([]float32, 1<<16), make([]float32, 1<<16)
	DecodeBF16(got, all)
	decodeBF16Go(want, all)
	checkBits(t, "DecodeBF16", 1<<16, got, want)
	f := make([]float32, 1<<16)
	h1, h2 := make([]byte, 2<<16), make([]byte, 2<<16)
	for _, hi := range []uint32{0x0000, 0x0001, 0x3f80, 0x3f81, 0x7f7f, 0x7f80, 0x7fc0, 0x8000, 0xbf80, 0xff7f, 0xff80, 0xffff} {
		for lo := range uint32(1 << 16) {
			f[lo] = math.Float32frombits(hi<<16 | lo)
		}
		EncodeBF16(h1, f)
		encodeBF16Go(h2, f)
		for i := range f {
			if a, b := binary.LittleEndian.Uint16(h1[2*i:]), binary.LittleEndian.Uint16(h2[2*i:]); a != b {
				t.Fatalf("EncodeBF16(%#08x) = %#04x, scalar %#04x", math.Float32bits(f[i]), a, b)
			}
		}
	}
	for _, n := range testLengths {
		x := specialVec(rng, n)
		a, b := make([]byte, 2*n), make([]byte, 2*n)
		EncodeBF16(a, x)
		encodeBF16Go(b, x)
		if string(a) != string(b) {
			t.Fatalf("EncodeBF16, n=%d: differs from the scalar loop", n)
		}
	}
}

// q8Blocks draws blocks of every kind EncodeQ8_0 meets: normal weights at
// many scales, exact ties after scaling, zeros, tiny and subnormal blocks,
// and blocks holding an infinity or NaN.
func q8Blocks(rng *rand.Rand, nb int) []float32 {
	x := make([]float32, 32*nb)
	for b := range nb {
		blk := x[32*b : 32*b+32]
		scale := math.Pow(2, float64(rng.IntN(60)-40))
		switch rng.IntN(10) {
		case 0: // ties: amax 127 gives d = 1, and x.5 values
			for j := range blk {
				blk[j] = float32(rng.IntN(255)-127) + 0.5*float32(rng.IntN(2))
			}
			blk[rng.IntN(32)] = 127
		case 1: // zeros, with a −0
			clear(blk)
			blk[3] = float32(math.Copysign(0, -1))
		case 2: // tiny and subnormal
			for j := range blk {
				blk[j] = math.Float32frombits(rng.Uint32N(0x01000000)) * float32(1-2*rng.IntN(2))
			}
		case 3: // one special value
			for j := range blk {
				blk[j] = float32(rng.NormFloat64() * scale)
			}
			blk[rng.IntN(32)] = []float32{float32(math.Inf(1)), float32(math.Inf(-1)), float32(math.NaN())}[rng.IntN(3)]
		default:
			for j := range blk {
				blk[j] = float32(rng.NormFloat64() * scale)
			}
		}
	}
	return x
}

func TestQ8_0CodecMatchesScalar(t *testing.T) {
	rng := rand.New(rand.NewPCG(53, 54))
	for _, nb := range []int{1, 2, 3, 7, 64, 1000} {
		x := q8Blocks(rng, nb)
		a, b := make([]byte, 34*nb), make([]byte, 34*nb)
		EncodeQ8_0(a, x)
		encodeQ8_0Go(b, x)
		for i := range a {
			if a[i] != b[i] {
				blk := i / 34
				t.Fatalf("EncodeQ8_0, block %d byte %d: %#02x, scalar %#02x (block %v)", blk, i%34, a[i], b[i], x[32*blk:32*blk+32])
			}
		}
		// Decoding, of these blocks and of random bytes (any scale: NaN,
		// infinities, subnormals).
		raw := make([]byte, 34*nb)
		for i := range raw {
			raw[i] = byte(rng.Uint32())
		}
		for _, src := range [][]byte{a, raw} {
			got, want := make([]float32, 32*nb), make([]float32, 32*nb)
			DecodeQ8_0(got, src)
			decodeQ8_0Go(want, src)
			checkBits(t, "DecodeQ8_0", nb, got, want)
		}
	}
}

func FuzzF16Encode(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x7f, 1, 0, 0x80, 0x33})
	f.Fuzz(func(t *testing.T, raw []byte) {
		x := make([]float32, len(raw)/4)
		DecodeF32(x, raw[:4*len(x)])
		a, b := make([]byte, 2*len(x)), make([]byte, 2*len(x))
		EncodeF16(a, x)
		encodeF16Go(b, x)
		if string(a) != string(b) {
			t.Fatalf("EncodeF16 differs from the scalar loop on %v", x)
		}
		EncodeBF16(a, x)
		encodeBF16Go(b, x)
		if string(a) != string(b) {
			t.Fatalf("EncodeBF16 differs from the scalar loop on %v", x)
		}
	})
}

func FuzzQ8_0Encode(f *testing.F) {
	f.Add([]byte{0, 0, 0x80, 0x3f}, uint8(3))
	f.Fuzz(func(t *testing.T, raw []byte, scale uint8) {
		// Blocks whose values are raw bytes scaled by 2^(scale-140).
		nb := (len(raw) + 31) / 32
		x := make([]float32, 32*nb)
		s := float32(math.Ldexp(1, int(scale)-140))
		for i, c := range raw {
			x[i] = float32(int8(c)) * s
		}
		a, b := make([]byte, 34*nb), make([]byte, 34*nb)
		EncodeQ8_0(a, x)
		encodeQ8_0Go(b, x)
		if string(a) != string(b) {
			t.Fatalf("EncodeQ8_0 differs from the scalar loop on %v", x)
		}
	})
}
