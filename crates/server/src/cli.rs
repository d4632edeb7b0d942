//! Command-line interface: `inferscope serve`, `inferscope bench` and
//! `inferscope trace`.
//!
//! Layering: defaults → `--config` YAML → environment variables → flags
//! (clap reads each flag's `INFERSCOPE_*` variable when the flag is absent).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::{Config, ConfigError, split_listen};

/// Inferscope: logs, GenAI metrics and cost for LLM inference platforms, in one binary.
#[derive(Debug, Parser)]
#[command(name = "inferscope", version, about, long_about = None)]
pub struct Cli {
    /// What to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: Loki push and query API on --listen, OTLP on --grpc-listen.
    Serve(ServeArgs),
    /// Generate a realistic LLM-stack dataset, ingest it through the push API,
    /// run a fixed set of queries and print throughput figures.
    Bench(crate::bench::BenchArgs),
    /// Print the timeline of a trace or request id: every entry carrying it,
    /// from every service, oldest first (asks a running server).
    Trace(crate::trace_cli::TraceArgs),
    /// A user session's requests (OTLP access logs), tokens and cost, from a running server.
    Session(crate::trace_cli::TraceArgs),
    /// GenAI figures from a running server: `genai top --by model --since 1h`.
    Genai(crate::genai_cli::GenAiArgs),
}

/// Options of `inferscope serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// YAML configuration file (Loki's key names where they mean the same).
    #[arg(long, env = "INFERSCOPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Where the WAL and blocks live (config: common.path_prefix) [default: ./data]
    #[arg(long, env = "INFERSCOPE_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// HTTP listen address for the Loki API, /metrics and /ready
    /// (config: server.http_listen_address/http_listen_port) [default: 0.0.0.0:3100]
    #[arg(long, env = "INFERSCOPE_LISTEN", value_name = "HOST:PORT")]
    pub listen: Option<String>,
    /// gRPC listen address for OTLP (config: server.grpc_listen_address/grpc_listen_port)
    /// [default: 0.0.0.0:4317]
    #[arg(long, env = "INFERSCOPE_GRPC_LISTEN", value_name = "HOST:PORT")]
    pub grpc_listen: Option<String>,
    /// Also generate a realistic demo load (an AI gateway, a scheduler and vLLM
    /// workers, with trace ids that cross services) and print queries to try.
    #[arg(long, env = "INFERSCOPE_DEMO")]
    pub demo: bool,
}

impl ServeArgs {
    /// The configuration these options describe.
    pub fn load_config(&self) -> Result<Config, ConfigError> {
        let mut config = match &self.config {
            Some(path) => Config::from_file(path)?,
            None => Config::default(),
        };
        if let Some(dir) = &self.data_dir {
            config.common.path_prefix = dir.clone();
        }
        if let Some(listen) = &self.listen {
            let (host, port) = split_listen(listen)?;
            config.server.http_listen_address = host;
            config.server.http_listen_port = port;
        }
        if let Some(listen) = &self.grpc_listen {
            let (host, port) = split_listen(listen)?;
            config.server.grpc_listen_address = host;
            config.server.grpc_listen_port = port;
        }
        config.validate()?;
        Ok(config)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_override_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("c.yaml");
        std::fs::write(
            &path,
            "server:\n  http_listen_port: 9999\ncommon:\n  path_prefix: /from/file\n",
        )
        .expect("write");
        let cli = Cli::try_parse_from([
            "inferscope",
            "serve",
            "--config",
            path.to_str().expect("utf8"),
            "--data-dir",
            "/flag",
        ])
        .expect("parses");
        let Command::Serve(args) = cli.command else {
            panic!("serve")
        };
        let config = args.load_config().expect("valid");
        assert_eq!(config.server.http_listen_port, 9999);
        assert_eq!(config.common.path_prefix, PathBuf::from("/flag"));
    }

    #[test]
    fn help_explains_every_option() {
        use clap::CommandFactory;
        let mut cmd = Cli::command();
        let serve = cmd.find_subcommand_mut("serve").expect("serve");
        let help = serve.render_long_help().to_string();
        for flag in [
            "--config",
            "--data-dir",
            "--listen",
            "--grpc-listen",
            "--demo",
            "INFERSCOPE_DATA_DIR",
        ] {
            assert!(help.contains(flag), "help lacks {flag}:\n{help}");
        }
    }
}
