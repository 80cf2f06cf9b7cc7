//! Makes the build's flushes to disk no-ops, like mock's `nosync` option.
//!
//! Everything a build writes lives in its chroot, which is thrown away when
//! the build ends; what is kept (the RPMs) is published by the worker, which
//! syncs it itself, outside the sandbox. So `fsync` and its relatives inside
//! the sandbox buy nothing, and they are not cheap: `rpm -i` syncs its
//! database after every package and the whole filesystem at the end, and on
//! a disk shared with other builds each sync waits for their writes too
//! (about a third of an install's time on an idle machine, more under load).
//!
//! A seccomp filter, installed by PID 1 just before it runs the steps and
//! inherited by everything they start, answers those system calls with
//! success without running them. Unlike an `LD_PRELOAD` library it needs
//! nothing in the root and also covers static binaries. It only matches the
//! native system call ABI: a 32-bit program's syncs still happen (a filter
//! that killed foreign-ABI callers, as filters often do, would break builds
//! that run 32-bit test programs).

use seccompiler::sock_filter;

// Classic BPF opcodes (linux/bpf_common.h) and seccomp_data offsets (linux/seccomp.h).
/// BPF_LD | BPF_W | BPF_ABS.
const BPF_LD_W_ABS: u16 = 0x20;
/// BPF_JMP | BPF_JEQ | BPF_K.
const BPF_JMP_JEQ_K: u16 = 0x15;
/// BPF_RET | BPF_K.
const BPF_RET_K: u16 = 0x06;
const SECCOMP_DATA_NR: u32 = 0;
const SECCOMP_DATA_ARCH: u32 = 4;
const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
/// `SECCOMP_RET_ERRNO` with errno 0: the call returns 0 without running.
const SECCOMP_RET_SUCCEED: u32 = 0x0005_0000;

/// The native system call ABI (`AUDIT_ARCH_*`).
#[cfg(target_arch = "x86_64")]
const NATIVE_AUDIT_ARCH: u32 = 0xc000_003e;
#[cfg(target_arch = "aarch64")]
const NATIVE_AUDIT_ARCH: u32 = 0xc000_00b7;
#[cfg(target_arch = "riscv64")]
const NATIVE_AUDIT_ARCH: u32 = 0xc000_00f3;

/// The system calls that only flush to disk.
fn sync_calls() -> [i64; 5] {
    use nix::libc;
    [
        libc::SYS_fsync,
        libc::SYS_fdatasync,
        libc::SYS_syncfs,
        libc::SYS_sync,
        libc::SYS_sync_file_range,
    ]
}

fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

fn jump_if_equal(k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter {
        code: BPF_JMP_JEQ_K,
        jt,
        jf,
        k,
    }
}

/// The filter: foreign ABI → allow; a sync call → succeed; anything else → allow.
pub fn program() -> Vec<sock_filter> {
    let calls = sync_calls();
    let n = calls.len();
    let mut prog = vec![
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_ARCH),
        // Native: go on; else skip the comparisons to the allow below them.
        jump_if_equal(NATIVE_AUDIT_ARCH, 0, (n + 1) as u8),
        stmt(BPF_LD_W_ABS, SECCOMP_DATA_NR),
    ];
    for (i, nr) in calls.iter().enumerate() {
        // Equal: jump to the succeed return right after the last comparison.
        prog.push(jump_if_equal(*nr as u32, (n - i) as u8, 0));
    }
    prog.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    prog.push(stmt(BPF_RET_K, SECCOMP_RET_SUCCEED));
    prog
}

/// Installs the filter on the calling thread (and so on every process it
/// starts from now on). Sets `no_new_privs`, which a root build never needs.
pub fn disable_sync() -> Result<(), String> {
    seccompiler::apply_filter(&program())
        .map_err(|e| format!("installing the no-sync seccomp filter: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs the program the way the kernel does, on (arch, nr).
    fn verdict(arch: u32, nr: i64) -> u32 {
        let prog = program();
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = &prog[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    acc = if ins.k == SECCOMP_DATA_ARCH {
                        arch
                    } else {
                        nr as u32
                    }
                }
                BPF_JMP_JEQ_K => pc += usize::from(if acc == ins.k { ins.jt } else { ins.jf }),
                BPF_RET_K => return ins.k,
                other => panic!("unexpected opcode {other}"),
            }
            pc += 1;
        }
    }

    #[test]
    fn sync_calls_succeed_without_running_and_the_rest_is_allowed() {
        for nr in sync_calls() {
            assert_eq!(
                verdict(NATIVE_AUDIT_ARCH, nr),
                SECCOMP_RET_SUCCEED,
                "syscall {nr}"
            );
        }
        for nr in [
            nix::libc::SYS_write,
            nix::libc::SYS_openat,
            nix::libc::SYS_msync,
            nix::libc::SYS_close,
        ] {
            assert_eq!(
                verdict(NATIVE_AUDIT_ARCH, nr),
                SECCOMP_RET_ALLOW,
                "syscall {nr}"
            );
        }
    }

    #[test]
    fn other_abis_are_left_alone() {
        const AUDIT_ARCH_I386: u32 = 0x4000_0003;
        for nr in sync_calls() {
            assert_eq!(verdict(AUDIT_ARCH_I386, nr), SECCOMP_RET_ALLOW);
        }
    }
}
