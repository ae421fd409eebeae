"""Code validation: every rejection reason, and no input that makes it crash."""

from __future__ import annotations

import random

import pytest
from gexe.runtime import CodeError, limits, validate
from gexe.runtime.ids import blake2b256
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wat import module, syscall_import, wat

from gexe import programs

MEM = '(import "env" "memory" (memory 2))'
HANDLE = '(func (export "handle"))'
GEAR_PROGRAMS = [n for n in programs.names() if n != "bench_kernels"]


def reason(code: bytes) -> str:
    with pytest.raises(CodeError) as e:
        validate(code)
    assert e.value.detail and "\n" not in str(e.value)
    return e.value.reason


def mod(*items: str) -> bytes:
    return wat("(module " + " ".join(items) + ")")


# ---------------------------------------------------------------- accepted code


def test_minimal_program_info():
    code = module(
        handle="(call $gr_size (i32.const 0))",
        init="",
        pages=3,
        stack_end=1,
        data=((0x10000, b"x"),),
    )
    info = validate(code)
    assert info.code_id == blake2b256(code)
    assert (info.size, info.static_pages, info.stack_end) == (len(code), 3, 1)
    assert info.exports == {"init", "handle"}
    assert info.syscalls == {"gr_size"}


@pytest.mark.parametrize("name", GEAR_PROGRAMS)
def test_example_programs_validate(name):
    info = validate(programs.path(name).read_bytes())
    assert info.exports & {"init", "handle"}


def test_bench_kernels_is_not_a_program():
    assert reason(programs.path("bench_kernels").read_bytes()) == "MemoryNotImported"


def test_every_syscall_importable():
    from gexe.runtime.syscalls_abi import SYSCALL_SIGNATURES

    info = validate(mod(MEM, *(syscall_import(n) for n in SYSCALL_SIGNATURES), HANDLE))
    assert info.syscalls == set(SYSCALL_SIGNATURES)


@pytest.mark.parametrize("export", ["handle_reply", "handle_signal", "state", "metahash"])
def test_other_entry_points_tolerated(export):
    validate(mod(MEM, HANDLE, f'(func (export "{export}"))'))


def test_function_table_accepted():
    info = validate(
        mod(
            MEM,
            "(type $v (func)) (table 2 funcref) (elem (i32.const 1) $f) (func $f)",
            '(func (export "handle") (call_indirect (type $v) (i32.const 1)))',
        )
    )
    assert info.exports == {"handle"}


def test_memory_export_tolerated():
    validate(mod('(import "env" "memory" (memory $m 2))', HANDLE, '(export "mem" (memory $m))'))


# ---------------------------------------------------------------- rejections

REJECTED = {
    # not WASM at all
    "empty": (b"", "Validation"),
    "text": (b"hello world", "Validation"),
    "magic only": (b"\0asm", "Validation"),
    "wrong version": (b"\0asm\x02\0\0\0", "Validation"),
    # imports
    "module other than env": (
        mod(MEM, '(import "gear" "gr_size" (func (param i32)))', HANDLE),
        "UnknownImport",
    ),
    "unknown syscall": (mod(MEM, '(import "env" "gr_teleport" (func))', HANDLE), "UnknownImport"),
    "wrong signature": (
        mod(MEM, '(import "env" "gr_size" (func (param i64)))', HANDLE),
        "InvalidImportFnSignature",
    ),
    "wrong result": (
        mod(MEM, '(import "env" "alloc" (func (param i32)))', HANDLE),
        "InvalidImportFnSignature",
    ),
    "duplicate import": (
        mod(
            MEM, syscall_import("gr_size"), '(import "env" "gr_size" (func $x (param i32)))', HANDLE
        ),
        "DuplicateImport",
    ),
    "global import": (mod(MEM, '(import "env" "g" (global i32))', HANDLE), "UnexpectedImportKind"),
    "table import": (
        mod(MEM, '(import "env" "t" (table 1 funcref))', HANDLE),
        "UnexpectedImportKind",
    ),
    "memory under another name": (mod('(import "env" "mem" (memory 2))', HANDLE), "UnknownImport"),
    "memory from another module": (
        mod('(import "js" "memory" (memory 2))', HANDLE),
        "UnknownImport",
    ),
    # memory
    "no memory": (mod(HANDLE), "MemoryNotImported"),
    "own memory": (mod("(memory 2)", HANDLE), "MemoryNotImported"),
    "too many static pages": (
        mod(f'(import "env" "memory" (memory {limits.MAX_PAGES + 1}))', HANDLE),
        "InvalidStaticPageCount",
    ),
    "memory.grow": (module(handle="(drop (memory.grow (i32.const 1)))"), "MemoryGrow"),
    # structure
    "start section": (mod(MEM, HANDLE, "(func $s) (start $s)"), "StartSection"),
    "no entry point": (mod(MEM, '(func (export "handle_reply"))'), "RequiredExportNotFound"),
    "no exports": (mod(MEM, "(func)"), "RequiredExportNotFound"),
    "excess export": (mod(MEM, HANDLE, '(func (export "main"))'), "ExcessExport"),
    "entry with params": (
        mod(MEM, '(func (export "handle") (param i32))'),
        "InvalidExportFnSignature",
    ),
    "entry with result": (
        mod(MEM, '(func (export "init") (result i32) (i32.const 0))', HANDLE),
        "InvalidExportFnSignature",
    ),
    "re-exported syscall": (
        mod(MEM, '(import "env" "gr_leave" (func $l))', '(export "handle" (func $l))'),
        "ExportReferencesToImportFunction",
    ),
    "mutable exported global": (
        mod(MEM, HANDLE, '(global (export "g") (mut i32) (i32.const 0))'),
        "MutableGlobalExport",
    ),
    "mutable stack end": (
        mod(MEM, HANDLE, '(global (export "__gear_stack_end") (mut i32) (i32.const 65536))'),
        "MutableGlobalExport",
    ),
    # stack end
    "stack end misaligned": (
        mod(MEM, HANDLE, '(global (export "__gear_stack_end") i32 (i32.const 65535))'),
        "StackEndNotAligned",
    ),
    "stack end beyond static": (
        mod(MEM, HANDLE, '(global (export "__gear_stack_end") i32 (i32.const 196608))'),
        "StackEndOutOfStatic",
    ),
    "stack end not i32": (
        mod(MEM, HANDLE, '(global (export "__gear_stack_end") i64 (i64.const 65536))'),
        "StackEndInitialization",
    ),
    # data
    "data beyond static": (
        module(handle="", data=((0x1FFFF, b"ab"),)),
        "EndAddressOutOfStaticMemory",
    ),
    "data in the stack": (
        module(handle="", stack_end=1, data=((0xFFFF, b"a"),)),
        "GearStackOverlaps",
    ),
    "too many data segments": (
        module(handle="", data=tuple((i, b"x") for i in range(limits.MAX_DATA_SEGMENTS + 1))),
        "DataSegmentsAmountLimit",
    ),
    # instructions
    "float instruction": (
        module(handle="(drop (f32.add (f32.const 1) (f32.const 2)))"),
        "FloatInstruction",
    ),
    "float conversion": (
        module(handle="(drop (i32.trunc_f64_s (f64.const 1)))"),
        "FloatInstruction",
    ),
    "float local": (mod(MEM, '(func (export "handle") (local f64))'), "FloatInstruction"),
    "float block type": (
        module(handle="(drop (block (result f32) unreachable))"),
        "FloatInstruction",
    ),
    "float if type": (
        module(
            handle="(drop (if (result f64) (i32.const 0) (then unreachable) (else unreachable)))"
        ),
        "FloatInstruction",
    ),
    "float param": (mod(MEM, HANDLE, "(func (param f32))"), "FloatInstruction"),
    "float global": (mod(MEM, HANDLE, "(global f64 (f64.const 0))"), "FloatInstruction"),
    "simd": (
        module(handle="(drop (i32x4.extract_lane 0 (v128.const i32x4 0 0 0 0)))"),
        "Validation",
    ),
    "bulk memory": (
        module(handle="(memory.fill (i32.const 0) (i32.const 0) (i32.const 1))"),
        "Validation",
    ),
    "reference types": (
        mod(
            MEM, "(table 1 funcref)", '(func (export "handle") (drop (table.get 0 (i32.const 0))))'
        ),
        "Validation",
    ),
    "externref table": (mod(MEM, "(table 1 externref)", HANDLE), "Validation"),
    "externref param": (mod(MEM, HANDLE, "(func (param externref))"), "Validation"),
    "funcref local": (mod(MEM, '(func (export "handle") (local funcref))'), "Validation"),
    "externref global": (mod(MEM, HANDLE, "(global externref (ref.null extern))"), "Validation"),
    "funcref block type": (
        module(handle="(drop (block (result funcref) unreachable))"),
        "Validation",
    ),
    "element expressions": (
        mod(
            MEM, "(table 1 funcref) (func $f)", "(elem (i32.const 0) funcref (ref.func $f))", HANDLE
        ),
        "Codec",
    ),
    "element table index": (
        mod(
            MEM, "(table $t 1 funcref) (func $f)", "(elem (table $t) (i32.const 0) func $f)", HANDLE
        ),
        "Codec",
    ),
    "two tables": (mod(MEM, "(table 1 funcref) (table 1 funcref)", HANDLE), "TableLimit"),
    "type error": (mod(MEM, '(func (export "handle") (i32.const 1))'), "Validation"),
}


@pytest.mark.parametrize(("code", "why"), REJECTED.values(), ids=REJECTED.keys())
def test_rejected(code, why):
    assert reason(code) == why


def test_vara_only_syscall_named():
    code = mod(MEM, '(import "env" "gr_reserve_gas" (func (param i64 i32 i32)))', HANDLE)
    with pytest.raises(CodeError) as e:
        validate(code)
    assert e.value.reason == "UnknownImport"
    assert "gr_reserve_gas" in str(e.value) and "Vara.eth" in str(e.value)


def padded(code: bytes, total: int) -> bytes:
    """`code` plus a custom section that makes it exactly `total` bytes long."""
    body = total - len(code) - 1 - 5  # section id, 5-byte LEB128 size
    leb = bytes(((body >> (7 * i)) & 0x7F) | (0x80 if i < 4 else 0) for i in range(5))
    out = code + b"\x00" + leb + b"\x01x" + bytes(body - 2)
    assert len(out) == total
    return out


def test_code_size_limit():
    code = module(handle="")
    # (the limit also applies after instrumentation, which adds a few bytes: stay below)
    assert validate(padded(code, limits.MAX_CODE_SIZE - 1024)).size == limits.MAX_CODE_SIZE - 1024
    assert reason(padded(code, limits.MAX_CODE_SIZE + 1)) == "CodeTooLarge"


@pytest.mark.parametrize("bad", ["text", 42, None])
def test_not_bytes(bad):
    assert reason(bad) == "Validation"


# ---------------------------------------------------------------- garbage never crashes


def _section_ends(code: bytes) -> set[int]:
    """Offsets where a section of `code` ends (every prefix that is a whole module)."""
    ends, pos = {8}, 8
    while pos < len(code):
        pos += 1
        size = shift = 0
        while True:
            b = code[pos]
            pos += 1
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        pos += size
        ends.add(pos)
    return ends


@pytest.mark.parametrize("name", GEAR_PROGRAMS)
def test_truncated_modules(name):
    code = programs.path(name).read_bytes()
    ends = _section_ends(code)
    for n in range(len(code)):
        try:
            validate(code[:n])
        except CodeError:
            continue
        # only a cut between whole sections can leave a valid program (e.g. data dropped)
        assert n in ends, f"{name}[:{n}] validated"


def test_mutated_modules():
    rng = random.Random(20240611)
    originals = [programs.path(n).read_bytes() for n in GEAR_PROGRAMS]
    outcomes = set()
    for _ in range(3000):
        code = bytearray(rng.choice(originals))
        for _ in range(rng.randint(1, 4)):
            pos = rng.randrange(len(code))
            op = rng.random()
            if op < 0.6:
                code[pos] = rng.randrange(256)
            elif op < 0.8:
                del code[pos : pos + rng.randint(1, 8)]
            else:
                code[pos:pos] = rng.randbytes(rng.randint(1, 4))
        try:
            validate(bytes(code))
            outcomes.add("valid")
        except CodeError as e:
            outcomes.add(e.reason)
    assert {"valid", "Validation"} <= outcomes and len(outcomes) > 3


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200), st.booleans())
def test_random_bytes(data, with_header):
    code = (b"\0asm\x01\0\0\0" + data) if with_header else data
    try:
        validate(code)
    except CodeError as e:
        assert e.reason and "\n" not in str(e)
