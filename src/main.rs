use clap::Parser;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = onekey::cli::Cli::parse();
    match onekey::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("onekey: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
