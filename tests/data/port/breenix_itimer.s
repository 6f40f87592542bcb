# abi: breenix-legacy
# Interval timers: arm ITIMER_REAL for 2 s, read it back (no more than 2 s left, not zero),
# disarm it (the old value is what was left), read it again (zero).
# Breenix: GETITIMER=36 SETITIMER=38.
.equ NEW, 0x420000          # itimerval {interval sec, usec, value sec, usec}
.equ CUR, 0x420020
.equ OLD, 0x420040
.equ ZERO, 0x420060
_start:
    mov qword ptr [NEW + 16], 2
    mov rax, 38                 # setitimer(ITIMER_REAL, &new, NULL)
    mov rdi, 0
    mov rsi, NEW
    mov rdx, 0
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 36                 # getitimer(ITIMER_REAL, &cur)
    mov rdi, 0
    mov rsi, CUR
    int 0x80
    test rax, rax
    jnz fail
    cmp qword ptr [CUR + 16], 2
    ja fail
    mov rax, qword ptr [CUR + 16]
    or rax, qword ptr [CUR + 24]
    jz fail
    mov rax, 38                 # setitimer(ITIMER_REAL, &zero, &old): disarm
    mov rdi, 0
    mov rsi, ZERO
    mov rdx, OLD
    int 0x80
    test rax, rax
    jnz fail
    mov rax, qword ptr [OLD + 16]
    or rax, qword ptr [OLD + 24]
    jz fail
    mov rax, 36
    mov rdi, 0
    mov rsi, CUR
    int 0x80
    mov rax, qword ptr [CUR + 16]
    or rax, qword ptr [CUR + 24]
    jnz fail
    mov rax, 1
    mov rdi, 1
    lea rsi, [pass]
    mov rdx, 12
    int 0x80
    mov rax, 0
    mov rdi, 0
    int 0x80
fail:
    mov rax, 1
    mov rdi, 1
    lea rsi, [failed]
    mov rdx, 12
    int 0x80
    mov rax, 0
    mov rdi, 1
    int 0x80
pass:
    .ascii "PASS itimer\n"
failed:
    .ascii "FAIL itimer\n"
