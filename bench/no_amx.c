/* no_amx PROGRAM [ARGS...]: runs PROGRAM with Linux's AMX permission request
 * (arch_prctl ARCH_REQ_XCOMP_PERM) refused with EPERM, through a seccomp
 * filter inherited across exec.
 *
 * Why: on this machine the CPU reports AMX but the hypervisor does not grant
 * its tile state, so llama.cpp's AMX kernels die with SIGILL. llama.cpp asks
 * for AMX with that call and, when refused, skips only its AMX buffer type and
 * keeps the rest of its x86 defaults (weight repacking included): exactly
 * llama.cpp's default on an x86 CPU without AMX. bench/compare_llamabench.py
 * runs llama-bench through it. Linux x86-64 only. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#define ARCH_REQ_XCOMP_PERM 0x1023

int main(int argc, char** argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: no_amx PROGRAM [ARGS...]\n");
        return 2;
    }
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_arch_prctl, 0, 3),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, ARCH_REQ_XCOMP_PERM, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {(unsigned short)(sizeof filter / sizeof filter[0]), filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 || prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        perror("no_amx: seccomp");
        return 1;
    }
    execvp(argv[1], argv + 1);
    fprintf(stderr, "no_amx: cannot run %s: ", argv[1]);
    perror("");
    return 127;
}
