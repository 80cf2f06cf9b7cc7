//! `dbuild-sandbox PLAN-JSON`: PID 1 of a build sandbox, started by the
//! worker through `unshare` (see `dbuild_worker::sandbox`). Not for humans.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(json) = std::env::args().nth(1) else {
        eprintln!("usage: dbuild-sandbox PLAN-JSON (started by dbuild-worker)");
        return ExitCode::from(2);
    };
    let plan: dbuild_worker::sandbox::Plan = match serde_json::from_str(&json) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("dbuild-sandbox: bad plan: {e}");
            return ExitCode::from(2);
        }
    };
    let code = dbuild_worker::sandbox::init::run(&plan);
    ExitCode::from(u8::try_from(code.clamp(0, 255)).unwrap_or(255))
}
