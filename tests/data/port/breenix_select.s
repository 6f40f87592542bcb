# abi: breenix-legacy
# select on a pipe with a zero timeout: the empty read end is not ready (0, its bit cleared);
# after a 1-byte write the read end is readable and the write end writable (2, both bits
# kept). Breenix: SELECT=23 PIPE=22. fd_set: 1024 bits in longs (fds < 64: the first long).
.equ FDS, 0x420000
.equ BITS, 0x420008         # the two fds' bits: read end, write end (one long each)
.equ RSET, 0x420020         # fd_set (128 bytes)
.equ WSET, 0x4200a0         # fd_set (128 bytes)
.equ TV, 0x420120           # struct timeval {0, 0}: do not wait
_start:
    mov rax, 22                 # pipe(FDS)
    mov rdi, FDS
    int 0x80
    test rax, rax
    jnz fail
    mov rsi, BITS               # BITS[0] = 1 << fds[0], BITS[1] = 1 << fds[1]
    mov ecx, dword ptr [FDS]
    mov rax, 1
    shl rax, cl
    mov qword ptr [rsi], rax
    mov ecx, dword ptr [FDS + 4]
    mov rax, 1
    shl rax, cl
    mov qword ptr [rsi + 8], rax
    mov rax, qword ptr [rsi]    # FD_SET(fds[0], RSET)
    mov rdi, RSET
    mov qword ptr [rdi], rax
    mov rax, 23                 # select(fds[0] + 1, RSET, NULL, NULL, TV): nothing to read
    mov edi, dword ptr [FDS]
    add edi, 1
    mov rsi, RSET
    mov rdx, 0
    mov r10, 0
    mov r8, TV
    int 0x80
    test rax, rax
    jnz fail
    cmp dword ptr [RSET], 0     # the out set: the read end's bit cleared
    jne fail
    mov rax, 1                  # write(fds[1], "x", 1)
    mov edi, dword ptr [FDS + 4]
    lea rsi, [byte_x]
    mov rdx, 1
    int 0x80
    cmp rax, 1
    jne fail
    mov rsi, BITS               # RSET = {fds[0]}, WSET = {fds[1]}
    mov rax, qword ptr [rsi]
    mov rdi, RSET
    mov qword ptr [rdi], rax
    mov rax, qword ptr [rsi + 8]
    mov rdi, WSET
    mov qword ptr [rdi], rax
    mov rax, 23                 # select(fds[1] + 1, RSET, WSET, NULL, TV): both ready
    mov edi, dword ptr [FDS + 4]
    add edi, 1
    mov rsi, RSET
    mov rdx, WSET
    mov r10, 0
    mov r8, TV
    int 0x80
    cmp rax, 2
    jne fail
    mov eax, dword ptr [RSET]   # both bits kept
    cmp eax, dword ptr [BITS]
    jne fail
    mov eax, dword ptr [WSET]
    cmp eax, dword ptr [BITS + 8]
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
byte_x:
    .ascii "x"
pass:
    .ascii "PASS select\n"
failed:
    .ascii "FAIL select\n"
