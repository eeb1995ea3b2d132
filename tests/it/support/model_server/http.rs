//! Just enough HTTP/1.1 for the model server: read one request (a body with `Content-Length`
//! or chunked), write one response and close. The CLIs' HTTP clients all accept
//! `Connection: close`, which spares us keep-alive.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

/// The largest request body accepted: a long prompt plus a conversation.
const MAX_BODY: usize = 64 * 1024 * 1024;

pub(super) struct Request {
    pub method: String,
    /// The request target, query string included.
    pub path: String,
    pub body: Vec<u8>,
}

pub(super) fn read_request(conn: &mut TcpStream) -> std::io::Result<Request> {
    let mut reader = BufReader::new(conn);
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or("").to_string();
    let path = parts.next().unwrap_or("").to_string();
    if method.is_empty() || path.is_empty() {
        return Err(invalid(format!("bad request line {line:?}")));
    }
    let mut length = None;
    let mut chunked = false;
    let mut encoding = None;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header)? == 0 {
            return Err(invalid("the headers end early".into()));
        }
        let header = header.trim_end();
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match name.trim().to_ascii_lowercase().as_str() {
            "content-length" => {
                length = Some(
                    value
                        .parse::<usize>()
                        .map_err(|_| invalid(format!("bad content-length {value:?}")))?,
                );
            }
            "transfer-encoding" => chunked = value.to_ascii_lowercase().contains("chunked"),
            "content-encoding" if !value.eq_ignore_ascii_case("identity") => {
                encoding = Some(value.to_string());
            }
            _ => {}
        }
    }
    if let Some(encoding) = encoding {
        // Not expected from any CLI talking to a custom provider; say so loudly if one does.
        return Err(invalid(format!(
            "compressed request bodies ({encoding}) are not supported"
        )));
    }
    let body = if chunked {
        read_chunked(&mut reader)?
    } else {
        let length = length.unwrap_or(0);
        if length > MAX_BODY {
            return Err(invalid(format!("body too large: {length} bytes")));
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        body
    };
    Ok(Request { method, path, body })
}

fn read_chunked(reader: &mut impl BufRead) -> std::io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut size_line = String::new();
        reader.read_line(&mut size_line)?;
        let size_text = size_line.trim().split(';').next().unwrap_or("");
        let size = usize::from_str_radix(size_text, 16)
            .map_err(|_| invalid(format!("bad chunk size {size_line:?}")))?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                let mut trailer = String::new();
                if reader.read_line(&mut trailer)? == 0 || trailer.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        if body.len() + size > MAX_BODY {
            return Err(invalid("chunked body too large".into()));
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        let mut crlf = [0; 2];
        reader.read_exact(&mut crlf)?;
    }
}

pub(super) fn respond(
    conn: &mut TcpStream,
    status: u16,
    content_type: &str,
    body: &[u8],
) -> std::io::Result<()> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\
         cache-control: no-cache\r\nconnection: close\r\n\r\n",
        body.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(body)?;
    conn.flush()?;
    // Tell the client that nothing more comes, then let it close first.
    let _ = conn.shutdown(std::net::Shutdown::Write);
    Ok(())
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}
