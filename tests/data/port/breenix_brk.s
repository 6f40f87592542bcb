# abi: breenix-legacy
# brk: ask for the program break, grow it by a page, write "hello" into the new memory and
# use that memory for a pipe round trip (the write's source and the read's buffer).
# Breenix: BRK=12 PIPE=22 WRITE=1 READ=2.
.equ FDS, 0x420000
_start:
    mov rax, 12                 # brk(0): the current break
    mov rdi, 0
    int 0x80
    test rax, rax
    jz fail
    mov r12, rax                # r12: the old break, the start of the new memory
    lea rbx, [rax + 4096]
    mov rax, 12                 # brk(old + 4096): one page more
    mov rdi, rbx
    int 0x80
    cmp rax, rbx
    jne fail
    mov dword ptr [r12], 0x6c6c6568     # "hello" in the new page
    mov byte ptr [r12 + 4], 0x6f
    mov rax, 22                 # pipe(FDS)
    mov rdi, FDS
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 1                  # write(fds[1], old break, 5)
    mov edi, dword ptr [FDS + 4]
    mov rsi, r12
    mov rdx, 5
    int 0x80
    cmp rax, 5
    jne fail
    mov rax, 2                  # read(fds[0], old break + 16, 16)
    mov edi, dword ptr [FDS]
    lea rsi, [r12 + 16]
    mov rdx, 16
    int 0x80
    cmp rax, 5
    jne fail
    mov eax, dword ptr [r12 + 16]       # "hell" came back into the new page
    cmp eax, 0x6c6c6568
    jne fail
    mov rax, 1
    mov rdi, 1
    lea rsi, [pass]
    mov rdx, 9
    int 0x80
    mov rax, 0
    mov rdi, 0
    int 0x80
fail:
    mov rax, 1
    mov rdi, 1
    lea rsi, [failed]
    mov rdx, 9
    int 0x80
    mov rax, 0
    mov rdi, 1
    int 0x80
pass:
    .ascii "PASS brk\n"
failed:
    .ascii "FAIL brk\n"
