//! The options every command that reads a SPECS tree shares.

use anyhow::Context;
use dbuild_common::spec::ParseOptions;
use std::path::PathBuf;

#[derive(clap::Args, Debug, Clone)]
pub struct SpecArgs {
    /// The SPECS tree (every `*.spec` below it is read).
    #[arg(long, value_name = "DIR")]
    pub specs: PathBuf,
    /// A macro definition, as for rpmbuild: --define 'dist .ph5' (repeatable).
    #[arg(long = "define", short = 'D', value_name = "'NAME VALUE'")]
    pub defines: Vec<String>,
    /// Target architecture.
    #[arg(long, default_value = "x86_64")]
    pub arch: String,
    /// An rpm macro file to load before each spec (repeatable).
    #[arg(long = "macros-file", value_name = "FILE")]
    pub macro_files: Vec<PathBuf>,
}

impl SpecArgs {
    pub fn parse_options(&self) -> anyhow::Result<ParseOptions> {
        let defines = self
            .defines
            .iter()
            .map(|d| ParseOptions::parse_define(d))
            .collect::<Result<Vec<_>, _>>()
            .context("reading --define")?;
        Ok(ParseOptions { defines, arch: self.arch.clone(), macro_files: self.macro_files.clone(), ..ParseOptions::default() })
    }
}
