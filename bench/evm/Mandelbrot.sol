// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Mandelbrot — EVM twin of gexe's benchmark job (a)
/// @notice Sum of escape-iteration counts over a w×h tile of the Mandelbrot set in Q28
///         fixed point, exactly as defined in programs/mandelbrot/README.md (the Gear
///         program `programs/mandelbrot` and the bare kernel in `bench_kernels.wasm` give
///         bit-identical sums). The default job (x0 = -2.0, y0 = -1.5, step = 3/32, 32×32,
///         max_iter = 256) sums to 50314.
/// @dev Arithmetic choices:
///      * The reference works on wrapping signed 64-bit integers. Using `int64` in Solidity
///        would make the compiler re-sign-extend after every operation, so the hot loop uses
///        native `int256` words inside `unchecked` (no overflow checks either).
///      * `int256` gives the same values as wrapping `i64` as long as no intermediate leaves
///        the i64 range. That holds whenever every point c = cr + i·ci of the tile has
///        |cr|, |ci| <= 7.0: the loop only continues while zr²+zi² <= 4 (so |zr|, |zi| <= ~2.24),
///        hence the next |zr|, |zi| <= 4 + |c| + 2^-28 < 11.3 = 2^3.5 and every product
///        zr·zr, zi·zi, zr·zi < 2^63 (Q28 squared is Q56). `run`/`tile` check the corners
///        of the tile against this bound and, outside it (never the case for real jobs),
///        fall back to `_tileWrapping`, a literal i64 version, so the result is
///        bit-identical for every input.
///      * `>>` on a signed integer is an arithmetic shift (rounds toward -inf), as the
///        reference requires; `4 << 28` is the escape radius squared (strictly greater
///        escapes).
///      * The sum is accumulated in a uint256 and returned mod 2^64 like the reference's u64.
contract Mandelbrot {
    uint256 internal constant FRAC = 28;
    int256 internal constant FOUR = 4 << 28; // 4.0 in Q28
    int256 internal constant SAFE_C = 7 << 28; // |c| bound for the int256 fast path

    // The default benchmark job (the Gear program's empty payload).
    int64 public constant DEFAULT_X0 = -536870912; // -2.0
    int64 public constant DEFAULT_Y0 = -402653184; // -1.5
    int64 public constant DEFAULT_STEP = 25165824; // 3.0 / 32
    uint32 public constant DEFAULT_SIZE = 32;
    uint32 public constant DEFAULT_MAX_ITER = 256;

    /// Result of the last `run`/`runDefault` transaction.
    uint64 public lastResult;

    event Result(uint64 sum);

    /// Computes the default job in a transaction, stores and emits the sum.
    function runDefault() external returns (uint64 sum) {
        sum = tile(DEFAULT_X0, DEFAULT_Y0, DEFAULT_STEP, DEFAULT_SIZE, DEFAULT_SIZE, DEFAULT_MAX_ITER);
        lastResult = sum;
        emit Result(sum);
    }

    /// Computes any job in a transaction, stores and emits the sum.
    function run(int64 x0, int64 y0, int64 step, uint32 w, uint32 h, uint32 maxIter)
        external
        returns (uint64 sum)
    {
        sum = tile(x0, y0, step, w, h, maxIter);
        lastResult = sum;
        emit Result(sum);
    }

    /// The default job as a call (for checking the value).
    function viewDefault() external pure returns (uint64) {
        return tile(DEFAULT_X0, DEFAULT_Y0, DEFAULT_STEP, DEFAULT_SIZE, DEFAULT_SIZE, DEFAULT_MAX_ITER);
    }

    /// Sum of escape iterations over the tile (see the contract doc).
    function tile(int64 x0, int64 y0, int64 step, uint32 w, uint32 h, uint32 maxIter)
        public
        pure
        returns (uint64)
    {
        if (w == 0 || h == 0) return 0;
        if (!_safe(x0, step, w) || !_safe(y0, step, h)) {
            return _tileWrapping(x0, y0, step, w, h, maxIter);
        }
        unchecked {
            // Word-sized copies of the parameters: the compiler then needs no
            // sign-extension or masking of the narrow types inside the loops.
            int256 d = step;
            uint256 width = w;
            uint256 height = h;
            uint256 limit = maxIter;
            int256 four = FOUR;
            uint256 sum = 0;
            int256 ci = y0;
            for (uint256 py = 0; py < height; ++py) {
                int256 cr = x0;
                for (uint256 px = 0; px < width; ++px) {
                    int256 zr = 0;
                    int256 zi = 0;
                    uint256 n = 0;
                    for (; n < limit; ++n) {
                        int256 zr2 = (zr * zr) >> FRAC;
                        int256 zi2 = (zi * zi) >> FRAC;
                        if (zr2 + zi2 > four) break; // |z|^2 > 4.0 escapes
                        zi = ((zr * zi) >> (FRAC - 1)) + ci; // 2·zr·zi in Q28
                        zr = zr2 - zi2 + cr;
                    }
                    sum += n;
                    cr += d;
                }
                ci += d;
            }
            return uint64(sum);
        }
    }

    /// True if start and start + (count-1)·step lie within ±7.0 (then so does every
    /// coordinate between them, and the i64 reference never wraps computing them).
    function _safe(int64 start, int64 step, uint32 count) internal pure returns (bool) {
        int256 first = start;
        int256 last = first + int256(step) * int256(uint256(count) - 1);
        return first >= -SAFE_C && first <= SAFE_C && last >= -SAFE_C && last <= SAFE_C;
    }

    /// Literal wrapping-i64 version of the reference, for tiles outside the fast path's
    /// proven range (huge coordinates). Same algorithm, `int64` typed, `unchecked`.
    function _tileWrapping(int64 x0, int64 y0, int64 step, uint32 w, uint32 h, uint32 maxIter)
        internal
        pure
        returns (uint64 sum)
    {
        unchecked {
            int64 ci = y0;
            for (uint32 py = 0; py < h; ++py) {
                int64 cr = x0;
                for (uint32 px = 0; px < w; ++px) {
                    int64 zr = 0;
                    int64 zi = 0;
                    uint32 n = 0;
                    while (n < maxIter) {
                        int64 zr2 = (zr * zr) >> 28;
                        int64 zi2 = (zi * zi) >> 28;
                        if (zr2 + zi2 > int64(FOUR)) break;
                        zi = ((zr * zi) >> 27) + ci;
                        zr = zr2 - zi2 + cr;
                        ++n;
                    }
                    sum += n;
                    cr += step;
                }
                ci += step;
            }
        }
    }
}
