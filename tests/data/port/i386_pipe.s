# abi: linux-i386
# The pipe round trip through Linux's i386 table from 64-bit code: int 0x80, number in eax,
# arguments in ebx ecx edx (32 bits: buffers below 4 GiB), PIPE=42 WRITE=4 READ=3 CLOSE=6
# EXIT=1.
.equ FDS, 0x420000
.equ BUF, 0x420010
_start:
    mov eax, 42                 # pipe(FDS)
    mov ebx, FDS
    int 0x80
    test eax, eax
    jnz fail
    mov eax, 4                  # write(fds[1], "hello", 5)
    mov ebx, dword ptr [FDS + 4]
    lea ecx, [hello]
    mov edx, 5
    int 0x80
    cmp eax, 5
    jne fail
    mov eax, 3                  # read(fds[0], BUF, 16)
    mov ebx, dword ptr [FDS]
    mov ecx, BUF
    mov edx, 16
    int 0x80
    cmp eax, 5
    jne fail
    mov eax, dword ptr [BUF]
    cmp eax, 0x6c6c6568
    jne fail
    mov eax, 6                  # close both ends
    mov ebx, dword ptr [FDS]
    int 0x80
    mov eax, 6
    mov ebx, dword ptr [FDS + 4]
    int 0x80
    mov eax, 4                  # write(1, "PASS i386 pipe\n", 15)
    mov ebx, 1
    lea ecx, [pass]
    mov edx, 15
    int 0x80
    mov eax, 1                  # exit(0)
    mov ebx, 0
    int 0x80
fail:
    mov eax, 4
    mov ebx, 1
    lea ecx, [failed]
    mov edx, 15
    int 0x80
    mov eax, 1
    mov ebx, 1
    int 0x80
hello:
    .ascii "hello"
pass:
    .ascii "PASS i386 pipe\n"
failed:
    .ascii "FAIL i386 pipe\n"
