;; The inner loop of decimating resampling (24 or 16 kHz speech to the phone's
;; 8 kHz), in WebAssembly with 128-bit SIMD: four taps per multiply-add
;; instead of one. `fir-kernel.ts` holds this module compiled (regenerate it
;; with `npm run build:kernel` after editing this file) and the JavaScript
;; that feeds it.
;;
;; Memory layout is the caller's: 16-bit input samples, 32-bit float scratch,
;; float coefficients (their count a multiple of 4, zero-padded) and 16-bit
;; output, each at a byte offset the caller chooses (floats 16-byte aligned).
(module
  (memory (export "memory") 4)

  ;; output[o] = round(clamp(sum over j < taps4 of coef[j] * x[o * step + j]))
  ;; for o < outs, where x is the n input samples as floats followed by four
  ;; zeros (so a zero-padded tap never meets a stale value, NaN × 0 being NaN).
  (func (export "decimate")
    (param $src i32) (param $n i32) (param $scratch i32) (param $coef i32)
    (param $taps4 i32) (param $step i32) (param $dst i32) (param $outs i32)
    (local $i i32) (local $o i32) (local $j i32) (local $p i32) (local $acc v128) (local $sum f32)

    ;; Samples to floats, once each: every one is read by about taps/step outputs.
    (block $converted
      (loop $convert
        (br_if $converted (i32.ge_u (local.get $i) (local.get $n)))
        (f32.store
          (i32.add (local.get $scratch) (i32.shl (local.get $i) (i32.const 2)))
          (f32.convert_i32_s (i32.load16_s (i32.add (local.get $src) (i32.shl (local.get $i) (i32.const 1))))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $convert)))
    (v128.store (i32.add (local.get $scratch) (i32.shl (local.get $n) (i32.const 2))) (v128.const f32x4 0 0 0 0))

    (block $done
      (loop $output
        (br_if $done (i32.ge_u (local.get $o) (local.get $outs)))
        (local.set $acc (v128.const f32x4 0 0 0 0))
        (local.set $p (i32.add (local.get $scratch) (i32.shl (i32.mul (local.get $o) (local.get $step)) (i32.const 2))))
        (local.set $j (i32.const 0))
        (block $summed
          (loop $taps
            (br_if $summed (i32.ge_u (local.get $j) (local.get $taps4)))
            (local.set $acc
              (f32x4.add
                (local.get $acc)
                (f32x4.mul
                  (v128.load (i32.add (local.get $p) (i32.shl (local.get $j) (i32.const 2))))
                  (v128.load (i32.add (local.get $coef) (i32.shl (local.get $j) (i32.const 2)))))))
            (local.set $j (i32.add (local.get $j) (i32.const 4)))
            (br $taps)))
        (local.set $sum
          (f32.add
            (f32.add (f32x4.extract_lane 0 (local.get $acc)) (f32x4.extract_lane 1 (local.get $acc)))
            (f32.add (f32x4.extract_lane 2 (local.get $acc)) (f32x4.extract_lane 3 (local.get $acc)))))
        (i32.store16
          (i32.add (local.get $dst) (i32.shl (local.get $o) (i32.const 1)))
          (i32.trunc_sat_f32_s
            (f32.nearest (f32.min (f32.const 32767) (f32.max (f32.const -32768) (local.get $sum))))))
        (local.set $o (i32.add (local.get $o) (i32.const 1)))
        (br $output))))
)
