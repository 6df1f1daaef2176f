//! The `umd` command line: argument definitions and dispatch to one file per verb.

mod cat;
mod container;
mod create;
mod create_ddf;
mod ctl;
mod demo;
mod detail;
mod examine;
mod grow;
mod manage;
mod members;
mod mon;
mod names;
mod reshape;
mod run;
mod run_ppl;
mod status;
mod sync;

use clap::{Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

/// Linux md software RAID in userspace.
#[derive(Debug, Parser)]
#[command(name = "umd", version, about, long_about = None)]
pub(crate) struct Args {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the md or DDF metadata on each member, like `mdadm --examine`.
    Examine {
        /// Print JSON (one object per member) instead of text.
        #[arg(long)]
        json: bool,
        /// Member devices or image files.
        #[arg(required = true)]
        members: Vec<PathBuf>,
    },
    /// Assemble the members read-only and write the array's whole content to stdout.
    ///
    /// Members are matched by array UUID and role, in any order. Missing or
    /// unreadable members are tolerated up to the level's redundancy.
    Cat {
        /// For containers holding several arrays (DDF): which one, by index or name.
        #[arg(long)]
        subarray: Option<String>,
        /// raid0 layout for multi-zone arrays whose metadata does not record it
        /// (0.90 and old 1.x arrays), as md's `raid0.default_layout`.
        #[arg(long, value_enum)]
        raid0_layout: Option<Raid0LayoutArg>,
        /// Member devices or image files.
        #[arg(required = true)]
        members: Vec<PathBuf>,
    },
    /// Create a new array: write md superblocks (and a bitmap) on the members.
    Create(create::CreateArgs),
    /// Assemble the members and serve the array over NBD until SIGTERM.
    Run(run::RunArgs),
    /// Read, write or watch a running array's attributes (md's sysfs names).
    Ctl(ctl::CtlArgs),
    /// Change a running array's raid_disks or stripe cache, or reshape a
    /// stopped raid4/5/6 given by its members, as `mdadm --grow`.
    Grow(grow::GrowArgs),
    /// Fail, remove or add members of a running array, as `mdadm --manage`.
    Manage(manage::ManageArgs),
    /// Manage a container's external metadata (DDF) while `umd run` serves it, as mdmon does.
    Mon(mon::MonArgs),
    /// Summarise running arrays like /proc/mdstat.
    Status(status::StatusArgs),
    /// Show one running array like `mdadm --detail`: sizes, state, members,
    /// and the progress, speed and finish time of a running operation.
    Detail(detail::DetailArgs),
    /// Start a sync action (check, repair, resync, idle, frozen) on a running
    /// array; with --wait, show a progress bar until it ends and print
    /// mismatch_cnt.
    Sync(sync::SyncArgs),
    /// Show a progress bar until the running operation of an array ends,
    /// then print mismatch_cnt.
    Wait(sync::WaitArgs),
    /// Build a small raid5 on temporary files, read it back healthy and
    /// degraded, and check every byte: a self-contained demonstration.
    Demo {
        /// Keep the member files in this directory instead of a temporary one.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

/// md's raid0 multi-zone layouts (formats.md §4.2).
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Raid0LayoutArg {
    /// Layout 1: what kernels before 3.14 did (mdadm's default).
    Original,
    /// Layout 2: kernels 3.14 to 5.3.
    Alternate,
}

/// Run the chosen verb; `Err` is printed as one line by `main`.
pub(crate) fn run(args: Args) -> Result<ExitCode, String> {
    match args.command {
        Command::Examine { json, members } => examine::run(&members, json),
        Command::Cat {
            subarray,
            raid0_layout,
            members,
        } => cat::run(&members, subarray.as_deref(), raid0_layout),
        Command::Create(a) => create::run(a),
        Command::Run(a) => run::run(a),
        Command::Ctl(a) => ctl::run(a),
        Command::Mon(a) => mon::run(a),
        Command::Grow(a) => grow::run(a),
        Command::Manage(a) => manage::run(a),
        Command::Status(a) => status::run(a),
        Command::Detail(a) => detail::run(&a),
        Command::Sync(a) => sync::run_sync(&a),
        Command::Wait(a) => sync::run_wait(&a),
        Command::Demo { dir } => demo::run(dir.as_deref()),
    }
}

impl From<Raid0LayoutArg> for umd_layout::geometry::Raid0Layout {
    fn from(l: Raid0LayoutArg) -> Self {
        match l {
            Raid0LayoutArg::Original => Self::Original,
            Raid0LayoutArg::Alternate => Self::AlternateMultizone,
        }
    }
}
