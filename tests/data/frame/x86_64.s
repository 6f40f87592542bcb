# Frame inspector, x86-64 Linux (Intel syntax, keystone). tests/test_frame_fidelity.py
# assembles it at 0x400078 (after the ELF headers); 0x800000.. is zero-filled data:
#   0x800000 struct sigaction, 0x800020 pid, 0x800028 rsp before kill, 0x800030 stack_t,
#   0x800100 the words the handler prints, 0x800400 the output line.
# It forks; the child disables its alternate stack, installs an SA_SIGINFO handler for SIGUSR1,
# sets marker values in rbx and xmm8, and sends itself SIGUSR1 with kill: the handler runs on the
# return from kill and prints one line, "@@frame:" and one 16-digit hex word per field (the order
# is FIELDS in the test), taken from its arguments, its ucontext and its stack. The parent waits
# for it, then calls reboot(RESTART) (a VM's /init restarts it, which QEMU's -no-reboot makes an
# exit, with or without ACPI; elsewhere the call fails or ends the process) and exit_group(0).
_start:
    mov eax, 57                                  # fork: the child inspects (a batch's first
    syscall                                      # process, and a VM's init, are special)
    test rax, rax
    jz child
    mov edi, -1
    xor esi, esi
    xor edx, edx
    xor r10d, r10d
    mov eax, 61                                  # wait4(-1, NULL, 0, NULL)
    syscall
    mov edi, 0xfee1dead
    mov esi, 672274793
    mov edx, 0x01234567                          # LINUX_REBOOT_CMD_RESTART
    xor r10d, r10d
    mov eax, 169                                 # reboot
    syscall
    xor edi, edi
    mov eax, 231                                 # exit_group
    syscall
child:
    mov dword ptr [0x800038 + riz*1], 2          # sigaltstack({0, SS_DISABLE, 0}, NULL):
    mov edi, 0x800030                            # uc_stack.ss_flags is then defined (Linux
    xor esi, esi                                 # saves the flags last set, and a process
    mov eax, 131                                 # inherits them even across execve)
    syscall
    lea rax, [rip + handler]
    mov qword ptr [0x800000 + riz*1], rax
    mov rax, 0x04000004                          # SA_RESTORER | SA_SIGINFO
    mov qword ptr [0x800008 + riz*1], rax
    lea rax, [rip + restorer]
    mov qword ptr [0x800010 + riz*1], rax
    mov edi, 10                                  # SIGUSR1
    mov esi, 0x800000
    xor edx, edx
    mov r10d, 8
    mov eax, 13                                  # rt_sigaction
    syscall
    mov eax, 39                                  # getpid
    syscall
    mov qword ptr [0x800020 + riz*1], rax
    mov rbx, 0x1122334455667788                  # callee-saved marker
    mov rax, 0x0123456789abcdef
    movq xmm8, rax                               # SIMD marker
    mov qword ptr [0x800028 + riz*1], rsp
    mov rdi, qword ptr [0x800020 + riz*1]
    mov esi, 10
    mov eax, 62                                  # kill(getpid(), SIGUSR1)
    syscall
after_kill:
    xor edi, edi
    mov eax, 231                                 # exit_group
    syscall

# handler(rdi = signo, rsi = siginfo, rdx = ucontext); ucontext: flags 0, link 8, stack 16,
# sigcontext 40 (r8..r15, rdi, rsi, rbp, rbx, rdx, rax, rcx, rsp, rip, eflags, cs/gs/fs/ss,
# err, trapno, oldmask, cr2, fpstate), sigmask 296
handler:
    mov r15, 0x800100
    lea r14, [rdx + 40]
    mov qword ptr [r15], rdi                     # 0 signo
    movsxd rax, dword ptr [rsi]
    mov qword ptr [r15 + 8], rax                 # 1 si_signo
    movsxd rax, dword ptr [rsi + 8]
    mov qword ptr [r15 + 16], rax                # 2 si_code
    movsxd rax, dword ptr [rsi + 16]
    sub rax, qword ptr [0x800020 + riz*1]
    mov qword ptr [r15 + 24], rax                # 3 si_pid - getpid()
    mov rax, qword ptr [rdx]
    mov qword ptr [r15 + 32], rax                # 4 uc_flags
    mov rax, qword ptr [rdx + 8]
    mov qword ptr [r15 + 40], rax                # 5 uc_link
    mov rax, qword ptr [rdx + 16]
    mov qword ptr [r15 + 48], rax                # 6 uc_stack.ss_sp
    movsxd rax, dword ptr [rdx + 24]
    mov qword ptr [r15 + 56], rax                # 7 uc_stack.ss_flags
    mov rax, qword ptr [rdx + 32]
    mov qword ptr [r15 + 64], rax                # 8 uc_stack.ss_size
    mov rax, qword ptr [rdx + 296]
    mov qword ptr [r15 + 72], rax                # 9 uc_sigmask
    mov rax, qword ptr [r14 + 128]
    lea rcx, [rip + after_kill]
    sub rax, rcx
    mov qword ptr [r15 + 80], rax                # 10 saved rip - after_kill
    mov rax, qword ptr [r14 + 120]
    sub rax, qword ptr [0x800028 + riz*1]
    mov qword ptr [r15 + 88], rax                # 11 saved rsp - rsp before kill
    mov rax, qword ptr [r14 + 88]
    mov qword ptr [r15 + 96], rax                # 12 saved rbx
    mov rax, qword ptr [r14 + 104]
    mov qword ptr [r15 + 104], rax               # 13 saved rax (kill's result)
    mov rax, qword ptr [r14 + 112]
    sub rax, rcx
    mov qword ptr [r15 + 112], rax               # 14 saved rcx - after_kill (syscall's copy)
    mov rax, qword ptr [r14 + 24]
    mov qword ptr [r15 + 120], rax               # 15 saved r11 (syscall's rflags copy)
    mov rax, qword ptr [r14 + 136]
    mov qword ptr [r15 + 128], rax               # 16 saved eflags
    mov rax, qword ptr [r14 + 144]
    mov qword ptr [r15 + 136], rax               # 17 cs, gs, fs, ss
    mov rax, qword ptr [r14 + 152]
    mov qword ptr [r15 + 144], rax               # 18 err
    mov rax, qword ptr [r14 + 160]
    mov qword ptr [r15 + 152], rax               # 19 trapno
    mov rax, qword ptr [r14 + 168]
    mov qword ptr [r15 + 160], rax               # 20 oldmask
    mov rax, qword ptr [r14 + 176]
    mov qword ptr [r15 + 168], rax               # 21 cr2
    mov r13, qword ptr [r14 + 184]
    xor eax, eax
    test r13, r13
    setne al
    mov qword ptr [r15 + 176], rax               # 22 fpstate != NULL
    mov rax, r13
    and eax, 63
    mov qword ptr [r15 + 184], rax               # 23 fpstate % 64
    xor eax, eax
    xor ecx, ecx
    xor edx, edx
    xor r8d, r8d
    test r13, r13
    jz no_fpstate
    mov rax, qword ptr [r13 + 288]               # xmm8, low half (fxsave: xmm0 at 160)
    mov ecx, dword ptr [r13 + 24]                # mxcsr
    movzx edx, word ptr [r13]                    # fcw
    mov r8d, dword ptr [r13 + 464]               # sw_reserved.magic1 (xsave frames)
no_fpstate:
    mov qword ptr [r15 + 192], rax               # 24 saved xmm8 low
    mov qword ptr [r15 + 200], rcx               # 25 saved mxcsr
    mov qword ptr [r15 + 208], rdx               # 26 saved fcw
    mov qword ptr [r15 + 216], r8                # 27 fpstate magic1
    mov rax, rsp
    and eax, 15
    mov qword ptr [r15 + 224], rax               # 28 rsp % 16 at entry
    mov rax, qword ptr [rsp]
    lea rcx, [rip + restorer]
    sub rax, rcx
    mov qword ptr [r15 + 232], rax               # 29 return address - restorer
    mov rax, rsi
    sub rax, rsp
    mov qword ptr [r15 + 240], rax               # 30 siginfo - rsp at entry
    lea rax, [r14 - 40]
    sub rax, rsp
    mov qword ptr [r15 + 248], rax               # 31 ucontext - rsp at entry
    mov ecx, 32
    call print
    ret

# print(ecx = words at 0x800100): "@@frame:" then " %016x" per word, "\n", in one write
print:
    mov rdi, 0x800400
    mov rax, 0x3a656d6172664040                  # "@@frame:"
    mov qword ptr [rdi], rax
    add rdi, 8
    mov rsi, 0x800100
    mov r8d, ecx
print_word:
    mov byte ptr [rdi], 0x20
    inc rdi
    mov rax, qword ptr [rsi]
    mov ecx, 60
print_digit:
    mov rdx, rax
    shr rdx, cl
    and edx, 15
    add edx, 0x30
    cmp edx, 0x3a
    jb print_put
    add edx, 0x27                                # 'a' - '0' - 10
print_put:
    mov byte ptr [rdi], dl
    inc rdi
    sub ecx, 4
    jns print_digit
    add rsi, 8
    dec r8d
    jnz print_word
    mov byte ptr [rdi], 10
    inc rdi
    mov rdx, rdi
    mov rsi, 0x800400
    sub rdx, rsi
    mov edi, 1
    mov eax, 1                                   # write(1, line, length)
    syscall
    ret

restorer:
    mov eax, 15                                  # rt_sigreturn
    syscall
    hlt
