//! A stub SMS provider on 127.0.0.1: a real HTTP server (a thread per connection) that records
//! every request it receives and answers with a status the test sets, after an optional delay.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the stub received.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }

    /// The body as a form: each field decoded.
    pub fn form(&self) -> Vec<(String, String)> {
        self.body
            .split('&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                (decode(k), decode(v))
            })
            .collect()
    }
}

fn decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap();
                out.push(u8::from_str_radix(hex, 16).unwrap());
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

/// The running stub; it stops accepting when dropped.
pub struct SmsProvider {
    port: u16,
    received: Arc<Mutex<Vec<Request>>>,
    status: Arc<AtomicU16>,
    delay_ms: Arc<AtomicU64>,
    answer: Arc<Mutex<Option<String>>>,
    stop: Arc<AtomicBool>,
}

impl SmsProvider {
    /// Starts answering `200` with `{"status": "ok", "id": "m<n>"}`.
    pub fn start() -> SmsProvider {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let provider = SmsProvider {
            port,
            received: Arc::default(),
            status: Arc::new(AtomicU16::new(200)),
            delay_ms: Arc::default(),
            answer: Arc::default(),
            stop: Arc::default(),
        };
        let (received, status, delay, answer, stop) = (
            provider.received.clone(),
            provider.status.clone(),
            provider.delay_ms.clone(),
            provider.answer.clone(),
            provider.stop.clone(),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (received, status, delay, answer) = (
                    received.clone(),
                    status.clone(),
                    delay.clone(),
                    answer.clone(),
                );
                std::thread::spawn(move || serve(stream, &received, &status, &delay, &answer));
            }
        });
        provider
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// Answer every later request with `status`.
    pub fn set_status(&self, status: u16) {
        self.status.store(status, Ordering::SeqCst);
    }

    /// Wait this long before answering each request.
    pub fn set_delay_ms(&self, delay: u64) {
        self.delay_ms.store(delay, Ordering::SeqCst);
    }

    /// Answer every later request with this JSON body instead of the default (`{n}` in it
    /// becomes the request's number).
    pub fn set_answer(&self, body: &str) {
        *self.answer.lock().unwrap() = Some(body.to_owned());
    }

    pub fn received(&self) -> Vec<Request> {
        self.received.lock().unwrap().clone()
    }
}

impl Drop for SmsProvider {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    received: &Mutex<Vec<Request>>,
    status: &AtomicU16,
    delay: &AtomicU64,
    answer_body: &Mutex<Option<String>>,
) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        let mut parts = line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let path = parts.next().unwrap_or_default().to_owned();
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            let header = header.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                headers.push((name.trim().to_ascii_lowercase(), value.trim().to_owned()));
            }
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n == "content-length")
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let request = Request {
            method,
            path,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        };
        let n = {
            let mut all = received.lock().unwrap();
            all.push(request);
            all.len()
        };
        let wait = delay.load(Ordering::SeqCst);
        if wait > 0 {
            std::thread::sleep(Duration::from_millis(wait));
        }
        let code = status.load(Ordering::SeqCst);
        let answer = match answer_body.lock().unwrap().as_deref() {
            Some(body) => body.replace("{n}", &n.to_string()),
            None => format!("{{\"status\": \"ok\", \"id\": \"m{n}\"}}"),
        };
        let response = format!(
            "HTTP/1.1 {code} Stub\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
            answer.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}
