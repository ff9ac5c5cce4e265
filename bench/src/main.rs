//! `qmp-bench`: runs every measurement and prints the table (see the library's docs).

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = qmp_bench::Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("qmp-bench: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(qmp_bench::run(&args)) {
        Ok(report) => {
            print!("{}", report.render());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("qmp-bench: {e}");
            ExitCode::FAILURE
        }
    }
}
