//! The bench's library: its command line ([`cli`]), which the docs' guard test parses. The
//! bench itself is the binary (`src/main.rs`).

pub mod cli;
