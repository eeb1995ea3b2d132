//! The tests' scripted model server, on its own: `cargo run --example model_server [PORT]`
//! prints its URL and answers until interrupted. Handy for pointing an agent CLI at it by hand
//! (see tests/it/support/agent_clis.rs for the settings each CLI needs).

#[allow(dead_code)]
#[path = "../tests/it/support/model_server.rs"]
mod model_server;

fn main() {
    let server = model_server::ModelServer::start();
    println!("{}", server.url());
    let mut seen = 0;
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        let exchanges = server.exchanges();
        for e in &exchanges[seen..] {
            eprintln!(
                "{} {:?} role={:?} task={:?} results={} -> {}",
                e.path, e.protocol, e.role, e.task, e.tool_results, e.answer
            );
        }
        seen = exchanges.len();
    }
}
