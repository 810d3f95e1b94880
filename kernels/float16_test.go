package kernels

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/x448/float16"
)

// The reference is github.com/x448/float16, an independent, exhaustively
// tested IEEE 754 implementation (round to nearest even).

func TestF16DecodeAll(t *testing.T) {
	for i := range 1 << 16 {
		h := uint16(i)
		got, want := F16ToF32(h), float16.Frombits(h).Float32()
		if math.Float32bits(got) != math.Float32bits(want) && !(got != got && want != want) {
			t.Fatalf("F16ToF32(%#04x) = %v, want %v", h, got, want)
		}
	}
}

func TestF16EncodeMatchesReference(t *testing.T) {
	var all []float32
	check := func(f float32) {
		all = append(all, f)
		got, want := F32ToF16(f), float16.Fromfloat32(f).Bits()
		if f != f { // NaN: any quiet NaN with the sign kept is fine
			if got&0x7c00 != 0x7c00 || got&0x3ff == 0 || got>>15 != want>>15 {
				t.Fatalf("F32ToF16(NaN %#x) = %#04x", math.Float32bits(f), got)
			}
			return
		}
		if got != want {
			t.Fatalf("F32ToF16(%v / %#x) = %#04x, want %#04x", f, math.Float32bits(f), got, want)
		}
	}
	// Every half value, the midpoints between neighbours (ties), and one ulp
	// either side of each midpoint.
	for i := range 1 << 16 {
		f := F16ToF32(uint16(i))
		check(f)
		if i&0x7fff < 0x7c00 {
			next := F16ToF32(uint16(i + 1))
			if next == next && !math.IsInf(float64(next), 0) {
				mid := float32((float64(f) + float64(next)) / 2)
				check(mid)
				check(math.Nextafter32(mid, 0))
				check(math.Nextafter32(mid, float32(math.Inf(1))))
			}
		}
	}
	rng := rand.New(rand.NewPCG(3, 4))
	for range 2_000_000 {
		check(math.Float32frombits(rng.Uint32()))
	}
	for _, f := range []float32{0, float32(math.Copysign(0, -1)), 65504, 65519.99, 65520, 1e-8, -1e-8, 5.96e-8, 2.98e-8, 2.9802322e-08} {
		check(f)
	}
	// EncodeF16 inlines the conversion's fast path: it must agree with
	// F32ToF16 on every value above, bit for bit.
	enc := make([]byte, 2*len(all))
	EncodeF16(enc, all)
	for i, f := range all {
		if got, want := binary.LittleEndian.Uint16(enc[2*i:]), F32ToF16(f); got != want {
			t.Fatalf("EncodeF16(%#x) = %#04x, F32ToF16 gives %#04x", math.Float32bits(f), got, want)
		}
	}
}

func TestBF16(t *testing.T) {
	tests := []struct {
		in   uint32
		want uint16
	}{
		{0x3f800000, 0x3f80},      // 1.0 exact
		{0x3f808000, 0x3f80},      // tie, even stays
		{0x3f818000, 0x3f82},      // tie, odd rounds up
		{0x3f808001, 0x3f81},      // above tie
		{0x7f800000, 0x7f80},      // +inf
		{0x7f800001, 0x7f80 | 64}, // signalling NaN is quieted
		{0xffc00000, 0xffc0},      // -qNaN
		{0x7f7fffff, 0x7f80},      // max float rounds to inf
		{0x80000000, 0x8000},      // -0
	}
	for _, tt := range tests {
		if got := F32ToBF16(math.Float32frombits(tt.in)); got != tt.want {
			t.Errorf("F32ToBF16(%#08x) = %#04x, want %#04x", tt.in, got, tt.want)
		}
	}
	for i := range 1 << 16 {
		f := BF16ToF32(uint16(i))
		if f == f && F32ToBF16(f) != uint16(i) {
			t.Fatalf("bf16 %#04x does not round-trip", i)
		}
	}
}

func TestQ8_0(t *testing.T) {
	// One block by hand: max |x| = 127 → d = 1, q = round(x).
	x := make([]float32, 32)
	for i := range x {
		x[i] = float32(i) - 15.5 // ties at .5 round away from zero
	}
	x[31] = 127
	buf := make([]byte, 34)
	EncodeQ8_0(buf, x)
	if d := F16ToF32(uint16(buf[0]) | uint16(buf[1])<<8); d != 1 {
		t.Fatalf("scale = %v, want 1", d)
	}
	for i := range 31 {
		want := int8(math.Round(float64(x[i])))
		if got := int8(buf[2+i]); got != want {
			t.Errorf("q[%d] = %d, want %d (x=%v)", i, got, want, x[i])
		}
	}
	// Random blocks: the error is at most half a quantization step, plus
	// the f16 rounding of the scale (relative 2^-11) times |q| ≤ 127.
	rng := rand.New(rand.NewPCG(5, 6))
	src := make([]float32, 32*64)
	for i := range src {
		src[i] = float32(rng.NormFloat64())
	}
	enc := make([]byte, 34*64)
	EncodeQ8_0(enc, src)
	dec := make([]float32, len(src))
	DecodeQ8_0(dec, enc)
	for b := range 64 {
		var amax float64
		for _, v := range src[b*32 : b*32+32] {
			amax = math.Max(amax, math.Abs(float64(v)))
		}
		step := amax / 127
		for j := b * 32; j < b*32+32; j++ {
			bound := step*0.5 + 127*step/2048
			if e := math.Abs(float64(dec[j] - src[j])); e > bound*(1+1e-6) {
				t.Fatalf("element %d: error %g exceeds %g", j, e, bound)
			}
		}
	}
	// All-zero block: scale 0, quants 0, no NaN.
	zero := make([]byte, 34)
	EncodeQ8_0(zero, make([]float32, 32))
	DecodeQ8_0(dec[:32], zero)
	for _, v := range dec[:32] {
		if v != 0 {
			t.Fatal("zero block did not decode to zeros")
		}
	}
}
