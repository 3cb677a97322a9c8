//! One SMTP session: the server side of a single connection, as the current script dictates.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};

use crate::script::{AfterData, take};
use crate::{Login, Received, Shared, sasl};

/// The host name the sink gives in its greeting and EHLO reply.
const HOSTNAME: &str = "smtp-sink.invalid";

/// Serves one accepted connection until the client quits, the connection ends, or the script
/// says to drop it. IO errors simply end the session: the client sees a broken connection.
pub(crate) fn serve(shared: &Shared, stream: TcpStream) {
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut session = Session {
        shared,
        reader: BufReader::new(read_half),
        writer: stream,
        authenticated: false,
        mail_from: None,
        rcpt_to: Vec::new(),
        deferred_rcpt: false,
    };
    // An error here means the client went away or the sink is shutting down; either way the
    // session is over and there is nobody to tell.
    let _ = session.run();
}

struct Session<'a> {
    shared: &'a Shared,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    authenticated: bool,
    mail_from: Option<String>,
    rcpt_to: Vec<String>,
    /// This transaction's RCPT has been deferred once (`rcpt_451` counts transactions).
    deferred_rcpt: bool,
}

impl Session<'_> {
    fn run(&mut self) -> io::Result<()> {
        if take(&mut self.shared.lock().counters.greet_421) {
            self.reply("421 4.3.2 try later")?;
            return self.writer.shutdown(Shutdown::Both);
        }
        self.reply(&format!("220 {HOSTNAME} ESMTP smtp-sink"))?;
        loop {
            let Some(line) = self.read_command()? else {
                return Ok(());
            };
            let (verb, rest) = match line.split_once(' ') {
                Some((verb, rest)) => (verb, rest.trim()),
                None => (line.as_str(), ""),
            };
            match verb.to_ascii_uppercase().as_str() {
                "EHLO" => {
                    self.reset();
                    self.reply(&format!(
                        "250-{HOSTNAME} greets {rest}\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n\
                         250-AUTH PLAIN LOGIN\r\n250 ENHANCEDSTATUSCODES"
                    ))?;
                }
                "HELO" => {
                    self.reset();
                    self.reply(&format!("250 {HOSTNAME}"))?;
                }
                "AUTH" => self.auth(rest)?,
                "MAIL" => self.mail(rest)?,
                "RCPT" => self.rcpt(rest)?,
                "DATA" => {
                    if !self.data()? {
                        return Ok(());
                    }
                }
                "RSET" => {
                    self.reset();
                    self.reply("250 2.0.0 Ok")?;
                }
                "NOOP" => self.reply("250 2.0.0 Ok")?,
                "VRFY" => self.reply("252 2.1.5 Cannot verify, will attempt delivery")?,
                "QUIT" => {
                    self.reply("221 2.0.0 Bye")?;
                    return Ok(());
                }
                _ => self.reply("500 5.5.2 Command not recognized")?,
            }
        }
    }

    /// Reads one client line outside DATA, records it, and returns it without its line ending.
    /// `None` when the client closed the connection.
    fn read_command(&mut self) -> io::Result<Option<String>> {
        let mut line = Vec::new();
        if self.reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(None);
        }
        let text = String::from_utf8_lossy(trim_line_ending(&line)).into_owned();
        self.shared.lock().commands.push(text.clone());
        Ok(Some(text))
    }

    fn reply(&mut self, text: &str) -> io::Result<()> {
        let mut out = Vec::with_capacity(text.len() + 2);
        out.extend_from_slice(text.as_bytes());
        out.extend_from_slice(b"\r\n");
        self.writer.write_all(&out)
    }

    fn reset(&mut self) {
        self.mail_from = None;
        self.rcpt_to.clear();
        self.deferred_rcpt = false;
    }

    fn auth(&mut self, rest: &str) -> io::Result<()> {
        if self.authenticated {
            return self.reply("503 5.5.1 Already authenticated");
        }
        let mut words = rest.split_whitespace();
        let mechanism = words.next().unwrap_or_default().to_ascii_uppercase();
        let initial = words.next().map(str::to_owned);
        let credentials = match mechanism.as_str() {
            "PLAIN" => {
                let payload = match initial {
                    Some(payload) => payload,
                    None => match self.challenge("")? {
                        Some(payload) => payload,
                        None => return Ok(()),
                    },
                };
                sasl::decode_base64(&payload).and_then(|bytes| sasl::split_plain(&bytes))
            }
            "LOGIN" => {
                let username = match initial {
                    Some(username) => Some(username),
                    None => self.challenge("VXNlcm5hbWU6")?,
                };
                let Some(username) = username else {
                    return Ok(());
                };
                let Some(password) = self.challenge("UGFzc3dvcmQ6")? else {
                    return Ok(());
                };
                sasl::decode_text(&username).zip(sasl::decode_text(&password))
            }
            _ => return self.reply("504 5.5.4 Unrecognized authentication type"),
        };
        let Some((username, password)) = credentials else {
            return self.reply("501 5.5.2 Cannot decode the response");
        };
        let accepted = {
            let mut state = self.shared.lock();
            state.logins.push(Login {
                mechanism: mechanism.clone(),
                username: username.clone(),
                password: password.clone(),
            });
            match &state.script.require_auth {
                Some((user, pass)) => *user == username && *pass == password,
                None => true,
            }
        };
        if accepted {
            self.authenticated = true;
            self.reply("235 2.7.0 Authentication successful")
        } else {
            self.reply("535 5.7.8 Authentication credentials invalid")
        }
    }

    /// Sends a `334` challenge and reads the client's answer. `None` if the client cancelled
    /// (`*`, answered here) or went away.
    fn challenge(&mut self, challenge: &str) -> io::Result<Option<String>> {
        self.reply(&format!("334 {challenge}"))?;
        match self.read_command()? {
            Some(answer) if answer == "*" => {
                self.reply("501 5.7.0 Authentication cancelled")?;
                Ok(None)
            }
            answer => Ok(answer),
        }
    }

    fn mail(&mut self, rest: &str) -> io::Result<()> {
        let auth_required = self.shared.lock().script.require_auth.is_some();
        if auth_required && !self.authenticated {
            return self.reply("530 5.7.0 Authentication required");
        }
        if self.mail_from.is_some() {
            return self.reply("503 5.5.1 Nested MAIL command");
        }
        match parse_path(rest, "FROM:") {
            Some(from) => {
                self.mail_from = Some(from);
                self.reply("250 2.1.0 Ok")
            }
            None => self.reply("501 5.5.4 Syntax: MAIL FROM:<address>"),
        }
    }

    fn rcpt(&mut self, rest: &str) -> io::Result<()> {
        if self.mail_from.is_none() {
            return self.reply("503 5.5.1 Need MAIL before RCPT");
        }
        let Some(to) = parse_path(rest, "TO:") else {
            return self.reply("501 5.5.4 Syntax: RCPT TO:<address>");
        };
        let answer = {
            let mut state = self.shared.lock();
            if take(&mut state.counters.stall_on_rcpt) {
                drop(state);
                return self.hold();
            }
            if state
                .script
                .reject_rcpt
                .iter()
                .any(|rejected| rejected.eq_ignore_ascii_case(&to))
            {
                // As real servers do, the reply quotes the address.
                format!("550 5.1.1 <{to}>: no such user")
            } else if state.script.throttle_domain.iter().any(|domain| {
                to.rsplit_once('@')
                    .is_some_and(|(_, at)| at.eq_ignore_ascii_case(domain))
            }) {
                format!("421 4.7.28 <{to}>: rate limited, try again later")
            } else if self.deferred_rcpt || take(&mut state.counters.rcpt_451) {
                self.deferred_rcpt = true;
                "451 4.7.1 try again later".to_owned()
            } else {
                self.rcpt_to.push(to);
                "250 2.1.5 Ok".to_owned()
            }
        };
        self.reply(&answer)
    }

    /// Handles DATA. Returns false when the session must end (connection lost, dropped or
    /// stalled by the script).
    fn data(&mut self) -> io::Result<bool> {
        if self.mail_from.is_none() {
            self.reply("503 5.5.1 Need MAIL before DATA")?;
            return Ok(true);
        }
        if self.rcpt_to.is_empty() {
            self.reply("554 5.5.1 No valid recipients")?;
            return Ok(true);
        }
        self.reply("354 End data with <CR><LF>.<CR><LF>")?;
        if take(&mut self.shared.lock().counters.drop_in_data) {
            // Read a few bytes of the content and close with the rest unread, as a server
            // that dies mid-message does: the kernel resets the connection.
            let mut first = [0_u8; 16];
            let _ = self.reader.get_mut().read(&mut first)?;
            return Ok(false);
        }
        let Some(data) = self.read_message()? else {
            return Ok(false);
        };
        let received = Received {
            mail_from: self.mail_from.take().unwrap_or_default(),
            rcpt_to: std::mem::take(&mut self.rcpt_to),
            data,
        };
        self.reset();
        let (behaviour, queue_id, delay) = {
            let mut state = self.shared.lock();
            let behaviour = state.counters.after_data();
            match behaviour {
                AfterData::Accept => state.received.push(received),
                AfterData::Stall | AfterData::Drop => state.unanswered.push(received),
                AfterData::Defer => {}
            }
            let queue_id = state.received.len();
            self.shared.changed.notify_all();
            (behaviour, queue_id, state.script.answer_delay)
        };
        match behaviour {
            AfterData::Accept => {
                if !delay.is_zero() {
                    std::thread::sleep(delay);
                }
                self.reply(&format!("250 2.0.0 Ok: queued as {queue_id}"))?;
                Ok(true)
            }
            AfterData::Defer => {
                self.reply("451 4.7.1 try again later")?;
                Ok(true)
            }
            AfterData::Drop => {
                self.writer.shutdown(Shutdown::Both)?;
                Ok(false)
            }
            AfterData::Stall => {
                self.hold()?;
                Ok(false)
            }
        }
    }

    /// Holds the socket and says nothing until the client gives up or the sink shuts down
    /// (which shuts this socket down and ends the read).
    fn hold(&mut self) -> io::Result<()> {
        let mut ignored = [0u8; 4096];
        while self.reader.read(&mut ignored)? > 0 {}
        Err(io::Error::new(
            io::ErrorKind::ConnectionAborted,
            "the client gave up on a stalled session",
        ))
    }

    /// Reads message content up to the lone `.` line, undoing dot-stuffing and keeping every
    /// other byte as received (bare LF included). `None` if the connection ended first.
    fn read_message(&mut self) -> io::Result<Option<Vec<u8>>> {
        let mut data = Vec::new();
        let mut line = Vec::new();
        loop {
            line.clear();
            if self.reader.read_until(b'\n', &mut line)? == 0 {
                return Ok(None);
            }
            if line == b".\r\n" {
                return Ok(Some(data));
            }
            let content = line.strip_prefix(b".").unwrap_or(&line);
            data.extend_from_slice(content);
        }
    }
}

fn trim_line_ending(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Parses `FROM:<path> params` or `TO:<path> params` (the keyword without regard to case);
/// returns the path between the angle brackets (empty for the null sender `<>`).
fn parse_path(rest: &str, keyword: &str) -> Option<String> {
    let head = rest.get(..keyword.len())?;
    if !head.eq_ignore_ascii_case(keyword) {
        return None;
    }
    let path = rest[keyword.len()..].trim_start().strip_prefix('<')?;
    let end = path.find('>')?;
    Some(path[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_paths_with_parameters() {
        assert_eq!(
            parse_path("FROM:<a@example.com> BODY=8BITMIME", "FROM:").as_deref(),
            Some("a@example.com")
        );
        assert_eq!(parse_path("from: <>", "FROM:").as_deref(), Some(""));
        assert_eq!(parse_path("TO:a@example.com", "TO:"), None);
        assert_eq!(parse_path("", "TO:"), None);
    }
}
