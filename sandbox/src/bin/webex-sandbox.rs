fn main() {
    eprintln!("webex-sandbox: not built yet");
    std::process::exit(1);
}
