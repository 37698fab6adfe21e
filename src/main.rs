//! nova-guard: configuration → logging → server; signals.

use std::process::ExitCode;

use nova_guard::config::Config;

mod cli;

#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    if let Some(code) = cli::handle(std::env::args_os().skip(1)) {
        return code;
    }

    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            eprint!("nova-guard: {e}");
            return ExitCode::from(cli::EXIT_CONFIG);
        }
    };
    // Kept until the end: dropping it writes out the queued lines.
    let log = init_logging(&config);
    for var in Config::unknown_variables() {
        tracing::warn!(variable = %var, "unknown NOVA_GUARD_ variable ignored");
    }

    // Signals, the admin listener and shutdown; the workers have their own.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    let code = match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "nova-guard stopped");
            ExitCode::FAILURE
        }
    };
    drop(log);
    code
}

async fn run(config: Config) -> Result<(), nova_guard::error::BoxError> {
    let listen = config.listener.listen;
    let listener =
        nova_guard::server::bind(listen).map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        commit = env!("NOVA_GUARD_COMMIT"),
        mode = config.validation.enforcement.as_str(),
        listen = %addr,
        upstream = %config.upstream.uri,
        tls = config.listener.tls.is_some(),
        nova_release = %config.validation.profile.release,
        nova_python = %config.validation.profile.python,
        max_microversion = %config.validation.max_microversion,
        "listening"
    );
    nova_guard::server::serve(&config, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT; a second one ends the process at
/// once. The handlers are installed by this call, before the proxy says it
/// is ready, so that a stop asked for right then is a graceful one.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let handlers = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    );
    async move {
        let (Ok(mut term), Ok(mut int)) = handlers else {
            tracing::error!("cannot install signal handlers; stopping");
            return;
        };
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        nova_guard::systemd::stopping();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: stopping now");
            std::process::exit(1);
        });
    }
}

fn init_logging(config: &Config) -> nova_guard::log::Guard {
    nova_guard::log::init(&config.log.filter, config.log.format)
}
