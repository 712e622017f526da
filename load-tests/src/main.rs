//! Placeholder for Cầu's load-test tool; the "Load tests" issue fills it.

fn main() {
    println!("cau-load-tests: no scenario yet");
}
