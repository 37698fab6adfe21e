//! Records the commit the binary is built from, for `--version`.
//!
//! `NOVA_GUARD_COMMIT`, when set, is taken as it is (a build from a source
//! tarball or a container context without `.git`); otherwise
//! `git rev-parse --short HEAD`, or "unknown" when there is no git or no
//! repository. It reruns only when HEAD or the branch it names moves, not on
//! every change of a source file.

use std::path::{Path, PathBuf};
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=NOVA_GUARD_COMMIT");
    let commit = match std::env::var("NOVA_GUARD_COMMIT") {
        Ok(c) if !c.trim().is_empty() => c.trim().to_owned(),
        _ => from_git().unwrap_or_else(|| "unknown".to_owned()),
    };
    println!("cargo:rustc-env=NOVA_GUARD_COMMIT={commit}");
}

/// The short commit of HEAD, after asking cargo to rerun this script when
/// HEAD, its branch or the packed refs change.
fn from_git() -> Option<String> {
    // Only this package's own repository: a crate unpacked inside another
    // checkout (a vendored copy) must not report that checkout's commit.
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR")?);
    let top = PathBuf::from(git(&[
        "-C",
        manifest_dir.to_str()?,
        "rev-parse",
        "--show-toplevel",
    ])?);
    if top.canonicalize().ok()? != manifest_dir.canonicalize().ok()? {
        return None;
    }
    let in_repo = |args: &[&str]| {
        let mut all = vec!["-C", manifest_dir.to_str()?];
        all.extend_from_slice(args);
        git(&all)
    };
    let git_dir = in_repo(&["rev-parse", "--absolute-git-dir"])?;
    let common = in_repo(&["rev-parse", "--path-format=absolute", "--git-common-dir"])
        .unwrap_or_else(|| git_dir.clone());
    rerun_if_exists(&Path::new(&git_dir).join("HEAD"));
    if let Some(branch) = in_repo(&["symbolic-ref", "-q", "HEAD"]) {
        rerun_if_exists(&Path::new(&common).join(branch));
    }
    rerun_if_exists(&Path::new(&common).join("packed-refs"));
    in_repo(&["rev-parse", "--short=12", "HEAD"])
}

fn rerun_if_exists(path: &Path) {
    if path.exists() {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
