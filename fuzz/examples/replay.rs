//! `cargo run --release --example replay -- <target> <file>...`: runs inputs through a
//! target's checks without libFuzzer, printing the time each took.

fn main() {
    let mut args = std::env::args().skip(1);
    let name = args.next().expect("usage: replay <target> <file>...");
    let check = chatbox_fuzz::target(&name).unwrap_or_else(|| panic!("no target {name}"));
    for path in args {
        let data = std::fs::read(&path).expect("read input");
        let t = std::time::Instant::now();
        check(&data);
        println!("{path}: ok in {:?}", t.elapsed());
    }
}
