// Frame inspector, aarch64 Linux (keystone). tests/test_frame_fidelity.py assembles it at
// 0x400078 (after the ELF headers); 0x800000.. is zero-filled data (x20 points there):
//   +0x000 struct sigaction, +0x020 pid, +0x028 sp before kill, +0x030 stack_t,
//   +0x100 the words the handler prints, +0x400 the output line.
// It forks; the child disables its alternate stack, installs an SA_SIGINFO handler for SIGUSR1,
// sets marker values in x19, x29, x30 and v8, and sends itself SIGUSR1 with kill: the handler
// runs on the return from kill and prints one line, "@@frame:" and one 16-digit hex word per
// field (the order is FIELDS in the test), taken from its arguments, its ucontext and its stack.
// The parent waits for it, then calls reboot(POWER_OFF) (a VM's /init powers off; elsewhere the
// call fails or ends the process) and exit_group(0).
_start:
    movz x0, #17                                // clone(SIGCHLD, 0, 0, 0, 0): fork; the child
    movz x1, #0                                 // inspects (a batch's first process, and a
    movz x2, #0                                 // VM's init, are special)
    movz x3, #0
    movz x4, #0
    movz x8, #220
    svc #0
    cbz x0, child
    movn x0, #0                                 // wait4(-1, NULL, 0, NULL)
    movz x1, #0
    movz x2, #0
    movz x3, #0
    movz x8, #260
    svc #0
    movz x0, #0xdead
    movk x0, #0xfee1, lsl #16
    movz x1, #0x1969
    movk x1, #0x2812, lsl #16                   // LINUX_REBOOT_MAGIC2 672274793
    movz x2, #0xfedc
    movk x2, #0x4321, lsl #16                   // LINUX_REBOOT_CMD_POWER_OFF
    movz x3, #0
    movz x8, #142                               // reboot
    svc #0
    movz x0, #0
    movz x8, #94                                // exit_group
    svc #0
child:
    movz x20, #0x0
    movk x20, #0x80, lsl #16
    movz w9, #2                                 // sigaltstack({0, SS_DISABLE, 0}, NULL):
    str w9, [x20, #0x38]                        // uc_stack.ss_flags is then defined (Linux
    add x0, x20, #0x30                          // saves the flags last set, and a process
    movz x1, #0                                 // inherits them even across execve)
    movz x8, #132
    svc #0
    adr x9, handler
    str x9, [x20]
    movz x9, #0x4
    movk x9, #0x400, lsl #16                    // SA_RESTORER | SA_SIGINFO
    str x9, [x20, #8]
    adr x9, restorer
    str x9, [x20, #16]
    movz x0, #10                                // SIGUSR1
    mov x1, x20
    movz x2, #0
    movz x3, #8
    movz x8, #134                               // rt_sigaction
    svc #0
    movz x8, #172                               // getpid
    svc #0
    str x0, [x20, #0x20]
    movz x19, #0x7788                           // callee-saved marker 0x1122334455667788
    movk x19, #0x5566, lsl #16
    movk x19, #0x3344, lsl #32
    movk x19, #0x1122, lsl #48
    movz x9, #0xcdef                            // SIMD marker 0x0123456789abcdef
    movk x9, #0x89ab, lsl #16
    movk x9, #0x4567, lsl #32
    movk x9, #0x0123, lsl #48
    fmov d8, x9
    movz x29, #0x2929                           // frame pointer marker
    movz x30, #0x3030                           // link register marker
    mov x9, sp
    str x9, [x20, #0x28]
    cmp x9, x9                                  // NZCV = Z|C, for the saved pstate to show
    ldr x0, [x20, #0x20]
    movz x1, #10
    movz x8, #129                               // kill(getpid(), SIGUSR1)
    svc #0
after_kill:
    movz x0, #0
    movz x8, #94                                // exit_group
    svc #0

// handler(x0 = signo, x1 = siginfo, x2 = ucontext); ucontext: flags 0, link 8, stack 16,
// sigmask 40, sigcontext 176 (fault_address, regs[31], sp, pc, pstate, __reserved at +288)
handler:
    mov x27, x30                                // the return address, kept across bl
    mov x26, sp
    mov x25, x29
    movz x20, #0x0
    movk x20, #0x80, lsl #16
    add x21, x20, #0x100
    add x22, x2, #176                           // sigcontext
    str x0, [x21, #0]                           // 0 signo
    ldrsw x9, [x1]
    str x9, [x21, #8]                           // 1 si_signo
    ldrsw x9, [x1, #8]
    str x9, [x21, #16]                          // 2 si_code
    ldrsw x9, [x1, #16]
    ldr x10, [x20, #0x20]
    sub x9, x9, x10
    str x9, [x21, #24]                          // 3 si_pid - getpid()
    ldr x9, [x2]
    str x9, [x21, #32]                          // 4 uc_flags
    ldr x9, [x2, #8]
    str x9, [x21, #40]                          // 5 uc_link
    ldr x9, [x2, #16]
    str x9, [x21, #48]                          // 6 uc_stack.ss_sp
    ldrsw x9, [x2, #24]
    str x9, [x21, #56]                          // 7 uc_stack.ss_flags
    ldr x9, [x2, #32]
    str x9, [x21, #64]                          // 8 uc_stack.ss_size
    ldr x9, [x2, #40]
    str x9, [x21, #72]                          // 9 uc_sigmask
    ldr x9, [x22, #264]
    adr x10, after_kill
    sub x9, x9, x10
    str x9, [x21, #80]                          // 10 saved pc - after_kill
    ldr x9, [x22, #256]
    ldr x10, [x20, #0x28]
    sub x9, x9, x10
    str x9, [x21, #88]                          // 11 saved sp - sp before kill
    ldr x9, [x22, #160]
    str x9, [x21, #96]                          // 12 saved x19
    ldr x9, [x22, #8]
    str x9, [x21, #104]                         // 13 saved x0 (kill's result)
    ldr x9, [x22, #240]
    str x9, [x21, #112]                         // 14 saved x29
    ldr x9, [x22, #248]
    str x9, [x21, #120]                         // 15 saved x30
    ldr x9, [x22]
    str x9, [x21, #128]                         // 16 fault_address
    ldr x9, [x22, #272]
    str x9, [x21, #136]                         // 17 pstate
    add x23, x22, #288                          // __reserved: the fpsimd_context first
    ldr w9, [x23]
    str x9, [x21, #144]                         // 18 first record's magic
    ldr w9, [x23, #4]
    str x9, [x21, #152]                         // 19 first record's size
    ldr w9, [x23, #8]
    str x9, [x21, #160]                         // 20 fpsr
    ldr w9, [x23, #12]
    str x9, [x21, #168]                         // 21 fpcr
    ldr x9, [x23, #144]
    str x9, [x21, #176]                         // 22 saved v8, low half
    ldr w10, [x23, #4]
    add x24, x23, x10
    ldr w9, [x24]
    str x9, [x21, #184]                         // 23 the next record's magic
    and x9, x26, #15
    str x9, [x21, #192]                         // 24 sp % 16 at entry
    sub x9, x25, x26
    str x9, [x21, #200]                         // 25 x29 - sp at entry (the frame record)
    ldr x9, [x25]
    str x9, [x21, #208]                         // 26 frame record: fp
    ldr x9, [x25, #8]
    str x9, [x21, #216]                         // 27 frame record: lr
    adr x10, restorer
    sub x9, x27, x10
    str x9, [x21, #224]                         // 28 x30 at entry - restorer
    sub x9, x1, x26
    str x9, [x21, #232]                         // 29 siginfo - sp at entry
    sub x9, x2, x26
    str x9, [x21, #240]                         // 30 ucontext - sp at entry
    movz x11, #31
    bl print
    mov x30, x27
    ret

// print(x11 = words at x20 + 0x100): "@@frame:" then " %016x" per word, "\n", in one write
print:
    add x12, x20, #0x400
    movz x9, #0x4040                            // "@@frame:"
    movk x9, #0x7266, lsl #16
    movk x9, #0x6d61, lsl #32
    movk x9, #0x3a65, lsl #48
    str x9, [x12], #8
    add x13, x20, #0x100
print_word:
    movz w9, #0x20
    strb w9, [x12], #1
    ldr x14, [x13], #8
    movz x15, #60
print_digit:
    lsr x9, x14, x15
    and x9, x9, #15
    add x9, x9, #0x30
    cmp x9, #0x3a
    b.lo print_put
    add x9, x9, #0x27                           // 'a' - '0' - 10
print_put:
    strb w9, [x12], #1
    subs x15, x15, #4
    b.pl print_digit
    subs x11, x11, #1
    b.ne print_word
    movz w9, #10
    strb w9, [x12], #1
    movz x0, #1
    add x1, x20, #0x400
    sub x2, x12, x1
    movz x8, #64                                // write(1, line, length)
    svc #0
    ret

restorer:
    movz x8, #139                               // rt_sigreturn
    svc #0
