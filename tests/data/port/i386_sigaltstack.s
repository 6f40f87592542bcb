# abi: linux-i386
# sigaltstack through the i386 table: the 12-byte compat stack_t {u32 ss_sp, i32 ss_flags,
# u32 ss_size}, SIGALTSTACK=186. Install a SIGSTKSZ stack, query it, print PASS.
.equ SSTK, 0x420000
.equ OLD, 0x420020
.equ ALT, 0x428000
_start:
    mov dword ptr [SSTK], ALT
    mov dword ptr [SSTK + 4], 0
    mov dword ptr [SSTK + 8], 8192
    mov eax, 186
    mov ebx, SSTK
    mov ecx, 0
    int 0x80
    test eax, eax
    jnz fail
    mov eax, 186
    mov ebx, 0
    mov ecx, OLD
    int 0x80
    test eax, eax
    jnz fail
    cmp dword ptr [OLD + 8], 8192
    jne fail
    cmp dword ptr [OLD], ALT
    jne fail
    mov eax, 4
    mov ebx, 1
    lea ecx, [pass]
    mov edx, 22
    int 0x80
    mov eax, 1
    mov ebx, 0
    int 0x80
fail:
    mov eax, 4
    mov ebx, 1
    lea ecx, [failed]
    mov edx, 22
    int 0x80
    mov eax, 1
    mov ebx, 1
    int 0x80
pass:
    .ascii "PASS i386 sigaltstack\n"
failed:
    .ascii "FAIL i386 sigaltstack\n"
