//! Stand-alone `phantom` command (the same arguments as `spinescreen phantom`):
//! `cargo run --release -p spinescreen-phantom --example phantom -- --out /tmp/p --seed 1 --preview`.
use clap::Parser;

/// Generate a synthetic chest CT series with ground truth.
#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: spinescreen_phantom::cli::PhantomArgs,
}

fn main() -> anyhow::Result<()> {
    spinescreen_phantom::cli::run(&Cli::parse().args)
}
