//! The command line: `--help`, `--version` and `--check-config`. Everything
//! else about nova-guard is configured by `NOVA_GUARD_*` variables.

use std::ffi::OsString;
use std::process::ExitCode;

use nova_guard::config::{mask_userinfo, Config, VARIABLES};

/// Exit code for bad arguments or a bad configuration.
pub const EXIT_CONFIG: u8 = 2;

const USAGE: &str = "Usage: nova-guard [--help | --version | --check-config | --drain [WAIT]]";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// No argument: run the proxy.
    Run,
    Help,
    Version,
    CheckConfig,
    /// Ask the running instance (its admin listener) to drain, then wait.
    Drain(std::time::Duration),
    /// Anything else: the message to print before exiting with [`EXIT_CONFIG`].
    Bad(String),
}

pub fn parse(args: impl IntoIterator<Item = OsString>) -> Command {
    let args: Vec<OsString> = args.into_iter().collect();
    let first = match args.first() {
        None => return Command::Run,
        Some(a) => a.to_string_lossy().into_owned(),
    };
    let command = match first.as_str() {
        "--help" | "-h" => Command::Help,
        "--version" | "-V" => Command::Version,
        "--check-config" => Command::CheckConfig,
        "--drain" => {
            let wait = match args.get(1).map(|a| a.to_string_lossy().into_owned()) {
                None => std::time::Duration::ZERO,
                Some(w) => match nova_guard::config::parse_duration(&w) {
                    Some(d) => d,
                    None => {
                        return Command::Bad(format!(
                            "--drain waits a duration like 10s or 1m30s, not {w:?}\n{USAGE}\n"
                        ))
                    }
                },
            };
            if args.len() > 2 {
                return Command::Bad(format!("--drain takes one duration at most\n{USAGE}\n"));
            }
            return Command::Drain(wait);
        }
        other => {
            return Command::Bad(format!(
                "unknown argument {other:?}; it is configured by environment variables \
                 (see --help)\n{USAGE}\n"
            ))
        }
    };
    if args.len() > 1 {
        return Command::Bad(format!("{first} takes no further argument\n{USAGE}\n"));
    }
    command
}

/// Handle the command line. `None`: no argument, run the proxy; otherwise
/// the process ends with the returned code.
pub fn handle(args: impl IntoIterator<Item = OsString>) -> Option<ExitCode> {
    match parse(args) {
        Command::Run => None,
        Command::Help => {
            print!("{}", help());
            Some(ExitCode::SUCCESS)
        }
        Command::Version => {
            println!("{}", version());
            Some(ExitCode::SUCCESS)
        }
        Command::CheckConfig => {
            let unknown = Config::unknown_variables();
            let report = check_config(|name| std::env::var(name).ok(), &unknown);
            print!("{}", report.stdout);
            eprint!("{}", report.stderr);
            Some(ExitCode::from(report.code))
        }
        Command::Drain(wait) => Some(drain(wait)),
        Command::Bad(message) => {
            eprint!("nova-guard: {message}");
            Some(ExitCode::from(EXIT_CONFIG))
        }
    }
}

/// `nova-guard 0.1.0 (commit 1a2b3c4d5e6f)`; the commit is recorded by build.rs.
/// `--drain`: the admin listener of the instance configured in this
/// environment drains; exit 0 once it has and `wait` has passed.
fn drain(wait: std::time::Duration) -> ExitCode {
    let admin = std::env::var("NOVA_GUARD_ADMIN_LISTEN").unwrap_or_default();
    let Ok(addr) = admin.trim().parse::<std::net::SocketAddr>() else {
        eprintln!(
            "nova-guard: --drain needs NOVA_GUARD_ADMIN_LISTEN (the admin listener), got {admin:?}"
        );
        return ExitCode::from(EXIT_CONFIG);
    };
    match nova_guard::admin::request_drain(addr, wait) {
        Ok(said) => {
            println!("nova-guard: {said}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("nova-guard: --drain: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn version() -> String {
    format!(
        "nova-guard {} (commit {})",
        env!("CARGO_PKG_VERSION"),
        env!("NOVA_GUARD_COMMIT")
    )
}

pub fn help() -> String {
    let mut s = format!(
        "nova-guard {}: a validating reverse proxy for the OpenStack Nova compute API\n\n\
         {USAGE}\n\n\
         \x20 (no argument)    run the proxy\n\
         \x20 --help, -h       this text\n\
         \x20 --version, -V    the version\n\
         \x20 --check-config   validate the environment, print the resolved configuration\n\
         \x20                  (secrets masked) and exit\n\
         \x20 --drain [WAIT]   ask the running instance (NOVA_GUARD_ADMIN_LISTEN) to drain:\n\
         \x20                  /readyz says no, connections are still served; then wait\n\
         \x20                  WAIT (e.g. 10s) before exiting, as a preStop hook does\n\n\
         It is configured by environment variables only:\n",
        env!("CARGO_PKG_VERSION")
    );
    for var in VARIABLES {
        let default = if var.default.is_empty() {
            "(empty)"
        } else {
            var.default
        };
        s.push_str(&format!(
            "  {:<38} default {default:<22} {}\n",
            var.name, var.meaning
        ));
    }
    s.push_str(
        "\nDurations are written 250ms, 10s, 2m, 1h, or added up: 1m30s.\n\
         Exit codes: 0 stopped cleanly (SIGTERM/SIGINT) or --check-config found no problem,\n\
         \x20           1 runtime failure, 2 bad arguments or configuration (every problem listed).\n",
    );
    s
}

/// What `--check-config` prints, and its exit code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub stdout: String,
    pub stderr: String,
    pub code: u8,
}

/// Validate the configuration read through `lookup` exactly as start-up
/// does. Valid: the resolved value of every variable (and where it came
/// from) on stdout, exit 0. Invalid: every problem on stderr, exit 2.
/// Unknown `NOVA_GUARD_*` names are warned about, as at start-up.
pub fn check_config(lookup: impl Fn(&str) -> Option<String>, unknown: &[String]) -> CheckReport {
    let mut stderr = String::new();
    for var in unknown {
        stderr.push_str(&format!(
            "nova-guard: warning: unknown variable {var} is ignored\n"
        ));
    }
    match Config::from_lookup(&lookup) {
        Err(e) => {
            stderr.push_str(&format!("nova-guard: {e}"));
            CheckReport {
                stdout: String::new(),
                stderr,
                code: EXIT_CONFIG,
            }
        }
        Ok(config) => {
            let mut stdout = format!("# {}: configuration is valid\n", version());
            // A default that follows the release is shown as resolved.
            let default_of = |var: &nova_guard::config::Var| match var.name {
                "NOVA_GUARD_MAX_MICROVERSION" => config.validation.max_microversion.to_string(),
                _ => var.default.to_owned(),
            };
            let width = VARIABLES
                .iter()
                .map(|var| {
                    let value = lookup(var.name).unwrap_or_else(|| default_of(var));
                    var.name.len() + 1 + shown(var.name, &value).len()
                })
                .max()
                .unwrap_or(0);
            for var in VARIABLES {
                let (value, source) = match lookup(var.name) {
                    Some(v) => (v, "environment"),
                    None => (default_of(var), "default"),
                };
                let line = format!("{}={}", var.name, shown(var.name, &value));
                stdout.push_str(&format!("{line:<width$}  # {source}\n"));
            }
            CheckReport {
                stdout,
                stderr,
                code: 0,
            }
        }
    }
}

/// A value as `--check-config` prints it: secrets masked, the rest quoted
/// only when it needs to be (so that the output reads as an environment file).
fn shown(name: &str, value: &str) -> String {
    let value = if is_secret(name, value) {
        "********".to_owned()
    } else {
        mask_userinfo(value)
    };
    if value.is_empty()
        || value
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b"\"'#$\\`".contains(&b))
    {
        format!("{value:?}")
    } else {
        value
    }
}

/// Values that are secrets by their variable's name. A `*_KEY` variable
/// that names a file (an absolute path, as the TLS keys do) is shown: the
/// secret is in the file, and the path is what an operator needs to check.
fn is_secret(name: &str, value: &str) -> bool {
    !value.is_empty()
        && (["TOKEN", "SECRET", "PASSWORD", "PASSPHRASE", "CREDENTIAL"]
            .iter()
            .any(|w| name.contains(w))
            || (name.ends_with("_KEY") && !value.starts_with('/')))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn args(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn arguments() {
        assert_eq!(parse(args(&[])), Command::Run);
        assert_eq!(parse(args(&["--help"])), Command::Help);
        assert_eq!(parse(args(&["-h"])), Command::Help);
        assert_eq!(parse(args(&["--version"])), Command::Version);
        assert_eq!(parse(args(&["-V"])), Command::Version);
        assert_eq!(parse(args(&["--check-config"])), Command::CheckConfig);
        assert!(matches!(parse(args(&["--listen"])), Command::Bad(_)));
        assert!(matches!(
            parse(args(&["--check-config", "x"])),
            Command::Bad(_)
        ));
    }

    #[test]
    fn help_lists_every_variable_with_its_default_and_meaning() {
        let h = help();
        for var in VARIABLES {
            let line = h
                .lines()
                .find(|l| l.trim_start().starts_with(&format!("{} ", var.name)))
                .unwrap_or_else(|| panic!("{} missing from --help", var.name));
            let default = if var.default.is_empty() {
                "(empty)"
            } else {
                var.default
            };
            assert!(line.contains(default), "{line}");
            assert!(line.contains(var.meaning), "{line}");
        }
        assert!(h.contains("--check-config"));
        assert!(h.contains("Exit codes"));
    }

    #[test]
    fn check_config_prints_every_variable_and_its_source() {
        let r = check_config(
            lookup(&[
                ("NOVA_GUARD_UPSTREAM", "http://nova.internal:8774"),
                ("NOVA_GUARD_PATH_PREFIX", ""),
            ]),
            &[],
        );
        assert_eq!(r.code, 0, "{}", r.stderr);
        assert!(r.stderr.is_empty());
        for var in VARIABLES {
            assert!(
                r.stdout.contains(&format!("\n{}=", var.name)),
                "{}",
                var.name
            );
        }
        let line = |n: &str| {
            r.stdout
                .lines()
                .find(|l| l.starts_with(&format!("{n}=")))
                .unwrap()
                .to_owned()
        };
        assert!(line("NOVA_GUARD_UPSTREAM")
            .starts_with("NOVA_GUARD_UPSTREAM=http://nova.internal:8774 "));
        assert!(line("NOVA_GUARD_UPSTREAM").ends_with("# environment"));
        assert!(line("NOVA_GUARD_LISTEN").ends_with("# default"));
        assert!(line("NOVA_GUARD_PATH_PREFIX").starts_with("NOVA_GUARD_PATH_PREFIX=\"\""));
    }

    #[test]
    fn check_config_lists_every_problem_and_exits_2() {
        let r = check_config(
            lookup(&[
                ("NOVA_GUARD_LISTEN", "nowhere"),
                ("NOVA_GUARD_LOG_FORMAT", "xml"),
            ]),
            &["NOVA_GUARD_LISTN".to_owned()],
        );
        assert_eq!(r.code, 2);
        assert!(r.stdout.is_empty());
        assert!(r.stderr.contains("unknown variable NOVA_GUARD_LISTN"));
        assert!(r.stderr.contains("2 problem(s)"));
        assert!(r.stderr.contains("NOVA_GUARD_LISTEN=\"nowhere\""));
        assert!(r.stderr.contains("NOVA_GUARD_LOG_FORMAT=\"xml\""));
    }

    #[test]
    fn secrets_are_masked() {
        assert_eq!(shown("NOVA_GUARD_ADMIN_TOKEN", "s3cret"), "********");
        assert_eq!(shown("NOVA_GUARD_TLS_KEY", "abc"), "********");
        assert_eq!(
            shown("NOVA_GUARD_TLS_KEY", "/etc/nova-guard/tls.key"),
            "/etc/nova-guard/tls.key"
        );
        assert_eq!(shown("NOVA_GUARD_ADMIN_TOKEN", ""), "\"\"");
        assert_eq!(
            shown("NOVA_GUARD_UPSTREAM", "http://u:p@nova:8774/x@y"),
            "http://****@nova:8774/x@y"
        );
        assert_eq!(
            shown("NOVA_GUARD_UPSTREAM", "http://nova:8774/a@b"),
            "http://nova:8774/a@b"
        );
        assert_eq!(
            shown("NOVA_GUARD_LOG", "info,hyper=warn"),
            "info,hyper=warn"
        );
        assert_eq!(shown("NOVA_GUARD_LOG", "a b"), "\"a b\"");
    }
}
