# abi: breenix-legacy
# fork and wait: the child writes "hi" into a pipe and exits 7; the parent reads it, waits for
# that child (its pid, as fork returned it) and checks the status. Breenix: FORK=5 WAIT4=61.
.equ FDS, 0x420000
.equ BUF, 0x420010
.equ STATUS, 0x420020
.equ CHILD, 0x420040
_start:
    mov rax, 22                 # pipe(FDS)
    mov rdi, FDS
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 5                  # fork()
    int 0x80
    test rax, rax
    jz child
    js fail
    mov qword ptr [CHILD], rax
    mov rax, 6                  # close(fds[1])
    mov edi, dword ptr [FDS + 4]
    int 0x80
    mov rax, 2                  # read(fds[0], BUF, 8)
    mov edi, dword ptr [FDS]
    mov rsi, BUF
    mov rdx, 8
    int 0x80
    cmp rax, 2
    jne fail
    mov rax, 61                 # wait4(child, &status, 0, NULL)
    mov rsi, CHILD              # (keystone misencodes `mov rdi, qword ptr [abs]`)
    mov rdi, qword ptr [rsi]
    mov rsi, STATUS
    mov rdx, 0
    mov r10, 0
    int 0x80
    cmp rax, qword ptr [CHILD]
    jne fail
    cmp dword ptr [STATUS], 0x700   # exited(7)
    jne fail
    mov rax, 1
    mov rdi, 1
    lea rsi, [pass]
    mov rdx, 10
    int 0x80
    mov rax, 0
    mov rdi, 0
    int 0x80
child:
    mov rax, 1                  # write(fds[1], "hi", 2)
    mov edi, dword ptr [FDS + 4]
    lea rsi, [hi]
    mov rdx, 2
    int 0x80
    mov rax, 0                  # exit(7)
    mov rdi, 7
    int 0x80
fail:
    mov rax, 1
    mov rdi, 1
    lea rsi, [failed]
    mov rdx, 10
    int 0x80
    mov rax, 0
    mov rdi, 1
    int 0x80
hi:
    .ascii "hi"
pass:
    .ascii "PASS fork\n"
failed:
    .ascii "FAIL fork\n"
