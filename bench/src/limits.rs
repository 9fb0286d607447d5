//! Ten thousand streams need ten thousand descriptors on each side (this process and
//! the server): the soft limit on open files (often 1024) is raised to the hard one,
//! and the server started by the tool inherits it.

/// Raises `RLIMIT_NOFILE` to its hard limit; says so when that is still low.
#[allow(unsafe_code)]
pub fn raise_open_files() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct passed in.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return 0;
        }
        limit.rlim_cur = limit.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0
    };
    let open_files = limit.rlim_cur;
    if !raised || open_files < 11_000 {
        eprintln!(
            "bench: open files limited to {open_files}: 10,000 streams need a little over \
             10,000 in this process and in the server (raise the hard limit: \
             `ulimit -Hn 65536` as root, or LimitNOFILE in systemd)"
        );
    }
    open_files
}
