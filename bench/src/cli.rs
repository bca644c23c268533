//! The bench's command line (`cargo run -p bench --release -- --help`), in the library so that
//! a test can parse every command line the docs show with clap's own parser.

/// The bench's command line.
#[derive(clap::Parser)]
#[command(name = "bench", about)]
pub struct Cli {
    /// 3 cold runs, 20 requests per route, 1k and 10k profiles, no arm64 build
    #[arg(long)]
    pub quick: bool,
    /// Skip the arm64 cross-build (cargo lambda)
    #[arg(long)]
    pub no_arm64: bool,
    /// Only this table (no function is built): `capacity`, the DynamoDB units each
    /// operation consumes; `scale`, a list page as a tenant grows to a million profiles;
    /// `bulk`, a 100,000-line import, again, and an export
    #[arg(long, value_name = "TABLE", value_enum)]
    pub only: Option<Only>,
}

/// A table the bench can print alone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Only {
    /// The DynamoDB capacity each operation consumes, on the table and each index.
    Capacity,
    /// A list page vs the shard count (20k profiles at 1, 8 and 32 shards), then as one
    /// tenant grows to a million profiles at 1 and 8 shards (a local run of many minutes,
    /// its engine in a file under the temporary directory: a few GB of disk).
    Scale,
    /// A 100,000-line import by one worker (a few hundred bad lines), the same file again in
    /// upsert mode, an export; the units a line costs; the model for 1 and 10 million lines.
    Bulk,
}
