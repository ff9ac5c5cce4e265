//! The `qmp-bridge` binary: flags, logging, signals; everything else is in the library.

use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use qmp_bridge::config::Cli;
use qmp_bridge::security::Auth;
use qmp_bridge::server::Serving;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            // clap's message without its usage block, folded onto one line
            let text = e.to_string();
            let message: Vec<&str> = text
                .lines()
                .map(str::trim)
                .take_while(|l| !l.is_empty() && !l.starts_with("Usage:"))
                .collect();
            let message = message.join(" ");
            let message = message.strip_prefix("error: ").unwrap_or(&message);
            eprintln!("qmp-bridge: {message} (see qmp-bridge --help)");
            return ExitCode::from(2);
        }
    };
    let level = match cli.verbose {
        0 => tracing::Level::INFO,
        _ => tracing::Level::DEBUG,
    };
    // Our own events only: libraries' debug output could carry request lines (and tokens).
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::filter::Targets::new()
        .with_target("qmp_bridge", level)
        .with_default(tracing::Level::WARN);
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_target(false),
        )
        .with(filter)
        .init();
    let runtime = match cli.threads {
        Some(1) => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        Some(n) => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(usize::from(n))
            .enable_all()
            .build(),
        None => tokio::runtime::Runtime::new(),
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qmp-bridge: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(serve(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("qmp-bridge: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(cli: Cli) -> anyhow::Result<()> {
    let listen = cli.listen;
    let config = cli.into_config()?;
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let local = listener.local_addr()?;
    let host = if local.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else if local.is_ipv6() {
        format!("[{}]", local.ip())
    } else {
        local.ip().to_string()
    };
    let scheme = config.gate.scheme;
    if !local.ip().is_loopback() && config.tls.is_none() {
        tracing::warn!("listening on {local}, beyond loopback, without TLS: the token and every QMP message cross the network in clear text; add --tls-cert/--tls-key");
    }
    let query = match &config.gate.auth {
        Auth::Token(token) => format!("?token={token}"),
        Auth::Disabled => {
            tracing::warn!("--no-auth: anyone who can reach {local} can drive this VM");
            String::new()
        }
    };
    let serving = match &config.serving {
        Serving::Relay { target, .. } | Serving::One { target, .. } => target.to_string(),
        Serving::Fleet {
            vms,
            qmp_dir,
            libvirt,
        } => {
            let mut names: Vec<String> = vms.iter().map(|(n, t)| format!("{n}={t}")).collect();
            if let Some(dir) = qmp_dir {
                names.push(format!("every socket in {}", dir.display()));
            }
            for uri in libvirt {
                names.push(format!("every domain of {uri}"));
            }
            names.join(", ")
        }
    };
    println!("qmp-bridge: serving {serving} on {local}");
    println!(
        "open {scheme}://{host}:{}/{query} in a browser",
        local.port()
    );
    qmp_bridge::server::run(listener, config, shutdown_signal()).await?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
