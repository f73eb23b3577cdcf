//! Entry point of the search worker (built by Trunk as `data-type="worker"`).

fn main() {
    vitrine_worker::start();
}
