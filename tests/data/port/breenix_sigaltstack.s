# abi: breenix-legacy
# sigaltstack set and query: a stack below MINSIGSTKSZ fails with ENOMEM, a SIGSTKSZ one is
# installed and reported back, then disabled. Breenix: SIGALTSTACK=131.
.equ SSTK, 0x420000           # stack_t {ss_sp, ss_flags (+pad), ss_size}
.equ OLD, 0x420020
.equ ALT, 0x428000          # the alternate stack (8192 bytes)
_start:
    mov rax, ALT
    mov qword ptr [SSTK], rax
    mov dword ptr [SSTK + 8], 0
    mov qword ptr [SSTK + 16], 2047   # MINSIGSTKSZ - 1
    mov rax, 131
    mov rdi, SSTK
    mov rsi, 0
    int 0x80
    cmp rax, -12                # ENOMEM
    jne fail
    mov qword ptr [SSTK + 16], 8192   # SIGSTKSZ
    mov rax, 131
    mov rdi, SSTK
    mov rsi, 0
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 131                # query
    mov rdi, 0
    mov rsi, OLD
    int 0x80
    test rax, rax
    jnz fail
    cmp qword ptr [OLD + 16], 8192
    jne fail
    cmp dword ptr [OLD + 8], 0
    jne fail
    cmp qword ptr [OLD], ALT
    jne fail
    mov dword ptr [SSTK + 8], 2   # SS_DISABLE
    mov rax, 131
    mov rdi, SSTK
    mov rsi, 0
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 131
    mov rdi, 0
    mov rsi, OLD
    int 0x80
    cmp dword ptr [OLD + 8], 2
    jne fail
    mov rax, 1
    mov rdi, 1
    lea rsi, [pass]
    mov rdx, 17
    int 0x80
    mov rax, 0
    mov rdi, 0
    int 0x80
fail:
    mov rax, 1
    mov rdi, 1
    lea rsi, [failed]
    mov rdx, 17
    int 0x80
    mov rax, 0
    mov rdi, 1
    int 0x80
pass:
    .ascii "PASS sigaltstack\n"
failed:
    .ascii "FAIL sigaltstack\n"
