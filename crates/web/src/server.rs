//! Running the server: bound at once (so a taken port is an error before anything starts), then
//! served on a thread of its own with a tokio runtime of its own (HTTP/1 through hyper, with a
//! header read timeout), until [`ServerHandle::stop`]: a graceful shutdown in which requests
//! under way finish (and idle connections close), for at most the request timeout and five
//! seconds.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::sync::watch;
use tower::ServiceExt;

use crate::{AppState, router};

/// Why the server could not run.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// The address could not be bound.
    #[error(
        "cannot listen on {address}: {source} (choose another address with `listen` in [http] \
         of tiercare.toml, or stop what uses it)"
    )]
    Bind {
        /// The address.
        address: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// The runtime or the listener failed.
    #[error("the web server failed: {0}")]
    Io(#[from] std::io::Error),
    /// The server thread panicked.
    #[error("the web server's thread stopped unexpectedly")]
    Panicked,
}

/// A server running on its own thread.
#[derive(Debug)]
pub struct ServerHandle {
    address: SocketAddr,
    stop: watch::Sender<bool>,
    thread: Option<JoinHandle<Result<(), WebError>>>,
}

impl ServerHandle {
    /// The address it listens on (the port chosen when `listen` had port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Stops accepting, lets requests under way finish, and waits for the thread.
    pub fn stop(mut self) -> Result<(), WebError> {
        self.stop_and_join()
    }

    fn stop_and_join(&mut self) -> Result<(), WebError> {
        let _ = self.stop.send(true);
        match self.thread.take() {
            Some(thread) => thread.join().map_err(|_| WebError::Panicked)?,
            None => Ok(()),
        }
    }

    /// Whether the server thread has ended (it failed, or was stopped).
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        let _ = self.stop_and_join();
    }
}

/// Binds `state`'s `[http] listen` address and serves the application on a new thread.
pub fn spawn(state: AppState) -> Result<ServerHandle, WebError> {
    let address = state.config().listen;
    let timeout = Duration::from_secs(state.config().timeout_seconds);
    let grace = timeout + Duration::from_secs(5);
    let listener = std::net::TcpListener::bind(address)
        .map_err(|source| WebError::Bind { address, source })?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let (stop, mut stopped) = watch::channel(false);
    let app = router(Arc::new(state));
    let thread = std::thread::Builder::new()
        .name("tiercare-web".to_owned())
        .spawn(move || -> Result<(), WebError> {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener)?;
                let graceful = GracefulShutdown::new();
                let mut http = hyper::server::conn::http1::Builder::new();
                // A client that never finishes its headers is cut off (the request timeout
                // only starts once they are read).
                http.timer(TokioTimer::new()).header_read_timeout(timeout);
                loop {
                    let (stream, peer) = tokio::select! {
                        accepted = listener.accept() => match accepted {
                            Ok(accepted) => accepted,
                            Err(err) => {
                                // Out of file descriptors, say: wait a moment, not a busy loop.
                                tracing::warn!(error = %err, "cannot accept a connection");
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        },
                        _ = stopped.wait_for(|stop| *stop) => break,
                    };
                    let app = app.clone();
                    let service = hyper::service::service_fn(
                        move |mut request: hyper::Request<hyper::body::Incoming>| {
                            request.extensions_mut().insert(ConnectInfo(peer));
                            app.clone().oneshot(request)
                        },
                    );
                    let connection =
                        graceful.watch(http.serve_connection(TokioIo::new(stream), service));
                    tokio::spawn(async move {
                        let _ = connection.await;
                    });
                }
                drop(listener);
                tokio::select! {
                    () = graceful.shutdown() => {}
                    () = tokio::time::sleep(grace) => {
                        tracing::warn!(
                            grace_seconds = grace.as_secs(),
                            "web requests still under way at shutdown were cut off"
                        );
                    }
                }
                Ok::<(), WebError>(())
            })?;
            tracing::info!("web server stopped");
            Ok(())
        })?;
    tracing::info!(address = %local, "web server listening");
    Ok(ServerHandle {
        address: local,
        stop,
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpStream;

    use tiercare_scheduler::http_config::HttpConfig;
    use tiercare_scheduler::mail::TokenSigner;
    use tiercare_store::Store;

    use super::*;

    #[test]
    fn a_request_under_way_at_shutdown_is_answered_and_then_nothing_listens() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let token = signer.token("ada@example.com", 1, 100);
        let mut store = Store::open_in_memory().unwrap();
        store.set_address_keys(signer.address_keys().clone());
        let config = HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            ..HttpConfig::default()
        };
        let server = spawn(AppState::new(store, signer, config, || 100)).unwrap();
        let address = server.local_addr();
        // A one-click POST under way: its headers read and its handler waiting for the body
        // (the server's "100 Continue" says so) when the server is told to stop.
        let body = "List-Unsubscribe=One-Click";
        let mut client = TcpStream::connect(address).unwrap();
        write!(
            client,
            "POST /unsubscribe?token={token} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\n\
             Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n",
            body.len(),
        )
        .unwrap();
        client.flush().unwrap();
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            client.read_exact(&mut byte).unwrap();
            head.push(byte[0]);
        }
        assert!(head.starts_with(b"HTTP/1.1 100 Continue"), "{head:?}");
        let stopping = std::thread::spawn(move || server.stop());
        // The stop has begun once nothing new is accepted; the request under way goes on.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(address).is_ok() {
            assert!(std::time::Instant::now() < deadline, "still accepting");
            std::thread::sleep(Duration::from_millis(10));
        }
        client.write_all(body.as_bytes()).unwrap();
        let mut answer = String::new();
        client.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        stopping.join().unwrap().unwrap();
    }

    #[test]
    fn a_client_that_never_finishes_its_headers_is_cut_off() {
        let signer = TokenSigner::new(b"0123456789abcdef-secret", None).unwrap();
        let config = HttpConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            timeout_seconds: 1,
            ..HttpConfig::default()
        };
        let store = Store::open_in_memory().unwrap();
        let server = spawn(AppState::new(store, signer, config, || 100)).unwrap();
        let mut client = TcpStream::connect(server.local_addr()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        client
            .write_all(b"GET /unsubscribe HTTP/1.1\r\nHost: x\r\n")
            .unwrap();
        let started = std::time::Instant::now();
        let mut rest = Vec::new();
        // The server closes the connection (an error or the end of the stream, not our own
        // 20-second read timeout).
        let _ = client.read_to_end(&mut rest);
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "held for {:?}",
            started.elapsed()
        );
        server.stop().unwrap();
    }
}
