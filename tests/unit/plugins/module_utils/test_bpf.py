"""The classic-BPF core: encoding, the kernel-like validator, the interpreter, assembler and disassembler."""
from __future__ import annotations

import pytest

from ansible_collections.agentsec.nemoclaw.plugins.module_utils import _bpf as B
from ansible_collections.agentsec.nemoclaw.plugins.module_utils import seccomp_launcher as L

ALLOW = (L.OP_RET_K, 0, 0, L.SECCOMP_RET_ALLOW)


@pytest.mark.oracle("self")
def test_encode_decode_roundtrip_is_8_bytes_per_instruction():
    prog = [(L.OP_LD_W_ABS, 0, 0, 0), (L.BPF_JMP | L.BPF_JEQ, 0, 1, 41), ALLOW, (L.OP_RET_K, 0, 0, 0x50001)]
    raw = L.encode(prog)
    assert len(raw) == 32
    assert raw[:8] == bytes([0x20, 0, 0, 0, 0, 0, 0, 0])
    assert L.decode(raw) == prog


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("raw", "message"), [
    (b"", "empty"),
    (b"\x06\x00\x00\x00\x00\x00\xff", "not a multiple of 8"),
])
@pytest.mark.oracle("self")
def test_decode_rejects_empty_and_truncated(raw, message):
    with pytest.raises(L.FilterError, match=message):
        L.decode(raw)


@pytest.mark.oracle("self")
@pytest.mark.parametrize(("prog", "message"), [
    ([(L.OP_LD_W_ABS, 0, 0, 2), ALLOW], "4-byte aligned"),
    ([(L.OP_LD_W_ABS, 0, 0, 64), ALLOW], "inside seccomp_data"),
    ([(L.BPF_JMP | L.BPF_JEQ, 5, 0, 1), ALLOW], "past the end"),
    ([(L.BPF_JMP | L.BPF_JA, 0, 0, 3), ALLOW], "past the end"),
    ([(L.OP_LD_W_ABS, 0, 0, 0)], "last instruction must be a return"),
    ([(0x61, 0, 0, 0), ALLOW], "opcode 0x61"),
    ([(L.OP_LD_W_ABS, 1, 0, 0), ALLOW], "jt/jf must be 0"),
    ([ALLOW] * 4097, "1..4096"),
    ([], "1..4096"),
])
@pytest.mark.oracle("self")
def test_validator_enforces_kernel_rules(prog, message):
    with pytest.raises(L.FilterError, match=message):
        L.validate(prog)


@pytest.mark.oracle("self")
def test_validator_accepts_4096_instructions():
    assert L.validate([ALLOW] * 4096)


@pytest.mark.oracle("self")
def test_interpreter_counts_and_compares_unsigned():
    prog = [(L.OP_LD_W_ABS, 0, 0, 16), (L.BPF_JMP | L.BPF_JGE, 0, 1, 0x80000000),
            (L.OP_RET_K, 0, 0, 1), (L.OP_RET_K, 0, 0, 2)]
    assert L.interpret(prog, L.seccomp_data(0, 0, [0xFFFFFFFF])) == (1, 3)
    assert L.interpret(prog, L.seccomp_data(0, 0, [5])) == (2, 3)
    # the high word of args[0] sits at offset 20 on little-endian machines
    assert L.interpret([(L.OP_LD_W_ABS, 0, 0, 20), (L.BPF_JMP | L.BPF_JEQ, 0, 1, 1), (L.OP_RET_K, 0, 0, 9), ALLOW],
                       L.seccomp_data(0, 0, [0x1_00000010])) == (9, 3)


@pytest.mark.oracle("self")
def test_interpreter_and_jset_and_ja():
    prog = [(L.OP_LD_W_ABS, 0, 0, 24), (L.OP_AND_K, 0, 0, 0xF), (L.BPF_JMP | L.BPF_JSET, 0, 1, 8),
            (L.BPF_JMP | L.BPF_JA, 0, 0, 1), ALLOW, (L.OP_RET_K, 0, 0, 3)]
    assert L.interpret(prog, L.seccomp_data(0, 0, [0, 0o4000 | 10]))[0] == 3
    assert L.interpret(prog, L.seccomp_data(0, 0, [0, 2]))[0] == L.SECCOMP_RET_ALLOW


@pytest.mark.oracle("self")
def test_seccomp_data_negative_nr_is_all_ones():
    prog = [(L.OP_LD_W_ABS, 0, 0, 0), (L.BPF_JMP | L.BPF_JEQ, 0, 1, 0xFFFFFFFF), (L.OP_RET_K, 0, 0, 1), ALLOW]
    assert L.interpret(prog, L.seccomp_data(-1, 0))[0] == 1
    assert L.interpret(prog, L.seccomp_data(0xFFFFFFFF, 0))[0] == 1


@pytest.mark.oracle("self")
def test_assembler_resolves_forward_labels_and_rejects_bad_jumps():
    asm = B.Assembler()
    asm.load(0)
    asm.jump("JEQ", 41, "deny", None)
    asm.ret(L.SECCOMP_RET_ALLOW)
    asm.label("deny")
    asm.ret(L.SECCOMP_RET_ERRNO | 1)
    prog = asm.assemble()[0]
    assert prog[1] == (L.BPF_JMP | L.BPF_JEQ, 1, 0, 41)

    bad = B.Assembler()
    bad.jump("JEQ", 1, "nowhere", None)
    bad.ret(0)
    with pytest.raises(L.FilterError, match="undefined label"):
        bad.assemble()

    far = B.Assembler()
    far.jump("JEQ", 1, "end", None)
    for _index in range(300):
        far.ret(0)
    far.label("end")
    far.ret(0)
    with pytest.raises(L.FilterError, match="at most 255"):
        far.assemble()


@pytest.mark.oracle("self")
def test_disassembler_prints_paper_style_lines():
    lines = B.disassemble([(L.OP_LD_W_ABS, 0, 0, 16), (L.BPF_JMP | L.BPF_JEQ, 2, 0, 17), ALLOW, (L.OP_RET_K, 0, 0, 0x50001)])
    assert lines[0] == "[0] BPF_LD_W_ABS offset=16 -- load args[0] low word"
    assert lines[1] == "[1] BPF_JMP_JEQ k=17 jt=2 jf=0"
    assert lines[2] == "[2] BPF_RET k=0x7fff0000 -- ALLOW"
    assert lines[3] == "[3] BPF_RET k=0x00050001 -- ERRNO(EPERM)"


@pytest.mark.oracle("self")
def test_action_names():
    assert L.action_name(L.SECCOMP_RET_KILL_PROCESS) == "KILL_PROCESS"
    assert L.action_name(L.SECCOMP_RET_ERRNO | 13) == "ERRNO(EACCES)"
