//! `vitrine-serve DIR [ADDR]`: serves a built site (default 127.0.0.1:8080) until interrupted.

#![allow(clippy::print_stdout)]

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let dir = args.next().unwrap_or_else(|| "dist".into());
    let addr = args.next().unwrap_or_else(|| "127.0.0.1:8080".into());
    let serving = vitrine_testkit::server::TestServer::files_on(std::path::Path::new(&dir), &addr)?;
    println!("serving {dir} at {}", serving.url());
    loop {
        std::thread::park();
    }
}
