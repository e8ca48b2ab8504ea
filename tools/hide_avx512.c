// An LD_PRELOAD library that hides AVX-512 (and AMX) from a process, so that every engine in
// `tools/bench_compare.sh ISA=avx2` picks its AVX2 kernels by itself, the way it would on a
// laptop without AVX-512. Environment caps (ONEDNN_MAX_CPU_ISA, ...) reach only the parts that
// read them: OpenVINO's MLAS GEMMs choose from `cpuid` alone and stay AVX-512 under every cap.
//
// How: Linux's CPUID faulting (arch_prctl ARCH_SET_CPUID; the CPU flag `cpuid_fault` in
// /proc/cpuinfo) makes the `cpuid` instruction raise SIGSEGV in this process. The handler below
// runs the real `cpuid` with faulting briefly off, clears the AVX-512 and AMX feature bits in
// the answer, and steps over the instruction. The flag is kept by threads and forks and reset
// by execve, where this library (still in LD_PRELOAD) sets it again.
//
// The library keeps its handler first: a program that installs its own SIGSEGV handler later
// (through sigaction or signal) gets it called for every fault that is not a `cpuid`.
// glibc reads `cpuid` before any library runs, so its own string functions are steered with
// GLIBC_TUNABLES=glibc.cpu.hwcaps=-AVX512F,... by the caller instead.
//
// Build: gcc -O2 -shared -fPIC -o hide_avx512.so tools/hide_avx512.c -ldl
// Check: LD_PRELOAD=./hide_avx512.so grep -c avx512 /proc/cpuinfo still counts (the kernel's
// view); `LD_PRELOAD=./hide_avx512.so target/release/lantern --version` says avx2.
#define _GNU_SOURCE
#include <cpuid.h>
#include <dlfcn.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#define ARCH_GET_CPUID 0x1011
#define ARCH_SET_CPUID 0x1012

typedef int (*sigaction_fn)(int, const struct sigaction *, struct sigaction *);

// The program's own SIGSEGV disposition, called for faults that are not `cpuid`.
static struct sigaction program_handler = {.sa_handler = SIG_DFL};
static int installed;

static long arch_prctl(int code, unsigned long arg) { return syscall(SYS_arch_prctl, code, arg); }

static sigaction_fn real_sigaction(void) {
  static sigaction_fn real;
  if (!real) real = (sigaction_fn)dlsym(RTLD_NEXT, "sigaction");
  return real;
}

// Feature bits that belong to AVX-512 or AMX, by leaf and subleaf.
static void mask(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b, uint32_t *c, uint32_t *d) {
  if (leaf == 7 && sub == 0) {
    // EBX: F 16, DQ 17, IFMA 21, PF 26, ER 27, CD 28, BW 30, VL 31.
    *b &= ~((1u << 16) | (1u << 17) | (1u << 21) | (1u << 26) | (1u << 27) | (1u << 28) | (1u << 30) |
            (1u << 31));
    // ECX: VBMI 1, VBMI2 6, VNNI 11, BITALG 12, VPOPCNTDQ 14.
    *c &= ~((1u << 1) | (1u << 6) | (1u << 11) | (1u << 12) | (1u << 14));
    // EDX: 4VNNIW 2, 4FMAPS 3, VP2INTERSECT 8, AMX-BF16 22, FP16 23, AMX-TILE 24, AMX-INT8 25.
    *d &= ~((1u << 2) | (1u << 3) | (1u << 8) | (1u << 22) | (1u << 23) | (1u << 24) | (1u << 25));
  } else if (leaf == 7 && sub == 1) {
    // EAX: AVX512_BF16 5, AMX-FP16 21; EDX: AMX-COMPLEX 8, AVX10 19.
    *a &= ~((1u << 5) | (1u << 21));
    *d &= ~((1u << 8) | (1u << 19));
  } else if (leaf == 0xd && sub == 0) {
    // XCR0 bits the CPU supports: opmask 5, ZMM_Hi256 6, Hi16_ZMM 7, AMX 17/18.
    *a &= ~((1u << 5) | (1u << 6) | (1u << 7) | (1u << 17) | (1u << 18));
  } else if (leaf == 0x1d || leaf == 0x1e || leaf == 0x24) {
    *a = *b = *c = *d = 0;  // AMX tile and AVX10 description leaves
  }
  (void)a;
}

static void on_segv(int sig, siginfo_t *info, void *context) {
  ucontext_t *uc = context;
  greg_t *regs = uc->uc_mcontext.gregs;
  const unsigned char *ip = (const unsigned char *)regs[REG_RIP];
  if (info->si_code == SI_KERNEL && ip[0] == 0x0f && ip[1] == 0xa2) {
    uint32_t leaf = (uint32_t)regs[REG_RAX], sub = (uint32_t)regs[REG_RCX];
    uint32_t a, b, c, d;
    arch_prctl(ARCH_SET_CPUID, 1);
    __cpuid_count(leaf, sub, a, b, c, d);
    arch_prctl(ARCH_SET_CPUID, 0);
    mask(leaf, sub, &a, &b, &c, &d);
    regs[REG_RAX] = a;
    regs[REG_RBX] = b;
    regs[REG_RCX] = c;
    regs[REG_RDX] = d;
    regs[REG_RIP] += 2;
    return;
  }
  // Not ours: the program's handler, or the default action (the fault repeats and kills).
  if (program_handler.sa_flags & SA_SIGINFO) {
    if (program_handler.sa_sigaction) {
      program_handler.sa_sigaction(sig, info, context);
      return;
    }
  } else if (program_handler.sa_handler != SIG_DFL && program_handler.sa_handler != SIG_IGN) {
    program_handler.sa_handler(sig);
    return;
  }
  struct sigaction dfl = {.sa_handler = SIG_DFL};
  real_sigaction()(SIGSEGV, &dfl, NULL);
}

// Programs that set SIGSEGV handlers get them recorded behind ours.
int sigaction(int sig, const struct sigaction *act, struct sigaction *old) {
  if (sig != SIGSEGV || !installed) return real_sigaction()(sig, act, old);
  if (old) *old = program_handler;
  if (act) program_handler = *act;
  return 0;
}

sighandler_t signal(int sig, sighandler_t handler) {
  if (sig != SIGSEGV || !installed) {
    static sighandler_t (*real_signal)(int, sighandler_t);
    if (!real_signal) real_signal = (sighandler_t(*)(int, sighandler_t))dlsym(RTLD_NEXT, "signal");
    return real_signal(sig, handler);
  }
  sighandler_t previous = program_handler.sa_handler;
  memset(&program_handler, 0, sizeof program_handler);
  program_handler.sa_handler = handler;
  return previous;
}

__attribute__((constructor)) static void hide_avx512(void) {
  struct sigaction act;
  memset(&act, 0, sizeof act);
  act.sa_sigaction = on_segv;
  // SA_ONSTACK: on a thread's alternate stack where it has one, as the handler it stands
  // in front of (Rust's stack-overflow report) needs.
  act.sa_flags = SA_SIGINFO | SA_NODEFER | SA_ONSTACK;
  sigemptyset(&act.sa_mask);
  if (real_sigaction()(SIGSEGV, &act, &program_handler) != 0 || arch_prctl(ARCH_SET_CPUID, 0) != 0) {
    fprintf(stderr, "hide_avx512: this kernel or CPU has no CPUID faulting; AVX-512 stays visible\n");
    if (getenv("HIDE_AVX512_STRICT")) _exit(97);
    return;
  }
  installed = 1;
}
