//! [`Script`]: how the sink behaves, and the counters that let it fail a few times then recover.

/// A count meaning "every time": the behaviour never runs out.
pub const ALWAYS: u32 = u32::MAX;

/// How the sink behaves. Behaviours combine; the counted ones ("the first N messages") are
/// consumed across connections, so "fail twice, then accept" works however the client
/// reconnects. Setting a script with [`SmtpSink::set_script`](crate::SmtpSink::set_script)
/// restarts every counter.
///
/// At the end of DATA each message consumes at most one behaviour, checked in this order:
/// stall, drop, `451`; a message that meets none is accepted. So
/// `Script::accept_all().stall_after_data(1).data_451(1)` stalls the first message, defers the
/// second and accepts the rest.
///
/// A count of [`ALWAYS`] never runs out.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    pub(crate) down: bool,
    pub(crate) greet_421: u32,
    pub(crate) rcpt_451: u32,
    pub(crate) stall_on_rcpt: u32,
    pub(crate) data_451: u32,
    pub(crate) reject_rcpt: Vec<String>,
    pub(crate) throttle_domain: Vec<String>,
    pub(crate) stall_after_data: u32,
    pub(crate) drop_after_data: u32,
    pub(crate) drop_in_data: u32,
    pub(crate) answer_delay: std::time::Duration,
    pub(crate) require_auth: Option<(String, String)>,
}

impl Script {
    /// Accepts every message.
    pub fn accept_all() -> Script {
        Script::default()
    }

    /// The listener is closed: the operating system refuses connections until a script that is
    /// not down is set (the sink then listens on the same port again).
    pub fn down() -> Script {
        Script {
            down: true,
            ..Script::default()
        }
    }

    /// The first `n` connections are greeted with `421 4.3.2 try later` and closed.
    pub fn greet_421(mut self, n: u32) -> Script {
        self.greet_421 = n;
        self
    }

    /// RCPT is answered `451 4.7.1 try again later` in the first `n` transactions.
    pub fn rcpt_451(mut self, n: u32) -> Script {
        self.rcpt_451 = n;
        self
    }

    /// RCPT is never answered in the first `n` transactions: the sink holds the socket until
    /// the client gives up (or the sink shuts down). The message content is never sent.
    pub fn stall_on_rcpt(mut self, n: u32) -> Script {
        self.stall_on_rcpt = n;
        self
    }

    /// The end of DATA is answered `451 4.7.1 try again later` for the first `n` messages.
    pub fn data_451(mut self, n: u32) -> Script {
        self.data_451 = n;
        self
    }

    /// RCPT for `address` (compared without regard to ASCII case) is answered
    /// `550 5.1.1 <address>: no such user`, every time.
    pub fn reject_rcpt(mut self, address: impl Into<String>) -> Script {
        self.reject_rcpt.push(address.into());
        self
    }

    /// RCPT for any address at `domain` (compared without regard to ASCII case) is answered
    /// `421 4.7.28 ... rate limited, try again later`, every time, as Gmail and Yahoo throttle a
    /// sender; the connection stays open for other recipients.
    pub fn throttle_domain(mut self, domain: impl Into<String>) -> Script {
        self.throttle_domain.push(domain.into());
        self
    }

    /// For the first `n` messages the sink reads the whole message and never answers: it holds
    /// the socket until the client gives up (or the sink shuts down). Such messages are listed
    /// by [`SmtpSink::unanswered`](crate::SmtpSink::unanswered), not as received.
    pub fn stall_after_data(mut self, n: u32) -> Script {
        self.stall_after_data = n;
        self
    }

    /// For the first `n` messages the sink reads the whole message and closes the connection
    /// without answering. Such messages are listed by
    /// [`SmtpSink::unanswered`](crate::SmtpSink::unanswered), not as received.
    pub fn drop_after_data(mut self, n: u32) -> Script {
        self.drop_after_data = n;
        self
    }

    /// For the first `n` messages the sink answers DATA with `354`, reads a few bytes of the
    /// content and closes the connection with the rest unread (the kernel then resets it, as
    /// when a server dies mid-message): the final `.` is never read, so nothing is stored (the
    /// message is neither received nor unanswered).
    pub fn drop_in_data(mut self, n: u32) -> Script {
        self.drop_in_data = n;
        self
    }

    /// Every accepted message is stored at once (listed as received) and answered `250` only
    /// after `delay`: a slow server, and a window in which a sender that dies leaves a message
    /// delivered but not recorded.
    pub fn answer_delay(mut self, delay: std::time::Duration) -> Script {
        self.answer_delay = delay;
        self
    }

    /// MAIL is refused with `530 5.7.0` until the client has authenticated, and only these
    /// credentials are accepted (`535 5.7.8` otherwise). Without this, any credentials are
    /// accepted (and recorded) and AUTH is optional.
    pub fn require_auth(
        mut self,
        username: impl Into<String>,
        password: impl Into<String>,
    ) -> Script {
        self.require_auth = Some((username.into(), password.into()));
        self
    }
}

/// What is left of a script's counted behaviours.
#[derive(Debug, Clone, Default)]
pub(crate) struct Counters {
    pub(crate) greet_421: u32,
    pub(crate) rcpt_451: u32,
    pub(crate) stall_on_rcpt: u32,
    pub(crate) data_451: u32,
    pub(crate) stall_after_data: u32,
    pub(crate) drop_after_data: u32,
    pub(crate) drop_in_data: u32,
}

impl Counters {
    /// Fresh counters for `script`.
    pub(crate) fn new(script: &Script) -> Counters {
        Counters {
            greet_421: script.greet_421,
            rcpt_451: script.rcpt_451,
            stall_on_rcpt: script.stall_on_rcpt,
            data_451: script.data_451,
            stall_after_data: script.stall_after_data,
            drop_after_data: script.drop_after_data,
            drop_in_data: script.drop_in_data,
        }
    }
}

/// Takes one use of a counted behaviour: true if it applies this time.
pub(crate) fn take(counter: &mut u32) -> bool {
    match *counter {
        0 => false,
        ALWAYS => true,
        _ => {
            *counter -= 1;
            true
        }
    }
}

/// What the sink does at the end of DATA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterData {
    Accept,
    Defer,
    Stall,
    Drop,
}

impl Counters {
    /// Consumes the behaviour for the message whose DATA just ended.
    pub(crate) fn after_data(&mut self) -> AfterData {
        if take(&mut self.stall_after_data) {
            AfterData::Stall
        } else if take(&mut self.drop_after_data) {
            AfterData::Drop
        } else if take(&mut self.data_451) {
            AfterData::Defer
        } else {
            AfterData::Accept
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counted_behaviours_run_out_in_order() {
        let script = Script::accept_all().stall_after_data(1).data_451(2);
        let mut counters = Counters::new(&script);
        let seen: Vec<AfterData> = (0..5).map(|_| counters.after_data()).collect();
        assert_eq!(
            seen,
            [
                AfterData::Stall,
                AfterData::Defer,
                AfterData::Defer,
                AfterData::Accept,
                AfterData::Accept
            ]
        );
    }

    #[test]
    fn always_never_runs_out() {
        let mut counter = ALWAYS;
        for _ in 0..1000 {
            assert!(take(&mut counter));
        }
        assert_eq!(counter, ALWAYS);
    }
}
