# abi: breenix-legacy
# A pipe round trip, as an old Breenix x86-64 test wrote it: pipe, write "hello", read it
# back, compare, print PASS. int 0x80 with 64-bit registers and Breenix's numbers
# (EXIT=0 WRITE=1 READ=2 CLOSE=6 PIPE=22).
.equ FDS, 0x420000
.equ BUF, 0x420010
_start:
    mov rax, 22                 # pipe(FDS)
    mov rdi, FDS
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 1                  # write(fds[1], "hello", 5)
    mov edi, dword ptr [FDS + 4]
    lea rsi, [hello]
    mov rdx, 5
    int 0x80
    cmp rax, 5
    jne fail
    mov rax, 2                  # read(fds[0], BUF, 16)
    mov edi, dword ptr [FDS]
    mov rsi, BUF
    mov rdx, 16
    int 0x80
    cmp rax, 5
    jne fail
    mov eax, dword ptr [BUF]    # "hell"
    cmp eax, 0x6c6c6568
    jne fail
    mov rax, 6                  # close(fds[0]); close(fds[1])
    mov edi, dword ptr [FDS]
    int 0x80
    mov rax, 6
    mov edi, dword ptr [FDS + 4]
    int 0x80
    mov rax, 1                  # write(1, "PASS pipe\n", 10)
    mov rdi, 1
    lea rsi, [pass]
    mov rdx, 10
    int 0x80
    mov rax, 0                  # exit(0)
    mov rdi, 0
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
hello:
    .ascii "hello"
pass:
    .ascii "PASS pipe\n"
failed:
    .ascii "FAIL pipe\n"
