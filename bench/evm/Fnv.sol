// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.20;

/// @title Fnv — EVM twin of gexe's benchmark job (b)
/// @notice `rounds` rounds of FNV-1a (64-bit) over a 1 KiB buffer, each followed by a
///         xorshift64 (13, 7, 17) and feeding the hash's low byte back into the buffer,
///         exactly as defined in programs/fnv/README.md. The default job is 10,240 rounds
///         (10,485,760 multiply-xor steps) and returns 17666577838568094130.
/// @dev Arithmetic choices:
///      * `h` is a `uint64` and all hash arithmetic sits in `unchecked`, so `*` and `<<`
///        wrap modulo 2^64 like the reference's u64 (the compiler masks to 64 bits where
///        the value is used; `uint64(x * y)` semantics).
///      * The buffer is 1024 bytes held as 32 `uint256` words in memory (byte i is byte
///        i%32 of word i/32, most significant first, the layout `bytes` would have). The
///        inner loop loads each word once and peels its 32 bytes with shifts: the usual way
///        to walk bytes in Solidity without paying `bytes` indexing (bounds check, offset
///        arithmetic, a memory load) for every byte — about 1.5x cheaper than
///        `uint8(buf[i])` over a `bytes memory`.
///      * Two versions of the same loop: `mix` (a plain `for` over the 32 bytes of a word,
///        what most developers write; the benchmark's headline figure) and `mixUnrolled`
///        (the 32 steps written out, about 2x less gas: the loop's own counter, compare
///        and jumps cost as much as the hashing). Both give identical results.
contract Fnv {
    uint64 internal constant OFFSET_BASIS = 0xcbf29ce484222325;
    uint64 internal constant PRIME = 0x00000100000001b3;
    uint32 public constant DEFAULT_ROUNDS = 10_240;

    /// Result of the last `run*` transaction.
    uint64 public lastResult;

    event Result(uint64 h);

    /// Computes the default job in a transaction, stores and emits the hash.
    function runDefault() external returns (uint64 h) {
        h = mix(DEFAULT_ROUNDS);
        lastResult = h;
        emit Result(h);
    }

    /// Computes `rounds` rounds in a transaction, stores and emits the hash.
    function run(uint32 rounds) external returns (uint64 h) {
        h = mix(rounds);
        lastResult = h;
        emit Result(h);
    }

    /// The default job with the unrolled inner loop, in a transaction.
    function runDefaultUnrolled() external returns (uint64 h) {
        h = mixUnrolled(DEFAULT_ROUNDS);
        lastResult = h;
        emit Result(h);
    }

    /// The default job as a call (for checking the value).
    function viewDefault() external pure returns (uint64) {
        return mix(DEFAULT_ROUNDS);
    }

    /// The hash after `rounds` rounds (see the contract doc).
    function mix(uint32 rounds) public pure returns (uint64 h) {
        uint256[32] memory buf = _initialBuffer();
        h = OFFSET_BASIS;
        unchecked {
            for (uint256 r = 0; r < rounds; ++r) {
                // FNV-1a over the 1024 bytes, in order.
                for (uint256 k = 0; k < 32; ++k) {
                    uint256 word = buf[k];
                    for (uint256 shift = 256; shift != 0;) {
                        shift -= 8;
                        h = (h ^ uint64((word >> shift) & 0xff)) * PRIME;
                    }
                }
                h = _xorshift(h);
                _setByte(buf, r & 1023, uint8(h));
            }
        }
    }

    /// Same as `mix`, with the 32 steps over a word written out.
    function mixUnrolled(uint32 rounds) public pure returns (uint64 h) {
        uint256[32] memory buf = _initialBuffer();
        h = OFFSET_BASIS;
        unchecked {
            for (uint256 r = 0; r < rounds; ++r) {
                for (uint256 k = 0; k < 32; ++k) {
                    uint256 word = buf[k];
                    h = (h ^ uint64((word >> 248) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 240) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 232) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 224) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 216) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 208) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 200) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 192) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 184) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 176) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 168) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 160) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 152) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 144) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 136) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 128) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 120) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 112) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 104) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 96) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 88) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 80) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 72) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 64) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 56) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 48) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 40) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 32) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 24) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 16) & 0xff)) * PRIME;
                    h = (h ^ uint64((word >> 8) & 0xff)) * PRIME;
                    h = (h ^ uint64(word & 0xff)) * PRIME;
                }
                h = _xorshift(h);
                _setByte(buf, r & 1023, uint8(h));
            }
        }
    }

    /// buf[i] = i mod 256 for i in 0..1023, packed 32 bytes per word.
    function _initialBuffer() internal pure returns (uint256[32] memory buf) {
        unchecked {
            for (uint256 k = 0; k < 32; ++k) {
                uint256 word = 0;
                uint256 first = (k * 32) & 0xff; // byte value at index 32k
                for (uint256 j = 0; j < 32; ++j) {
                    word = (word << 8) | (first + j);
                }
                buf[k] = word;
            }
        }
    }

    /// xorshift64 (13, 7, 17) with logical shifts, wrapping in 64 bits.
    function _xorshift(uint64 h) internal pure returns (uint64) {
        unchecked {
            h ^= h << 13;
            h ^= h >> 7;
            h ^= h << 17;
            return h;
        }
    }

    /// buf[i] = b (byte i lives in word i/32 at bit offset 8·(31 − i%32)).
    function _setByte(uint256[32] memory buf, uint256 i, uint8 b) internal pure {
        unchecked {
            uint256 pos = (31 - (i & 31)) * 8;
            uint256 k = i >> 5;
            buf[k] = (buf[k] & ~(uint256(0xff) << pos)) | (uint256(b) << pos);
        }
    }
}
