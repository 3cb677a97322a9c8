//! The sink tested with a raw client: byte-exact requests, reply codes checked line by line.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use super::*;

/// A line-at-a-time SMTP client that checks reply codes.
struct Client {
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl Client {
    fn connect(sink: &SmtpSink) -> Client {
        let stream = TcpStream::connect(sink.addr()).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        Client {
            reader: BufReader::new(stream.try_clone().expect("clone")),
            writer: stream,
        }
    }

    /// Reads one reply (all its lines) and returns its code and last line.
    fn reply(&mut self) -> (u16, String) {
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("read reply");
            assert!(n > 0, "connection closed while waiting for a reply");
            if line.as_bytes().get(3) != Some(&b'-') {
                let code = line[..3].parse().expect("reply code");
                return (code, line.trim_end().to_owned());
            }
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        self.writer.write_all(bytes).expect("write");
    }

    /// Sends one command line and returns the reply code.
    fn command(&mut self, line: &str) -> u16 {
        self.send(format!("{line}\r\n").as_bytes());
        self.reply().0
    }

    fn greet(sink: &SmtpSink) -> Client {
        let mut client = Client::connect(sink);
        assert_eq!(client.reply().0, 220);
        assert_eq!(client.command("EHLO test.invalid"), 250);
        client
    }

    /// Runs one transaction up to the end of DATA and returns the final reply code.
    fn transaction(&mut self, from: &str, to: &str, content: &[u8]) -> u16 {
        assert_eq!(self.command(&format!("MAIL FROM:<{from}>")), 250);
        assert_eq!(self.command(&format!("RCPT TO:<{to}>")), 250);
        assert_eq!(self.command("DATA"), 354);
        self.send(content);
        self.send(b".\r\n");
        self.reply().0
    }

    /// True once the server has closed the connection (EOF or reset).
    fn closed(&mut self) -> bool {
        let mut byte = [0u8; 1];
        match self.reader.read(&mut byte) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => {
                error.kind() != ErrorKind::WouldBlock && error.kind() != ErrorKind::TimedOut
            }
        }
    }
}

const WAIT: Duration = Duration::from_secs(10);

#[test]
fn records_a_message_with_dot_unstuffing_and_bare_lf_kept() {
    let sink = SmtpSink::start(Script::accept_all()).expect("start");
    let mut client = Client::greet(&sink);
    let content = b"Subject: hi\r\n\r\n..leading dot\r\nbare\nlf\r\n";
    assert_eq!(
        client.transaction("a@example.com", "b@example.com", content),
        250
    );
    assert_eq!(client.command("QUIT"), 221);

    let received = sink.wait_for(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].mail_from, "a@example.com");
    assert_eq!(received[0].rcpt_to, ["b@example.com"]);
    assert_eq!(
        received[0].data,
        b"Subject: hi\r\n\r\n.leading dot\r\nbare\nlf\r\n"
    );
    assert_eq!(sink.connections(), 1);
    assert_eq!(
        sink.commands(),
        [
            "EHLO test.invalid",
            "MAIL FROM:<a@example.com>",
            "RCPT TO:<b@example.com>",
            "DATA",
            "QUIT"
        ]
    );
}

#[test]
fn tolerates_lines_longer_than_1000_bytes() {
    let sink = SmtpSink::start(Script::accept_all()).expect("start");
    let mut client = Client::greet(&sink);
    let long = format!("X-Long: {}\r\n\r\nbody\r\n", "y".repeat(5000));
    assert_eq!(
        client.transaction("a@example.com", "b@example.com", long.as_bytes()),
        250
    );
    assert_eq!(sink.wait_for(1, WAIT)[0].data, long.as_bytes());
}

#[test]
fn records_auth_plain_and_login() {
    let sink = SmtpSink::start(Script::accept_all()).expect("start");
    let mut plain = Client::greet(&sink);
    // "\0user\0secret"
    assert_eq!(plain.command("AUTH PLAIN AHVzZXIAc2VjcmV0"), 235);

    let mut login = Client::greet(&sink);
    login.send(b"AUTH LOGIN\r\n");
    assert_eq!(login.reply(), (334, "334 VXNlcm5hbWU6".to_owned()));
    login.send(b"dXNlcg==\r\n");
    assert_eq!(login.reply(), (334, "334 UGFzc3dvcmQ6".to_owned()));
    assert_eq!(login.command("c2VjcmV0"), 235);

    let logins = sink.logins();
    assert_eq!(logins.len(), 2);
    for (login, mechanism) in logins.iter().zip(["PLAIN", "LOGIN"]) {
        assert_eq!(login.mechanism, mechanism);
        assert_eq!(login.username, "user");
        assert_eq!(login.password, "secret");
    }
    assert!(!format!("{logins:?}").contains("secret"));
}

#[test]
fn required_auth_refuses_mail_and_wrong_passwords() {
    let sink = SmtpSink::start(Script::accept_all().require_auth("user", "right")).expect("start");
    let mut client = Client::greet(&sink);
    assert_eq!(client.command("MAIL FROM:<a@example.com>"), 530);
    // "\0user\0wrong"
    assert_eq!(client.command("AUTH PLAIN AHVzZXIAd3Jvbmc="), 535);
    // "\0user\0right"
    assert_eq!(client.command("AUTH PLAIN AHVzZXIAcmlnaHQ="), 235);
    assert_eq!(
        client.transaction("a@example.com", "b@example.com", b"x\r\n"),
        250
    );
}

#[test]
fn counted_failures_run_out_across_connections() {
    let sink =
        SmtpSink::start(Script::accept_all().greet_421(1).rcpt_451(1).data_451(1)).expect("start");

    let mut first = Client::connect(&sink);
    assert_eq!(first.reply().0, 421);
    assert!(first.closed());

    let mut second = Client::greet(&sink);
    assert_eq!(second.command("MAIL FROM:<a@example.com>"), 250);
    assert_eq!(second.command("RCPT TO:<b@example.com>"), 451);
    assert_eq!(
        second.command("RCPT TO:<c@example.com>"),
        451,
        "same transaction stays deferred"
    );
    assert_eq!(second.command("RSET"), 250);
    assert_eq!(second.command("QUIT"), 221);

    let mut third = Client::greet(&sink);
    assert_eq!(
        third.transaction("a@example.com", "b@example.com", b"x\r\n"),
        451
    );
    assert_eq!(
        third.transaction("a@example.com", "b@example.com", b"y\r\n"),
        250
    );
    let received = sink.wait_for(1, WAIT);
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].data, b"y\r\n");
    assert_eq!(sink.connections(), 3);
}

#[test]
fn rejects_listed_recipients_every_time() {
    let sink =
        SmtpSink::start(Script::accept_all().reject_rcpt("Gone@Example.com")).expect("start");
    let mut client = Client::greet(&sink);
    assert_eq!(client.command("MAIL FROM:<a@example.com>"), 250);
    assert_eq!(client.command("RCPT TO:<gone@example.com>"), 550);
    assert_eq!(client.command("RCPT TO:<gone@example.com>"), 550);
    assert_eq!(client.command("DATA"), 554);
}

#[test]
fn stalls_after_data_until_the_client_gives_up() {
    let sink = SmtpSink::start(Script::accept_all().stall_after_data(1)).expect("start");
    let mut client = Client::greet(&sink);
    client
        .writer
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    assert_eq!(client.command("MAIL FROM:<a@example.com>"), 250);
    assert_eq!(client.command("RCPT TO:<b@example.com>"), 250);
    assert_eq!(client.command("DATA"), 354);
    client.send(b"stalled\r\n.\r\n");
    let mut byte = [0u8; 1];
    let error = client
        .reader
        .read(&mut byte)
        .expect_err("no answer expected");
    assert!(matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));
    assert_eq!(sink.wait_for_unanswered(1, WAIT).len(), 1);
    assert!(sink.received().is_empty());

    // The counter ran out: the next connection is answered.
    let mut next = Client::greet(&sink);
    assert_eq!(
        next.transaction("a@example.com", "b@example.com", b"ok\r\n"),
        250
    );
}

#[test]
fn drops_after_data_without_answering() {
    let sink = SmtpSink::start(Script::accept_all().drop_after_data(1)).expect("start");
    let mut client = Client::greet(&sink);
    assert_eq!(client.command("MAIL FROM:<a@example.com>"), 250);
    assert_eq!(client.command("RCPT TO:<b@example.com>"), 250);
    assert_eq!(client.command("DATA"), 354);
    client.send(b"dropped\r\n.\r\n");
    assert!(client.closed());
    assert_eq!(sink.wait_for_unanswered(1, WAIT)[0].data, b"dropped\r\n");
}

#[test]
fn goes_down_and_comes_back_on_the_same_port() {
    let sink = SmtpSink::start(Script::accept_all()).expect("start");
    let addr = sink.addr();
    sink.set_script(Script::down()).expect("down");
    let error = TcpStream::connect(addr).expect_err("refused while down");
    assert_eq!(error.kind(), ErrorKind::ConnectionRefused);

    sink.set_script(Script::accept_all()).expect("up");
    assert_eq!(sink.addr(), addr);
    let mut client = Client::greet(&sink);
    assert_eq!(
        client.transaction("a@example.com", "b@example.com", b"back\r\n"),
        250
    );
    assert_eq!(sink.connections(), 1, "refused connections are not counted");
}

#[test]
fn starts_down_when_asked() {
    let sink = SmtpSink::start(Script::down()).expect("start");
    assert_eq!(
        TcpStream::connect(sink.addr()).expect_err("refused").kind(),
        ErrorKind::ConnectionRefused
    );
}

#[test]
fn shutdown_hangs_up_stalled_sessions() {
    let mut sink = SmtpSink::start(Script::accept_all().stall_after_data(ALWAYS)).expect("start");
    let mut client = Client::greet(&sink);
    assert_eq!(client.command("MAIL FROM:<a@example.com>"), 250);
    assert_eq!(client.command("RCPT TO:<b@example.com>"), 250);
    assert_eq!(client.command("DATA"), 354);
    client.send(b"x\r\n.\r\n");
    assert_eq!(sink.wait_for_unanswered(1, WAIT).len(), 1);
    sink.shutdown();
    assert!(client.closed());
    assert_eq!(
        TcpStream::connect(sink.addr()).expect_err("closed").kind(),
        ErrorKind::ConnectionRefused
    );
}

#[test]
fn wait_for_returns_what_arrived_on_timeout() {
    let sink = SmtpSink::start(Script::accept_all()).expect("start");
    assert!(sink.wait_for(1, Duration::from_millis(20)).is_empty());
}

#[test]
fn stalls_on_rcpt_without_reading_content() {
    let sink = SmtpSink::start(Script::accept_all().stall_on_rcpt(1)).expect("start");
    let mut client = Client::greet(&sink);
    client
        .writer
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    assert_eq!(client.command("MAIL FROM:<a@example.com>"), 250);
    client.send(b"RCPT TO:<b@example.com>\r\n");
    let mut byte = [0u8; 1];
    let error = client
        .reader
        .read(&mut byte)
        .expect_err("no answer expected");
    assert!(matches!(
        error.kind(),
        ErrorKind::WouldBlock | ErrorKind::TimedOut
    ));

    let mut next = Client::greet(&sink);
    assert_eq!(
        next.transaction("a@example.com", "b@example.com", b"ok\r\n"),
        250
    );
}

#[test]
fn disconnect_all_hangs_up_open_sessions() {
    let sink = SmtpSink::start(Script::accept_all()).expect("start");
    let mut first = Client::greet(&sink);
    let mut second = Client::greet(&sink);
    assert_eq!(sink.disconnect_all(), 2);
    assert!(first.closed());
    assert!(second.closed());
    let mut third = Client::greet(&sink);
    assert_eq!(
        third.transaction("a@example.com", "b@example.com", b"ok\r\n"),
        250
    );
}
