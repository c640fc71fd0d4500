//! `cargo run --release --example seeds -- <dir>`: writes seed inputs (a genuine client
//! hello and server reply) for the corpora.

fn main() {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).expect("usage: seeds <dir>"));
    std::fs::create_dir_all(&dir).expect("mkdir");
    let (_, hello) = chatbox_fuzz::support::client_hello();
    let reply = chatbox_fuzz::support::server_reply(b"chatbox-server 0.1");
    std::fs::write(dir.join("hello"), &hello).expect("write");
    std::fs::write(dir.join("reply"), &reply).expect("write");
}
