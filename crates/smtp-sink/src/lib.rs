//! A scriptable SMTP server on loopback, for tiercare's tests: it records what it receives.
//!
//! [`SmtpSink::start`] binds `127.0.0.1` on a free port and serves each connection on its own
//! thread, speaking enough SMTP for a real client (EHLO/HELO, AUTH PLAIN and LOGIN, MAIL,
//! RCPT, DATA with dot-stuffing, RSET, NOOP, QUIT). Every accepted message is kept as
//! [`Received`], every client line outside DATA as a command, every AUTH as a [`Login`], so a
//! test can check exactly what went over the wire. A [`Script`] makes the server misbehave on
//! purpose (refuse connections, defer, reject, stall or hang up after DATA), with counters so
//! "fail twice, then accept" works across reconnections, and it can be changed while running.
//!
//! It must never be used to deliver mail: it listens on loopback only, never relays or stores
//! anything beyond memory, and speaks no TLS. It depends on nothing but the standard library,
//! and a test never has to sleep to use it ([`SmtpSink::wait_for`] waits on a condition
//! variable).

mod sasl;
mod script;
mod session;

use std::io;
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use script::Counters;
pub use script::{ALWAYS, Script};

/// A message the sink accepted (or read but left unanswered, see [`SmtpSink::unanswered`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// The reverse path given in `MAIL FROM` (empty for the null sender).
    pub mail_from: String,
    /// Every recipient accepted by `RCPT TO`, in order.
    pub rcpt_to: Vec<String>,
    /// The message as received, dot-unstuffed, every other byte kept (a bare LF stays a bare
    /// LF). It ends with the line ending that preceded the final `.` line.
    pub data: Vec<u8>,
}

/// Credentials a client presented with AUTH (recorded whether or not they were accepted).
#[derive(Clone, PartialEq, Eq)]
pub struct Login {
    /// `PLAIN` or `LOGIN`.
    pub mechanism: String,
    /// The user name (authentication identity).
    pub username: String,
    /// The password, as the client sent it.
    pub password: String,
}

impl std::fmt::Debug for Login {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Even a test password should not end up in a CI log by accident.
        f.debug_struct("Login")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A running SMTP server on `127.0.0.1`. Shuts down when dropped.
#[derive(Debug)]
pub struct SmtpSink {
    shared: Arc<Shared>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

/// State shared by the accepting thread, the session threads and the test.
#[derive(Debug)]
pub(crate) struct Shared {
    state: Mutex<State>,
    /// Signalled on every accepted or unanswered message and on listener and shutdown changes.
    pub(crate) changed: Condvar,
}

#[derive(Debug)]
pub(crate) struct State {
    pub(crate) script: Script,
    pub(crate) counters: Counters,
    pub(crate) received: Vec<Received>,
    pub(crate) unanswered: Vec<Received>,
    pub(crate) commands: Vec<String>,
    pub(crate) logins: Vec<Login>,
    connections: usize,
    /// Whether the listener is open right now (it closes while the script is [`Script::down`]).
    listening: bool,
    /// Why the listener could not be opened again after being down, if it could not.
    rebind_error: Option<io::ErrorKind>,
    shutdown: bool,
    /// A handle on every open session socket, so shutdown can unblock their reads.
    open: Vec<(u64, TcpStream)>,
    sessions: Vec<JoinHandle<()>>,
    next_session: u64,
}

impl Shared {
    /// Locks the state. A panicking session thread must not take the test's view down with it,
    /// so a poisoned lock is used as it is.
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn wait<'a>(&self, guard: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(guard)
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl SmtpSink {
    /// Binds `127.0.0.1:0` and starts serving with `script`.
    pub fn start(script: Script) -> io::Result<SmtpSink> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        let addr = listener.local_addr()?;
        let down = script.down;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                counters: Counters::new(&script),
                script,
                received: Vec::new(),
                unanswered: Vec::new(),
                commands: Vec::new(),
                logins: Vec::new(),
                connections: 0,
                listening: !down,
                rebind_error: None,
                shutdown: false,
                open: Vec::new(),
                sessions: Vec::new(),
                next_session: 0,
            }),
            changed: Condvar::new(),
        });
        let listener = if down { None } else { Some(listener) };
        let acceptor = std::thread::Builder::new()
            .name("smtp-sink-accept".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || accept_loop(&shared, listener, addr)
            })?;
        Ok(SmtpSink {
            shared,
            addr,
            acceptor: Some(acceptor),
        })
    }

    /// The address the sink listens on (also while it is down: it comes back on the same one).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The port the sink listens on.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every message accepted so far, in the order the sink answered `250`.
    pub fn received(&self) -> Vec<Received> {
        self.shared.lock().received.clone()
    }

    /// Messages read completely but never answered (stalled or dropped by the script): the
    /// client cannot know whether they were delivered.
    pub fn unanswered(&self) -> Vec<Received> {
        self.shared.lock().unanswered.clone()
    }

    /// Waits until at least `n` messages have been accepted or `timeout` has passed, and returns
    /// what has been accepted by then (fewer than `n` on timeout).
    pub fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, |state| &state.received, n)
    }

    /// Like [`SmtpSink::wait_for`], for [`SmtpSink::unanswered`] messages.
    pub fn wait_for_unanswered(&self, n: usize, timeout: Duration) -> Vec<Received> {
        self.wait_until(timeout, |state| &state.unanswered, n)
    }

    fn wait_until(
        &self,
        timeout: Duration,
        list: impl Fn(&State) -> &Vec<Received>,
        n: usize,
    ) -> Vec<Received> {
        let deadline = Instant::now() + timeout;
        let mut state = self.shared.lock();
        while list(&state).len() < n {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state = self
                .shared
                .changed
                .wait_timeout(state, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        list(&state).clone()
    }

    /// How many TCP connections have been accepted so far, including those greeted with `421`
    /// (connections refused while the sink is down are not counted).
    pub fn connections(&self) -> usize {
        self.shared.lock().connections
    }

    /// Every line a client sent outside DATA content, without its line ending, in order
    /// across all connections (AUTH exchanges included).
    pub fn commands(&self) -> Vec<String> {
        self.shared.lock().commands.clone()
    }

    /// Every AUTH attempt, in order.
    pub fn logins(&self) -> Vec<Login> {
        self.shared.lock().logins.clone()
    }

    /// Replaces the script and restarts its counters; open sessions follow the new script from
    /// their next command. Returns once the listener matches it: closed if the new script is
    /// [`Script::down`], open on the same address otherwise. Fails if the address could not be
    /// bound again.
    pub fn set_script(&self, script: Script) -> io::Result<()> {
        let down = script.down;
        {
            let mut state = self.shared.lock();
            state.counters = Counters::new(&script);
            state.script = script;
            state.rebind_error = None;
            self.shared.changed.notify_all();
        }
        if down {
            // The acceptor is blocked in accept(): a connection wakes it up to close the
            // listener. If the listener is already closed this fails, which is fine.
            let _ = TcpStream::connect(self.addr);
        }
        let mut state = self.shared.lock();
        loop {
            if state.listening != down {
                return Ok(());
            }
            if let Some(kind) = state.rebind_error {
                return Err(io::Error::new(
                    kind,
                    format!("smtp-sink could not listen on {} again", self.addr),
                ));
            }
            if state.shutdown {
                return Err(io::Error::other("smtp-sink has shut down"));
            }
            state = self.shared.wait(state);
        }
    }

    /// Hangs up every open session at once, as a server restart or an idle timeout would, and
    /// returns how many there were. The listener stays open.
    pub fn disconnect_all(&self) -> usize {
        let state = self.shared.lock();
        for (_, stream) in &state.open {
            // The session may have ended on its own already.
            let _ = stream.shutdown(Shutdown::Both);
        }
        state.open.len()
    }

    /// Stops accepting, hangs up every open session (stalled ones included) and joins every
    /// thread. Also done on drop.
    pub fn shutdown(&mut self) {
        let Some(acceptor) = self.acceptor.take() else {
            return;
        };
        {
            let mut state = self.shared.lock();
            state.shutdown = true;
            for (_, stream) in &state.open {
                // The session may have ended on its own already.
                let _ = stream.shutdown(Shutdown::Both);
            }
            self.shared.changed.notify_all();
        }
        // Wake the acceptor if it is blocked in accept(); it fails if the listener is closed.
        let _ = TcpStream::connect(self.addr);
        // A panic in the acceptor has already been reported on stderr; nothing to add here.
        let _ = acceptor.join();
        let sessions = std::mem::take(&mut self.shared.lock().sessions);
        for session in sessions {
            let _ = session.join();
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Accepts connections until shutdown, closing the listener while the script is down and
/// opening it again (same address) when it is not.
fn accept_loop(shared: &Arc<Shared>, mut listener: Option<TcpListener>, addr: SocketAddr) {
    loop {
        let Some(open) = &listener else {
            let mut state = shared.lock();
            while !state.shutdown && state.script.down {
                state = shared.wait(state);
            }
            if state.shutdown {
                return;
            }
            drop(state);
            let bound = TcpListener::bind(addr);
            let mut state = shared.lock();
            match bound {
                Ok(bound) => {
                    listener = Some(bound);
                    state.listening = true;
                }
                Err(error) => {
                    state.rebind_error = Some(error.kind());
                    // Wait for another script rather than spinning on bind.
                    state.script.down = true;
                }
            }
            shared.changed.notify_all();
            continue;
        };
        let accepted = open.accept();
        let mut state = shared.lock();
        if state.shutdown {
            return;
        }
        if state.script.down {
            // Dropping the listener makes the OS refuse connections from now on.
            listener = None;
            state.listening = false;
            shared.changed.notify_all();
            continue;
        }
        let Ok((stream, _)) = accepted else {
            continue;
        };
        let Ok(handle) = stream.try_clone() else {
            continue;
        };
        state.connections += 1;
        let id = state.next_session;
        state.next_session += 1;
        state.open.push((id, handle));
        state.sessions.retain(|session| !session.is_finished());
        let spawned = std::thread::Builder::new()
            .name(format!("smtp-sink-session-{id}"))
            .spawn({
                let shared = Arc::clone(shared);
                move || {
                    session::serve(&shared, stream);
                    shared.lock().open.retain(|(open_id, _)| *open_id != id);
                }
            });
        match spawned {
            Ok(session) => state.sessions.push(session),
            Err(_) => state.open.retain(|(open_id, _)| *open_id != id),
        }
    }
}

#[cfg(test)]
mod tests;
