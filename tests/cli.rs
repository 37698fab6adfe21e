//! The command line of the binary: --help, --version, --check-config, a
//! configuration refused at start-up, and the exit codes, run as an
//! operator would.

use std::process::{Command, Output};

fn nova_guard(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-guard"));
    cmd.args(args);
    for (k, _) in std::env::vars() {
        if k.starts_with("NOVA_GUARD_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run nova-guard")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn help_lists_every_variable() {
    let out = nova_guard(&["--help"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    for var in nova_guard::config::VARIABLES {
        assert!(stdout.contains(var.name), "{} missing", var.name);
        assert!(stdout.contains(var.meaning), "{} missing", var.meaning);
    }
    assert!(stdout.contains("--check-config"));
}

#[test]
fn version() {
    let out = nova_guard(&["--version"], &[]);
    assert_eq!(out.status.code(), Some(0));
    let stdout = text(&out.stdout);
    let rest = stdout
        .strip_prefix(&format!(
            "nova-guard {} (commit ",
            env!("CARGO_PKG_VERSION")
        ))
        .unwrap_or_else(|| panic!("{stdout}"));
    let commit = rest
        .strip_suffix(")\n")
        .unwrap_or_else(|| panic!("{stdout}"));
    // The commit this tree is checked out at, when git can tell.
    let head = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| text(&o.stdout).trim().to_owned());
    match head {
        Some(head) if std::env::var_os("NOVA_GUARD_COMMIT").is_none() => {
            assert_eq!(commit, head, "{stdout}")
        }
        _ => assert!(
            !commit.is_empty() && !commit.contains(char::is_whitespace),
            "{stdout}"
        ),
    }
}

#[test]
fn check_config_valid() {
    let out = nova_guard(
        &["--check-config"],
        &[
            ("NOVA_GUARD_UPSTREAM", "http://192.0.2.10:8774"),
            ("NOVA_GUARD_LISTEN", "127.0.0.1:0"),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    assert!(stdout.contains("configuration is valid"));
    assert!(stdout.contains("NOVA_GUARD_UPSTREAM=http://192.0.2.10:8774"));
    assert!(stdout.contains("NOVA_GUARD_MAX_BODY_BYTES=114688"));
    for name in nova_guard::config::VARIABLES.iter().map(|v| v.name) {
        assert!(stdout.contains(&format!("{name}=")), "{name} missing");
    }
}

#[test]
fn check_config_lists_every_problem() {
    let out = nova_guard(
        &["--check-config"],
        &[
            ("NOVA_GUARD_LISTEN", "nowhere"),
            ("NOVA_GUARD_UPSTREAM", "ftp://x"),
            ("NOVA_GUARD_UPSTREAM_TIMEOUT", "0s"),
            ("NOVA_GUARD_LISTN", "typo"),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let stderr = text(&out.stderr);
    assert!(stderr.contains("3 problem(s)"), "{stderr}");
    assert!(stderr.contains("NOVA_GUARD_LISTEN=\"nowhere\""));
    assert!(stderr.contains("NOVA_GUARD_UPSTREAM=\"ftp://x\""));
    assert!(stderr.contains("NOVA_GUARD_UPSTREAM_TIMEOUT=\"0s\""));
    assert!(stderr.contains("unknown variable NOVA_GUARD_LISTN"));
}

#[test]
fn bad_arguments_exit_2() {
    for args in [&["--frobnicate"][..], &["--version", "--help"][..]] {
        let out = nova_guard(args, &[]);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(text(&out.stderr).contains("Usage: nova-guard"));
    }
}

#[test]
fn bad_configuration_at_start_up_exits_2() {
    let out = nova_guard(&[], &[("NOVA_GUARD_MAX_BODY_BYTES", "lots")]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("NOVA_GUARD_MAX_BODY_BYTES=\"lots\""));
}

#[test]
fn text_logs_carry_no_colour_codes_into_a_pipe() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::time::Duration;
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_nova-guard"));
    for (k, _) in std::env::vars() {
        if k.starts_with("NOVA_GUARD_") {
            cmd.env_remove(k);
        }
    }
    // Nothing listens on the upstream port: the request gets a 502 and an
    // exchange line with an error in it.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://{}", dead.local_addr().unwrap());
    drop(dead);
    let mut child = cmd
        .env("NOVA_GUARD_LISTEN", "127.0.0.1:0")
        .env("NOVA_GUARD_UPSTREAM", upstream)
        .env("NOVA_GUARD_LOG_FORMAT", "text")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let out = BufReader::new(child.stdout.take().unwrap());
    let (tx, rx) = std::sync::mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        for line in out.split(b'\n') {
            let Ok(line) = line else { return };
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut seen = Vec::new();
    // The next line (bounded), and the same without any escape sequence, to
    // read it whatever the test finds.
    let next = |seen: &mut Vec<u8>| -> String {
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("no log line");
        seen.extend_from_slice(&line);
        seen.push(b'\n');
        let mut plain = String::new();
        let mut in_escape = false;
        for c in String::from_utf8_lossy(&line).chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (true, _) => {}
                (false, c) => plain.push(c),
            }
        }
        plain
    };
    let addr = loop {
        let text = next(&mut seen);
        if let Some(at) = text.find("listen=") {
            let addr = text[at + "listen=".len()..]
                .split_whitespace()
                .next()
                .unwrap();
            break addr.to_owned();
        }
    };
    let mut conn = std::net::TcpStream::connect(addr).unwrap();
    conn.write_all(b"GET /v2.1/servers HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = String::new();
    conn.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 502"), "{answer}");
    // The exchange line follows the answer.
    while !next(&mut seen).contains("exchange") {}
    let _ = child.kill();
    let _ = child.wait();
    let text = text(&seen);
    assert!(text.contains("502"), "{text}");
    assert!(!seen.contains(&0x1b), "colour codes in a pipe: {text:?}");
}

#[test]
fn bad_configuration_stops_start_up_naming_every_variable() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nova-guard"))
        .env_clear()
        .env("NOVA_GUARD_LISTEN", "nowhere")
        .env("NOVA_GUARD_MAX_MICROVERSION", "two")
        .env("NOVA_GUARD_UPSTREAM_TIMEOUT", "soon")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    for var in [
        "NOVA_GUARD_LISTEN",
        "NOVA_GUARD_MAX_MICROVERSION",
        "NOVA_GUARD_UPSTREAM_TIMEOUT",
    ] {
        assert!(err.contains(var), "{var} missing from {err}");
    }
    assert!(out.stdout.is_empty());
}
