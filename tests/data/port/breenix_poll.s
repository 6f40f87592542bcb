# abi: breenix-legacy
# poll on a pipe: the empty read end is not readable, one byte later it is (POLLIN), and the
# write end is writable (POLLOUT). Breenix: POLL=7 PIPE=22.
.equ FDS, 0x420000
.equ PFD, 0x420010          # struct pollfd {fd, events, revents}
_start:
    mov rax, 22
    mov rdi, FDS
    int 0x80
    test rax, rax
    jnz fail
    mov eax, dword ptr [FDS]
    mov dword ptr [PFD], eax
    mov word ptr [PFD + 4], 1   # POLLIN
    mov rax, 7                  # poll(&pfd, 1, 0): nothing to read yet
    mov rdi, PFD
    mov rsi, 1
    mov rdx, 0
    int 0x80
    test rax, rax
    jnz fail
    mov rax, 1                  # write(fds[1], "x", 1)
    mov edi, dword ptr [FDS + 4]
    lea rsi, [byte_x]
    mov rdx, 1
    int 0x80
    mov rax, 7                  # poll again: readable
    mov rdi, PFD
    mov rsi, 1
    mov rdx, 0
    int 0x80
    cmp rax, 1
    jne fail
    cmp word ptr [PFD + 6], 1
    jne fail
    mov eax, dword ptr [FDS + 4]
    mov dword ptr [PFD], eax
    mov word ptr [PFD + 4], 4   # POLLOUT on the write end
    mov rax, 7
    mov rdi, PFD
    mov rsi, 1
    mov rdx, 0
    int 0x80
    cmp rax, 1
    jne fail
    cmp word ptr [PFD + 6], 4
    jne fail
    mov rax, 1
    mov rdi, 1
    lea rsi, [pass]
    mov rdx, 10
    int 0x80
    mov rax, 0
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
byte_x:
    .ascii "x"
pass:
    .ascii "PASS poll\n"
failed:
    .ascii "FAIL poll\n"
