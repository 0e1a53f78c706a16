//go:build !purego

#include "textflag.h"

// Both kernels walk blocks of packed weights (see packInt8): per block,
// k/16 steps of 16 activations and 4×16 weights, then a horizontal sum of
// each unit's eight int32 lanes. The caller checks the arguments.

// func int8Dot1x4AVX2(x, w *int8, k, blocks int, y *int32)
TEXT ·int8Dot1x4AVX2(SB), NOSPLIT, $0-40
	MOVQ x+0(FP), SI
	MOVQ w+8(FP), DX
	MOVQ k+16(FP), CX
	MOVQ blocks+24(FP), BX
	MOVQ y+32(FP), DI
	SHRQ $4, CX
	JZ   done1
	TESTQ BX, BX
	JZ   done1

block1:
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	MOVQ SI, R8
	MOVQ CX, R9

step1:
	VPMOVSXBW (R8), Y0
	VPMOVSXBW (DX), Y1
	VPMOVSXBW 16(DX), Y2
	VPMOVSXBW 32(DX), Y3
	VPMOVSXBW 48(DX), Y4
	VPMADDWD Y1, Y0, Y1
	VPMADDWD Y2, Y0, Y2
	VPMADDWD Y3, Y0, Y3
	VPMADDWD Y4, Y0, Y4
	VPADDD Y1, Y8, Y8
	VPADDD Y2, Y9, Y9
	VPADDD Y3, Y10, Y10
	VPADDD Y4, Y11, Y11
	ADDQ $16, R8
	ADDQ $64, DX
	DECQ R9
	JNZ  step1

	VPHADDD Y9, Y8, Y8
	VPHADDD Y11, Y10, Y10
	VPHADDD Y10, Y8, Y8
	VEXTRACTI128 $1, Y8, X12
	VPADDD X12, X8, X8
	VMOVDQU X8, (DI)
	ADDQ $16, DI
	DECQ BX
	JNZ  block1

done1:
	VZEROUPPER
	RET

// func int8Dot2x4AVX2(x0, x1, w *int8, k, blocks int, y0, y1 *int32)
TEXT ·int8Dot2x4AVX2(SB), NOSPLIT, $0-56
	MOVQ x0+0(FP), SI
	MOVQ x1+8(FP), R10
	MOVQ w+16(FP), DX
	MOVQ k+24(FP), CX
	MOVQ blocks+32(FP), BX
	MOVQ y0+40(FP), DI
	MOVQ y1+48(FP), R11
	SHRQ $4, CX
	JZ   done2
	TESTQ BX, BX
	JZ   done2

block2:
	VPXOR Y8, Y8, Y8
	VPXOR Y9, Y9, Y9
	VPXOR Y10, Y10, Y10
	VPXOR Y11, Y11, Y11
	VPXOR Y12, Y12, Y12
	VPXOR Y13, Y13, Y13
	VPXOR Y14, Y14, Y14
	VPXOR Y15, Y15, Y15
	MOVQ SI, R8
	MOVQ R10, R12
	MOVQ CX, R9

step2:
	VPMOVSXBW (R8), Y0
	VPMOVSXBW (R12), Y1
	VPMOVSXBW (DX), Y2
	VPMOVSXBW 16(DX), Y3
	VPMADDWD Y2, Y0, Y4
	VPMADDWD Y2, Y1, Y5
	VPMADDWD Y3, Y0, Y6
	VPMADDWD Y3, Y1, Y7
	VPADDD Y4, Y8, Y8
	VPADDD Y5, Y12, Y12
	VPADDD Y6, Y9, Y9
	VPADDD Y7, Y13, Y13
	VPMOVSXBW 32(DX), Y2
	VPMOVSXBW 48(DX), Y3
	VPMADDWD Y2, Y0, Y4
	VPMADDWD Y2, Y1, Y5
	VPMADDWD Y3, Y0, Y6
	VPMADDWD Y3, Y1, Y7
	VPADDD Y4, Y10, Y10
	VPADDD Y5, Y14, Y14
	VPADDD Y6, Y11, Y11
	VPADDD Y7, Y15, Y15
	ADDQ $16, R8
	ADDQ $16, R12
	ADDQ $64, DX
	DECQ R9
	JNZ  step2

	VPHADDD Y9, Y8, Y8
	VPHADDD Y11, Y10, Y10
	VPHADDD Y10, Y8, Y8
	VEXTRACTI128 $1, Y8, X0
	VPADDD X0, X8, X8
	VMOVDQU X8, (DI)
	VPHADDD Y13, Y12, Y12
	VPHADDD Y15, Y14, Y14
	VPHADDD Y14, Y12, Y12
	VEXTRACTI128 $1, Y12, X1
	VPADDD X1, X12, X12
	VMOVDQU X12, (R11)
	ADDQ $16, DI
	ADDQ $16, R11
	DECQ BX
	JNZ  block2

done2:
	VZEROUPPER
	RET

// func maxAbsBitsAVX2(x *float32, n int) uint32
// The largest |x[i]| as float32 bits, for n a positive multiple of 8. Bits
// of non-negative floats order as the floats do, and NaN's above
// infinity's, so an integer maximum finds them.
TEXT ·maxAbsBitsAVX2(SB), NOSPLIT, $0-20
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	SHRQ $3, CX
	VPXOR Y0, Y0, Y0
	MOVL $0x7fffffff, AX
	VMOVD AX, X1
	VPBROADCASTD X1, Y1
	TESTQ CX, CX
	JZ   maxdone

maxloop:
	VPAND (SI), Y1, Y2
	VPMAXSD Y2, Y0, Y0
	ADDQ $32, SI
	DECQ CX
	JNZ  maxloop

maxdone:
	VEXTRACTI128 $1, Y0, X2
	VPMAXSD X2, X0, X0
	VPSHUFD $0x4e, X0, X2
	VPMAXSD X2, X0, X0
	VPSHUFD $0xb1, X0, X2
	VPMAXSD X2, X0, X0
	VMOVD X0, AX
	MOVL AX, ret+16(FP)
	VZEROUPPER
	RET

// func quantizeAVX2(x *float32, n int, inv float32, q *int8)
// q[i] = x[i]·inv in float32, rounded half to even (the default MXCSR
// mode), for n a positive multiple of 8 and |x[i]·inv| < 127.5.
TEXT ·quantizeAVX2(SB), NOSPLIT, $0-32
	MOVQ x+0(FP), SI
	MOVQ n+8(FP), CX
	VBROADCASTSS inv+16(FP), Y1
	MOVQ q+24(FP), DI
	SHRQ $3, CX
	JZ   qdone

qloop:
	VMULPS (SI), Y1, Y0
	VCVTPS2DQ Y0, Y0
	VEXTRACTI128 $1, Y0, X2
	VPACKSSDW X2, X0, X0
	VPACKSSWB X0, X0, X0
	VMOVQ X0, (DI)
	ADDQ $32, SI
	ADDQ $8, DI
	DECQ CX
	JNZ  qloop

qdone:
	VZEROUPPER
	RET
