//! PID 1 of a build sandbox (the `dbuild-sandbox` executable): prepares the
//! chroot with direct system calls (no helper processes, which made up most
//! of a sandbox's start-up time), then runs the plan's steps in order.

use super::{Go, Plan, Status, Step, Then, ROOT_ENV_FILE, STEP_ENV};
use crate::mounts::{Bind, RootLayout};
use nix::mount::{mount, umount2, MntFlags, MsFlags};
use nix::sys::stat::{makedev, mknod, umask, Mode, SFlag};
use std::io::Write;
use std::os::fd::AsFd;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::time::Instant;

/// Exit code when the sandbox itself could not be set up.
pub const SETUP_FAILED: i32 = 125;

fn err(what: &str, path: &Path, e: impl std::fmt::Display) -> String {
    format!("{what} {}: {e}", path.display())
}

fn mount_fs(fstype: &str, target: &Path, flags: MsFlags, data: &str) -> Result<(), String> {
    mount(Some(fstype), target, Some(fstype), flags, Some(data))
        .map_err(|e| err(&format!("mounting {fstype} on"), target, e))
}

/// The device nodes of a minimal /dev: (name, major, minor).
const DEVICES: &[(&str, u64, u64)] = &[
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

fn make_dev(root: &Path) -> Result<(), String> {
    let dev = root.join("dev");
    mount_fs("tmpfs", &dev, MsFlags::MS_NOSUID, "mode=755,size=16m")?;
    for (name, major, minor) in DEVICES {
        let p = dev.join(name);
        mknod(
            &p,
            SFlag::S_IFCHR,
            Mode::from_bits_truncate(0o666),
            makedev(*major, *minor),
        )
        .map_err(|e| err("mknod", &p, e))?;
    }
    for d in ["pts", "shm"] {
        std::fs::create_dir(dev.join(d)).map_err(|e| err("mkdir", &dev.join(d), e))?;
    }
    mount_fs(
        "devpts",
        &dev.join("pts"),
        MsFlags::empty(),
        "newinstance,ptmxmode=0666,mode=0620",
    )?;
    mount_fs(
        "tmpfs",
        &dev.join("shm"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    for (link, to) in [
        ("ptmx", "pts/ptmx"),
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(link))
            .map_err(|e| err("symlink", &dev.join(link), e))?;
    }
    Ok(())
}

fn bind(root: &Path, b: &Bind) -> Result<(), String> {
    let target = root.join(b.target.trim_start_matches('/'));
    std::fs::create_dir_all(&target).map_err(|e| err("mkdir", &target, e))?;
    mount(
        Some(&b.host),
        &target,
        None::<&str>,
        MsFlags::MS_BIND | MsFlags::MS_REC,
        None::<&str>,
    )
    .map_err(|e| {
        err(
            &format!("bind-mounting {} on", b.host.display()),
            &target,
            e,
        )
    })?;
    if b.read_only {
        let flags = MsFlags::MS_BIND | MsFlags::MS_REMOUNT | MsFlags::MS_RDONLY;
        mount(None::<&str>, &target, None::<&str>, flags, None::<&str>)
            .map_err(|e| err("remounting read-only", &target, e))?;
    }
    Ok(())
}

/// Brings up loopback (always interface 1) in the fresh network namespace:
/// one rtnetlink `RTM_NEWLINK` request with `IFF_UP`, answered by an ack.
fn loopback_up() -> Result<(), String> {
    use nix::sys::socket::{
        recv, sendto, socket, AddressFamily, MsgFlags, NetlinkAddr, SockFlag, SockProtocol,
        SockType,
    };
    use std::os::fd::AsRawFd;
    const RTM_NEWLINK: u16 = 16;
    const NLM_F_REQUEST_ACK: u16 = 0x1 | 0x4;
    const NLMSG_ERROR: u16 = 2;
    const LOOPBACK_INDEX: i32 = 1;
    const IFF_UP: u32 = 1;
    let fail = |what: &str, e: nix::Error| format!("bringing up loopback: {what}: {e}");
    let sock = socket(
        AddressFamily::Netlink,
        SockType::Raw,
        SockFlag::SOCK_CLOEXEC,
        SockProtocol::NetlinkRoute,
    )
    .map_err(|e| fail("socket", e))?;
    // struct nlmsghdr (16 bytes) + struct ifinfomsg (16 bytes), native endian.
    let mut msg = Vec::with_capacity(32);
    msg.extend_from_slice(&32u32.to_ne_bytes());
    msg.extend_from_slice(&RTM_NEWLINK.to_ne_bytes());
    msg.extend_from_slice(&NLM_F_REQUEST_ACK.to_ne_bytes());
    msg.extend_from_slice(&1u32.to_ne_bytes()); // sequence
    msg.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel
    msg.extend_from_slice(&[0, 0, 0, 0]); // family AF_UNSPEC, padding, device type
    msg.extend_from_slice(&LOOPBACK_INDEX.to_ne_bytes());
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // flags
    msg.extend_from_slice(&IFF_UP.to_ne_bytes()); // change mask
    sendto(
        sock.as_raw_fd(),
        &msg,
        &NetlinkAddr::new(0, 0),
        MsgFlags::empty(),
    )
    .map_err(|e| fail("send", e))?;
    let mut reply = [0u8; 1024];
    let n =
        recv(sock.as_raw_fd(), &mut reply, MsgFlags::empty()).map_err(|e| fail("receive", e))?;
    let field = |at: usize, len: usize| reply.get(at..at + len).filter(|_| at + len <= n);
    let kind = field(4, 2).map(|b| u16::from_ne_bytes([b[0], b[1]]));
    let error = field(16, 4).map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]));
    match (kind, error) {
        (Some(NLMSG_ERROR), Some(0)) => Ok(()),
        (Some(NLMSG_ERROR), Some(code)) => Err(fail("kernel answer", nix::Error::from_raw(-code))),
        _ => Err(format!(
            "bringing up loopback: unexpected answer of {n} bytes"
        )),
    }
}

/// Mounts what every build needs (not yet the chroot).
fn prepare(plan: &Plan) -> Result<(), String> {
    umask(Mode::from_bits_truncate(0o022));
    let root = plan.root.as_path();
    if let RootLayout::Overlay { lower, upper, work } = &plan.layout {
        let data = format!(
            "lowerdir={},upperdir={},workdir={}",
            lower.display(),
            upper.display(),
            work.display()
        );
        mount_fs("overlay", root, MsFlags::empty(), &data)?;
    }
    mount_fs(
        "proc",
        &root.join("proc"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV | MsFlags::MS_NOEXEC,
        "",
    )?;
    make_dev(root)?;
    mount_fs(
        "tmpfs",
        &root.join("tmp"),
        MsFlags::MS_NOSUID | MsFlags::MS_NODEV,
        "mode=1777",
    )?;
    for b in &plan.binds {
        bind(root, b)?;
    }
    if !plan.network {
        loopback_up()?;
    }
    Ok(())
}

/// The build's own part: binds, files, network; then the chroot.
fn enter(plan: &Plan, go: &Go) -> Result<(), String> {
    let root = plan.root.as_path();
    for b in &go.binds {
        bind(root, b)?;
    }
    for (host, target) in &go.files {
        let to = root.join(target.trim_start_matches('/'));
        if let Some(dir) = to.parent() {
            std::fs::create_dir_all(dir).map_err(|e| err("mkdir", dir, e))?;
        }
        std::fs::copy(host, &to)
            .map_err(|e| err(&format!("copying {} to", host.display()), &to, e))?;
    }
    if go.host_network {
        let path = plan
            .host_netns
            .as_deref()
            .ok_or("the host network was asked for, but no namespace was given")?;
        let ns = std::fs::File::open(path).map_err(|e| err("opening", path, e))?;
        nix::sched::setns(ns, nix::sched::CloneFlags::CLONE_NEWNET)
            .map_err(|e| err("joining the network namespace", path, e))?;
    }
    nix::unistd::chroot(root).map_err(|e| err("chroot", root, e))?;
    std::env::set_current_dir("/").map_err(|e| err("chdir", Path::new("/"), e))?;
    Ok(())
}

/// The next line on stdin; `None` at its end.
fn read_line(what: &str) -> Result<Option<String>, String> {
    let mut line = String::new();
    std::io::stdin()
        .read_line(&mut line)
        .map_err(|e| format!("reading the {what} line: {e}"))?;
    Ok(Some(line).filter(|l| !l.is_empty()))
}

/// The [`Go`] line of a waiting sandbox.
fn read_go() -> Result<Go, String> {
    let line = read_line("go")?.ok_or("stdin closed before the go line (build abandoned)")?;
    serde_json::from_str(&line).map_err(|e| format!("bad go line: {e}"))
}

/// `KEY=VALUE` lines of the root's build environment file (already chrooted).
fn root_env() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(Path::new("/").join(ROOT_ENV_FILE)).unwrap_or_default();
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .filter_map(|l| {
            l.split_once('=')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect()
}

struct StatusFile(Option<std::fs::File>);

impl StatusFile {
    fn write(&mut self, status: &Status) {
        if let (Some(f), Ok(line)) = (self.0.as_mut(), serde_json::to_string(status)) {
            let _ = writeln!(f, "{line}");
        }
    }
}

fn run_step(step: &Step, env: &[(String, String)]) -> Status {
    let started = Instant::now();
    let Some((program, args)) = step.argv.split_first() else {
        return Status::Step {
            name: step.name.clone(),
            code: None,
            signal: None,
            spawn_error: Some("empty command".into()),
            secs: 0.0,
        };
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args)
        .env_clear()
        .current_dir("/")
        .stdin(std::process::Stdio::null());
    // stderr into the stdout pipe: one stream keeps the order the step wrote in.
    if let Ok(out) = std::io::stdout().as_fd().try_clone_to_owned() {
        cmd.stderr(std::process::Stdio::from(out));
    }
    cmd.envs(STEP_ENV.iter().copied());
    cmd.envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let (code, signal, spawn_error) = match cmd.status() {
        Ok(s) => (s.code(), s.signal(), None),
        Err(e) => (None, None, Some(format!("{program}: {e}"))),
    };
    Status::Step {
        name: step.name.clone(),
        code,
        signal,
        spawn_error,
        secs: started.elapsed().as_secs_f64(),
    }
}

/// Runs the sandbox; returns the process exit code (the failing step's, or 0).
pub fn run(plan: &Plan) -> i32 {
    let mut started = Instant::now();
    // Opened before the chroot: the file stays outside the build's reach.
    let mut status = StatusFile(
        plan.status_file
            .as_ref()
            .and_then(|p| std::fs::File::create(p).ok()),
    );
    let entered = prepare(plan).and_then(|()| {
        let go = if plan.wait_for_go {
            let go = read_go()?;
            started = Instant::now();
            go
        } else {
            Go {
                binds: vec![],
                files: vec![],
                host_network: false,
                steps: plan.steps.clone(),
                no_sync: false,
                then_wait: false,
            }
        };
        enter(plan, &go).map(|()| go)
    });
    let go = match entered {
        Ok(go) => go,
        Err(e) => {
            eprintln!("== dbuild: sandbox setup failed: {e}");
            status.write(&Status::SetupFailed { error: e });
            return SETUP_FAILED;
        }
    };
    // Setup time of the build itself: since the go line when the sandbox waited for one.
    status.write(&Status::Ready {
        secs: started.elapsed().as_secs_f64(),
    });
    eprintln!("== dbuild: sandbox ready");
    if go.no_sync {
        // Only slower without it: say so and go on.
        if let Err(e) = super::nosync::disable_sync() {
            eprintln!("== dbuild: {e}; the build's syncs will reach the disk");
        }
    }
    let env = root_env();
    if let Some(code) = run_steps(&go.steps, &env, &mut status) {
        return code;
    }
    if !go.then_wait {
        return 0;
    }
    let then = match read_line("then") {
        Ok(Some(line)) => {
            serde_json::from_str::<Then>(&line).map_err(|e| format!("bad then line: {e}"))
        }
        Ok(None) => {
            eprintln!("== dbuild: no further steps (the prepared build was not claimed)");
            return 0;
        }
        Err(e) => Err(e),
    };
    match then {
        Ok(then) => run_steps(&then.steps, &env, &mut status).unwrap_or(0),
        Err(e) => {
            eprintln!("== dbuild: {e}");
            status.write(&Status::SetupFailed { error: e });
            SETUP_FAILED
        }
    }
}

/// Runs `steps` in order; the exit code of the sandbox when one fails.
fn run_steps(steps: &[Step], env: &[(String, String)], status: &mut StatusFile) -> Option<i32> {
    for step in steps {
        let end = run_step(step, env);
        status.write(&end);
        let Status::Step {
            code,
            signal,
            spawn_error,
            ..
        } = &end
        else {
            continue;
        };
        if *code != Some(0) {
            if let Some(e) = spawn_error {
                eprintln!("== dbuild: {}: cannot start: {e}", step.name);
            }
            return Some(code.unwrap_or(128 + signal.unwrap_or(0)));
        }
        for target in &step.unmount_after {
            if let Err(e) = umount2(target.as_str(), MntFlags::MNT_DETACH) {
                eprintln!("== dbuild: unmounting {target} after {}: {e}", step.name);
                return Some(SETUP_FAILED);
            }
        }
    }
    None
}
