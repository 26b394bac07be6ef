//! Facts about the running host recorded in snapshots and key files.

/// The machine's host name.
pub fn hostname() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// The user running the process (from the environment, else the uid).
pub fn username() -> String {
    std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| format!("uid-{}", current_uid()))
}

/// Effective user id.
pub fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Effective group id.
pub fn current_gid() -> u32 {
    rustix::process::getegid().as_raw()
}

/// Is a process with this id running on this host? (A process we may not
/// signal still exists.)
pub fn process_alive(pid: u32) -> bool {
    let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(pid) {
        Ok(()) => true,
        Err(e) => e != rustix::io::Errno::SRCH,
    }
}
