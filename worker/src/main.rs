fn main() {
    println!("dbuild-worker: not built yet");
}
