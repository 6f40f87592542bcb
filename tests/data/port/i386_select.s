# abi: linux-i386
# select on a pipe through Linux's i386 table from 64-bit code: _newselect (142) with the
# compat layouts, fd_set in 4-byte longs and an 8-byte timeval {0, 0}. The empty read end is
# not ready (0); after a 1-byte write it is (1, its bit kept). PIPE=42 WRITE=4 EXIT=1.
.equ FDS, 0x420000
.equ BIT, 0x420008          # 1 << fds[0]
.equ RSET, 0x420020         # compat fd_set (128 bytes)
.equ TV, 0x4200a0           # struct old_timeval32 {0, 0}
_start:
    mov eax, 42                 # pipe(FDS)
    mov ebx, FDS
    int 0x80
    test eax, eax
    jnz fail
    mov ecx, dword ptr [FDS]    # BIT = RSET = 1 << fds[0]
    mov eax, 1
    shl eax, cl
    mov dword ptr [BIT], eax
    mov dword ptr [RSET], eax
    mov eax, 142                # _newselect(fds[0] + 1, RSET, NULL, NULL, TV)
    mov ebx, dword ptr [FDS]
    add ebx, 1
    mov ecx, RSET
    mov edx, 0
    mov esi, 0
    mov edi, TV
    int 0x80
    test eax, eax
    jnz fail
    cmp dword ptr [RSET], 0     # the read end's bit cleared
    jne fail
    mov eax, 4                  # write(fds[1], "x", 1)
    mov ebx, dword ptr [FDS + 4]
    lea ecx, [byte_x]
    mov edx, 1
    int 0x80
    cmp eax, 1
    jne fail
    mov eax, dword ptr [BIT]
    mov dword ptr [RSET], eax
    mov eax, 142                # _newselect again: readable
    mov ebx, dword ptr [FDS]
    add ebx, 1
    mov ecx, RSET
    mov edx, 0
    mov esi, 0
    mov edi, TV
    int 0x80
    cmp eax, 1
    jne fail
    mov eax, dword ptr [RSET]
    cmp eax, dword ptr [BIT]
    jne fail
    mov eax, 4                  # write(1, "PASS i386 select\n", 17)
    mov ebx, 1
    lea ecx, [pass]
    mov edx, 17
    int 0x80
    mov eax, 1                  # exit(0)
    mov ebx, 0
    int 0x80
fail:
    mov eax, 4
    mov ebx, 1
    lea ecx, [failed]
    mov edx, 17
    int 0x80
    mov eax, 1
    mov ebx, 1
    int 0x80
byte_x:
    .ascii "x"
pass:
    .ascii "PASS i386 select\n"
failed:
    .ascii "FAIL i386 select\n"
