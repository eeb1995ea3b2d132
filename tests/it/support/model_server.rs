//! A scripted model server for the real-CLI tests: it listens on 127.0.0.1 and answers the
//! four wire protocols the agent CLIs speak (Anthropic Messages, OpenAI Responses, OpenAI Chat
//! Completions, Gemini), always as a stream (SSE) when the CLI asks for one.
//!
//! It keeps no conversation state: every answer is decided from the request alone (see
//! [`script`]): the `ORCH_CONTEXT` line in the prompt says who is asking, and the number of
//! tool results already in the conversation says how far along it is. So the same server
//! serves any number of CLIs at once, in any order.
//!
//! The HTTP side is deliberately tiny: HTTP/1.1, one request per connection
//! (`Connection: close`), a thread per connection, bodies with `Content-Length` or chunked.
//! Every exchange is recorded so that a test can say which CLI asked for what.
//!
//! The submodules are named by path so that `examples/model_server.rs` can include this file
//! on its own.

#[path = "model_server/anthropic.rs"]
mod anthropic;
#[path = "model_server/gemini.rs"]
mod gemini;
#[path = "model_server/http.rs"]
mod http;
#[path = "model_server/openai.rs"]
mod openai;
#[path = "model_server/script.rs"]
pub(crate) mod script;

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::Value;

use script::Fault;

/// Which wire protocol a request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Anthropic,
    Responses,
    Chat,
    Gemini,
}

impl Protocol {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Protocol::Anthropic => "anthropic-messages",
            Protocol::Responses => "openai-responses",
            Protocol::Chat => "openai-chat",
            Protocol::Gemini => "gemini",
        }
    }
}

/// A model request, as far as the script needs it.
#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub protocol: Protocol,
    pub model: String,
    /// The names of the tools the CLI offers.
    pub tools: Vec<String>,
    /// How many tool results the conversation holds already.
    pub tool_results: usize,
    /// Whether the latest tool result reports an error (a denied write, a failed command).
    pub last_result_failed: bool,
    /// Whether the CLI asked for a stream.
    pub stream: bool,
    /// The whole request body.
    pub body: Value,
}

/// One request and what the server did with it.
#[derive(Debug, Clone)]
pub(crate) struct Exchange {
    pub path: String,
    pub protocol: Option<Protocol>,
    /// The role and task from the prompt's context line, when there was one.
    pub role: Option<String>,
    pub task: Option<String>,
    pub tool_results: usize,
    /// What was answered: e.g. `write /abs/path`, `text`, `fault 401`, `404`.
    pub answer: String,
    /// The request's body as it came (JSON-escaped text): what the CLI sent the model.
    pub body: String,
}

pub(crate) struct ModelServer {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    log: Arc<Mutex<Vec<Exchange>>>,
    accept: Option<std::thread::JoinHandle<()>>,
}

impl ModelServer {
    /// Starts listening on an ephemeral port of 127.0.0.1.
    pub(crate) fn start() -> ModelServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let accept = {
            let (stop, log) = (Arc::clone(&stop), Arc::clone(&log));
            std::thread::spawn(move || {
                for conn in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(conn) = conn else { continue };
                    let log = Arc::clone(&log);
                    std::thread::spawn(move || serve(conn, &log));
                }
            })
        };
        ModelServer {
            addr,
            stop,
            log,
            accept: Some(accept),
        }
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub(crate) fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every exchange so far, in order of arrival.
    pub(crate) fn exchanges(&self) -> Vec<Exchange> {
        self.log
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The exchanges as lines, for failure messages.
    pub(crate) fn transcript(&self) -> String {
        self.exchanges()
            .iter()
            .map(|e| {
                format!(
                    "{} {} role={} task={} results={} -> {}",
                    e.path,
                    e.protocol.map_or("-", Protocol::name),
                    e.role.as_deref().unwrap_or("-"),
                    e.task.as_deref().unwrap_or("-"),
                    e.tool_results,
                    e.answer
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Drop for ModelServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
    }
}

/// Answers one connection's request.
fn serve(mut conn: TcpStream, log: &Mutex<Vec<Exchange>>) {
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_secs(30)));
    let request = match http::read_request(&mut conn) {
        Ok(request) => request,
        Err(e) => {
            let _ = http::respond(&mut conn, 400, "text/plain", e.to_string().as_bytes());
            return;
        }
    };
    let (response, exchange) = route(&request);
    // For debugging a CLI's requests: ORCH_MODEL_SERVER_DUMP=DIR keeps every request body.
    if let Some(dir) = std::env::var_os("ORCH_MODEL_SERVER_DUMP") {
        static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let name = request.path.replace(['/', '?', ':'], "_");
        let _ = std::fs::create_dir_all(&dir);
        let _ = std::fs::write(
            std::path::Path::new(&dir).join(format!("{n:03}{name}.json")),
            &request.body,
        );
    }
    // Logged first: once the client has its answer, the exchange is in the log.
    log.lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
        .push(exchange);
    if response.status == HOLD {
        hold(&mut conn);
        return;
    }
    let _ = http::respond(
        &mut conn,
        response.status,
        response.content_type,
        &response.body,
    );
}

/// Not an HTTP status: the request is held unanswered (`[model:hold=N]`).
const HOLD: u16 = 0;

/// Keeps a held connection open until the client closes it (the agent was stopped), for a
/// minute at most.
fn hold(conn: &mut TcpStream) {
    use std::io::Read;
    let _ = conn.set_read_timeout(Some(std::time::Duration::from_millis(200)));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let mut buf = [0u8; 512];
    while std::time::Instant::now() < deadline {
        match conn.read(&mut buf) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
    }
}

/// An HTTP answer.
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
}

impl Response {
    fn json(status: u16, value: &Value) -> Response {
        Response {
            status,
            content_type: "application/json",
            body: value.to_string().into_bytes(),
        }
    }
}

fn route(request: &http::Request) -> (Response, Exchange) {
    let path = request.path.split('?').next().unwrap_or("").to_string();
    let mut exchange = Exchange {
        path: request.path.clone(),
        protocol: None,
        role: None,
        task: None,
        tool_results: 0,
        answer: String::new(),
        body: String::from_utf8_lossy(&request.body).into_owned(),
    };
    let body: Value = serde_json::from_slice(&request.body).unwrap_or(Value::Null);
    let conversation = match (request.method.as_str(), path.as_str()) {
        ("POST", "/v1/messages") => anthropic::parse(&body),
        ("POST", "/v1/messages/count_tokens") => {
            exchange.answer = "count_tokens".into();
            return (
                Response::json(200, &serde_json::json!({"input_tokens": 100})),
                exchange,
            );
        }
        ("POST", "/v1/responses") => openai::parse_responses(&body),
        ("POST", "/v1/chat/completions") => openai::parse_chat(&body),
        ("POST", p) if p.starts_with("/v1beta/models/") => {
            match gemini::parse(p, &body) {
                Some(conversation) => conversation,
                None => {
                    // countTokens and the like.
                    exchange.answer = "gemini count".into();
                    return (
                        Response::json(200, &serde_json::json!({"totalTokens": 100})),
                        exchange,
                    );
                }
            }
        }
        _ => {
            exchange.answer = "404".into();
            let error = serde_json::json!({"error": {"message": format!("no such endpoint: {} {}", request.method, request.path)}});
            return (Response::json(404, &error), exchange);
        }
    };
    exchange.protocol = Some(conversation.protocol);
    exchange.tool_results = conversation.tool_results;
    let decision = script::decide(&conversation);
    exchange.role = decision.role.clone();
    exchange.task = decision.task.clone();
    if decision.hold {
        exchange.answer = "hold".into();
        let held = Response {
            status: HOLD,
            content_type: "text/plain",
            body: Vec::new(),
        };
        return (held, exchange);
    }
    let response = match &decision.outcome {
        Err(fault) => {
            exchange.answer = format!("fault {}", fault.name());
            fault_response(conversation.protocol, *fault)
        }
        Ok(action) => {
            exchange.answer = action.summary();
            match conversation.protocol {
                Protocol::Anthropic => anthropic::render(&conversation, action),
                Protocol::Responses => openai::render_responses(&conversation, action),
                Protocol::Chat => openai::render_chat(&conversation, action),
                Protocol::Gemini => gemini::render(&conversation, action),
            }
        }
    };
    (response, exchange)
}

/// An error the way each provider words it.
fn fault_response(protocol: Protocol, fault: Fault) -> Response {
    let (status, message) = match fault {
        Fault::Unauthorized => (401, "invalid api key (scripted fault)"),
        Fault::ServerError => (500, "internal server error (scripted fault)"),
        Fault::Garbage => {
            return Response {
                status: 200,
                content_type: "text/event-stream",
                body: b"data: this is not json {{{\n\ngarbage garbage\n\n".to_vec(),
            };
        }
    };
    let body = match protocol {
        Protocol::Anthropic => serde_json::json!({
            "type": "error",
            "error": {
                "type": if status == 401 { "authentication_error" } else { "api_error" },
                "message": message
            }
        }),
        Protocol::Responses | Protocol::Chat => serde_json::json!({
            "error": {
                "message": message,
                "type": if status == 401 { "invalid_request_error" } else { "server_error" },
                "code": if status == 401 { "invalid_api_key" } else { "server_error" }
            }
        }),
        Protocol::Gemini => serde_json::json!({
            "error": {
                "code": status,
                "message": message,
                "status": if status == 401 { "UNAUTHENTICATED" } else { "INTERNAL" }
            }
        }),
    };
    Response::json(status, &body)
}
