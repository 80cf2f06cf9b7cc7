//! The options every command that reads a SPECS tree shares.

use dbuild_common::spec::ParseOptions;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct SpecArgs {
    /// The SPECS tree (every `*.spec` below it is read).
    #[arg(long, value_name = "DIR")]
    pub specs: PathBuf,
    /// A macro definition, as for rpmbuild: --define 'dist .ph5' (repeatable).
    #[arg(long = "define", short = 'D', value_name = "'NAME VALUE'", value_parser = parse_define)]
    pub defines: Vec<(String, String)>,
    /// Target architecture.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// An rpm macro file to load before each spec (repeatable).
    #[arg(long = "macros-file", value_name = "FILE")]
    pub macro_files: Vec<PathBuf>,
}

/// Checked while parsing the command line, so a bad one is a usage error (exit 2).
fn parse_define(arg: &str) -> Result<(String, String), String> {
    ParseOptions::parse_define(arg).map_err(|e| e.to_string())
}

impl SpecArgs {
    pub fn parse_options(&self) -> ParseOptions {
        ParseOptions {
            defines: self.defines.clone(),
            arch: self.arch.clone(),
            macro_files: self.macro_files.clone(),
            ..ParseOptions::default()
        }
    }
}
