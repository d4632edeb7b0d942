//! The `inferscope` binary: parses the command line and hands over to the library.

use clap::Parser;
use inferscope_server::cli::{Cli, Command};
use tracing_subscriber::EnvFilter;

/// mimalloc returns freed memory to the OS (after the delay
/// `inferscope_server::allocator` sets); with glibc's allocator the server's
/// RSS kept growing under sustained ingest although the head stayed bounded
/// (see the closing figures in ARCHITECTURE.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    inferscope_server::allocator::tune();
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(
            EnvFilter::try_from_env("INFERSCOPE_LOG").unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve(args)),
        Command::Bench(args) => inferscope_server::bench::run(args),
        Command::Trace(args) => inferscope_server::trace_cli::run(args),
        Command::Session(args) => inferscope_server::trace_cli::run_session(args),
        Command::Genai(args) => inferscope_server::genai_cli::run(args),
    }
}

async fn serve(args: inferscope_server::cli::ServeArgs) -> anyhow::Result<()> {
    let config = args.load_config()?;
    if !config.auth_enabled {
        tracing::info!(
            "auth_enabled: false: running single-tenant, every request is tenant \"fake\""
        );
    }
    let server = inferscope_server::Server::bind(config).await?;
    let addr = server.local_addr()?;
    tracing::info!(http = %addr, data_dir = %server.state.config.common.path_prefix.display(), "inferscope is listening");
    tracing::info!(grpc = %server.grpc_addr()?, "OTLP/gRPC is listening (logs, metrics, traces)");
    if args.demo {
        inferscope_server::demo::start(server.state.clone(), addr);
        inferscope_server::demo_metrics::start(addr.port());
    }
    server.serve(inferscope_server::shutdown_signal()).await
}
