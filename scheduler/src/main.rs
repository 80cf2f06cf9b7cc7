fn main() {
    println!("dbuild-scheduler: not built yet");
}
