//! nova-guard: configuration → logging → server; signals.

use std::process::ExitCode;

use nova_guard::config::{Config, LogFormat};
use tracing_subscriber::EnvFilter;

mod cli;

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
    init_logging(&config);
    for var in Config::unknown_variables() {
        tracing::warn!(variable = %var, "unknown NOVA_GUARD_ variable ignored");
    }

    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the runtime");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "nova-guard stopped");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config) -> Result<(), nova_guard::error::BoxError> {
    let listener = nova_guard::server::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(
        listen = %addr,
        upstream = %config.upstream.uri,
        tls = config.tls.is_some(),
        nova_release = %config.profile.release,
        nova_python = %config.profile.python,
        max_microversion = %config.max_microversion,
        "listening"
    );
    nova_guard::server::serve(&config, listener, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGTERM or SIGINT; a second one ends the process at once.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::error!("cannot install signal handlers; stopping");
        return;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    tokio::spawn(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
        tracing::warn!("second signal: stopping now");
        std::process::exit(1);
    });
}

fn init_logging(config: &Config) {
    let filter = EnvFilter::builder()
        .parse(&config.log_filter)
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout);
    match config.log_format {
        LogFormat::Json => builder.event_format(nova_guard::logline::JsonLine).init(),
        LogFormat::Text => builder.init(),
    }
}
