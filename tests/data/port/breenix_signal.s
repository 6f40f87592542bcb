# abi: breenix-legacy
# A signal handler: sigaction(SIGUSR1) with a restorer, kill(getpid(), SIGUSR1), then check
# that r12 survived the handler (which clobbers it) and that the handler ran (its flag).
# Breenix numbers: SIGACTION=13 SIGRETURN=15 GETPID=39 KILL=62.
.equ ACT, 0x420000          # struct sigaction {handler, flags, restorer, mask}
.equ FLAG, 0x420040
_start:
    lea rax, [handler]
    mov qword ptr [ACT], rax
    mov rax, 0x04000000         # SA_RESTORER
    mov qword ptr [ACT + 8], rax
    lea rax, [restorer]
    mov qword ptr [ACT + 16], rax
    mov qword ptr [ACT + 24], 0
    mov rax, 13                 # sigaction(SIGUSR1, &act, NULL, 8)
    mov rdi, 10
    mov rsi, ACT
    mov rdx, 0
    mov r10, 8
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 39                 # getpid()
    int 0x80
    mov rdi, rax
    mov r12, 0x1122334455667788
    mov r13, r12
    mov rax, 62                 # kill(pid, SIGUSR1): the handler runs before it returns
    mov rsi, 10
    int 0x80
    cmp r12, r13                # the register check: r12 restored after the handler
    jne fail
    test rax, rax
    jnz fail
    cmp byte ptr [FLAG], 1      # the handler ran
    jne fail
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
handler:
    mov byte ptr [FLAG], 1
    mov r12, 0                  # clobbered here; the kernel must restore it at sigreturn
    ret
restorer:
    mov rax, 15                 # rt_sigreturn
    int 0x80
pass:
    .ascii "PASS signal\n"
failed:
    .ascii "FAIL signal\n"
