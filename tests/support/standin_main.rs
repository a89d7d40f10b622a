//! The stand-in cluster as a standalone process, for trying the console or the engine by hand:
//!
//! ```text
//! cargo run --example standin -- --nodes 3 [--port-file F] [--api-key TOKEN | --basic USER:PASS | --bearer TOKEN]
//!                                 [--no-kibana] [--version 9.1.0]
//! ```
//!
//! Prints the URLs, optionally writes them as JSON to the port file
//! (`{"es":["http://127.0.0.1:P1",…],"kibana":"http://127.0.0.1:PK"}`), and serves until SIGINT
//! or SIGTERM.

#[path = "mod.rs"]
mod support;

use std::path::PathBuf;

use support::{StandIn, StandInAuth, StandInOptions};

const USAGE: &str = "usage: standin [--nodes N] [--port-file FILE] [--api-key TOKEN | --basic USER:PASS | --bearer TOKEN] [--no-kibana] [--version V]";

struct Args {
    opts: StandInOptions,
    port_file: Option<PathBuf>,
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Args, String> {
    let mut opts = StandInOptions::default();
    let mut port_file = None;
    let value = |args: &mut dyn Iterator<Item = String>, flag: &str| {
        args.next().ok_or_else(|| format!("'{flag}' needs a value"))
    };
    while let Some(flag) = args.next() {
        match flag.as_str() {
            "--nodes" => {
                let v = value(&mut args, &flag)?;
                opts.nodes = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("'--nodes' wants a number >= 1, got '{v}'"))?;
            }
            "--port-file" => port_file = Some(PathBuf::from(value(&mut args, &flag)?)),
            "--api-key" => opts.auth = StandInAuth::ApiKey(value(&mut args, &flag)?),
            "--bearer" => opts.auth = StandInAuth::Bearer(value(&mut args, &flag)?),
            "--basic" => {
                let v = value(&mut args, &flag)?;
                let (user, password) = v
                    .split_once(':')
                    .ok_or_else(|| format!("'--basic' wants USER:PASS, got '{v}'"))?;
                opts.auth = StandInAuth::Basic {
                    user: user.to_owned(),
                    password: password.to_owned(),
                };
            }
            "--no-kibana" => opts.kibana = false,
            "--version" => opts.version = value(&mut args, &flag)?,
            "-h" | "--help" => return Err(USAGE.to_owned()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(Args { opts, port_file })
}

async fn wait_for_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[tokio::main]
async fn main() {
    let args = match parse_args(std::env::args().skip(1)) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let kibana = args.opts.kibana;
    let standin = StandIn::start(args.opts).await;
    let es = standin.es_urls();
    let kibana_url = kibana.then(|| standin.kibana_url());
    for (i, url) in es.iter().enumerate() {
        println!("elasticsearch node {i}: {url}");
    }
    if let Some(k) = &kibana_url {
        println!("kibana: {k}");
    }
    if let Some(path) = &args.port_file {
        let doc = serde_json::json!({"es": es, "kibana": kibana_url});
        if let Err(e) = std::fs::write(path, doc.to_string()) {
            eprintln!("cannot write port file '{}': {e}", path.display());
            std::process::exit(1);
        }
    }
    println!("serving; stop with Ctrl-C");
    wait_for_signal().await;
    drop(standin);
}
