//! The dispatcher: threads of the daemon that deliver the queued webhooks, one per endpoint
//! (a slow or failing endpoint never holds up another).
//!
//! Each endpoint's queue is delivered in order, one request at a time: the oldest queued
//! delivery is tried; a 2xx marks it `delivered` and the next one goes; any other answer (a
//! redirect included: they are not followed), a timeout or a connection error keeps it at the
//! head, tried again after an exponential backoff with jitter, until the endpoint has failed
//! for longer than its `give_up_after` (then it is `dead` and the next one goes). Nothing is
//! written before a request, so a crash mid-request leaves the delivery queued and it is sent
//! again after a restart with the same `webhook-id`. The response body is never read.
//!
//! Time here is the system clock (requests and their backoff are real time, also when the
//! daemon runs on a simulated clock); the events' own times are those of what they report.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use rand::Rng;
use tiercare_store::{Store, WebhookAttempt, WebhookDelivery};

use super::WebhookError;
use super::signature::WebhookSecret;
use crate::config::webhooks::WebhookEndpoint;

/// How often the dispatcher looks for new events when nothing is due.
const POLL: Duration = Duration::from_millis(250);

/// An endpoint ready to be sent to: its settings, its secret and its HTTP agent.
pub struct ReadyEndpoint {
    endpoint: WebhookEndpoint,
    secret: WebhookSecret,
    agent: ureq::Agent,
}

impl std::fmt::Debug for ReadyEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadyEndpoint")
            .field("name", &self.endpoint.name)
            .finish_non_exhaustive()
    }
}

impl ReadyEndpoint {
    /// Prepares `endpoint`, its secret read through `env` (the variable it names).
    pub fn new(
        endpoint: &WebhookEndpoint,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<ReadyEndpoint, WebhookError> {
        let value = env(&endpoint.secret_env).ok_or_else(|| WebhookError::Secret {
            endpoint: endpoint.name.clone(),
            variable: endpoint.secret_env.clone(),
            problem: "is not set",
        })?;
        let secret = WebhookSecret::parse(&value).ok_or_else(|| WebhookError::Secret {
            endpoint: endpoint.name.clone(),
            variable: endpoint.secret_env.clone(),
            problem: "is not a secret of the form whsec_<base64>",
        })?;
        let agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(endpoint.timeout_seconds)))
            .max_redirects(0)
            .http_status_as_error(false)
            .user_agent("tiercare-webhooks")
            .build()
            .into();
        Ok(ReadyEndpoint {
            endpoint: endpoint.clone(),
            secret,
            agent,
        })
    }

    /// The endpoint's name.
    pub fn name(&self) -> &str {
        &self.endpoint.name
    }

    /// Sends `id` with `body` once, signed at `now`: `Ok` on a 2xx, else what went wrong (a
    /// status code or a connection error; never the response body).
    pub fn send(&self, id: &str, body: &str, now: i64) -> Result<u16, String> {
        let response = self
            .agent
            .post(&self.endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", id)
            .header("webhook-timestamp", now.to_string())
            .header(
                "webhook-signature",
                self.secret.sign(id, now, body.as_bytes()),
            )
            .send(body.as_bytes());
        match response {
            Ok(response) => {
                let status = response.status().as_u16();
                match status {
                    200..=299 => Ok(status),
                    300..=399 => Err(format!("HTTP {status} (redirects are not followed)")),
                    _ => Err(format!("HTTP {status}")),
                }
            }
            Err(err) => Err(err.to_string()),
        }
    }

    /// The delay before the next try after `attempts` failed ones: the outbox's backoff
    /// ([`equal_jitter`](crate::mail::outbox::equal_jitter)) over this endpoint's settings.
    fn backoff(&self, attempts: u32) -> i64 {
        crate::mail::outbox::equal_jitter(
            i64::try_from(self.endpoint.retry_base_seconds).unwrap_or(i64::MAX),
            i64::try_from(self.endpoint.retry_max_seconds).unwrap_or(i64::MAX),
            attempts,
            rand::rng().random::<f64>(),
        )
    }
}

/// The unix time now, from the system clock.
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| elapsed.as_secs() as i64)
}

/// Tries each endpoint's due head once; returns how many attempts were made and when the
/// earliest waiting head is due.
pub fn deliver_round(
    store: &mut Store,
    endpoints: &HashMap<String, ReadyEndpoint>,
) -> Result<(usize, Option<i64>), WebhookError> {
    let mut attempts = 0;
    let mut next = None::<i64>;
    for head in store.webhook_heads()? {
        let Some(endpoint) = endpoints.get(&head.endpoint) else {
            continue;
        };
        let now = unix_now();
        if let Some(due) = head.next_attempt_at
            && due > now
        {
            next = Some(next.map_or(due, |next| next.min(due)));
            continue;
        }
        attempts += 1;
        attempt(store, endpoint, &head, now)?;
    }
    Ok((attempts, next))
}

/// One attempt at `head`, recorded.
fn attempt(
    store: &mut Store,
    endpoint: &ReadyEndpoint,
    head: &WebhookDelivery,
    now: i64,
) -> Result<(), WebhookError> {
    let outcome = match endpoint.send(&head.event_id, &head.body(), now) {
        Ok(status) => {
            tracing::debug!(endpoint = %head.endpoint, event = %head.event_id, r#type = %head.event_type, status, "webhook delivered");
            WebhookAttempt::Delivered
        }
        Err(error) => {
            let since = head.failing_since.unwrap_or(now);
            if now - since >= endpoint.endpoint.give_up_after {
                tracing::warn!(endpoint = %head.endpoint, event = %head.event_id, error = %error, attempts = head.attempts + 1, "webhook given up (dead)");
                WebhookAttempt::Dead { error }
            } else {
                let delay = endpoint.backoff(head.attempts + 1);
                tracing::warn!(endpoint = %head.endpoint, event = %head.event_id, error = %error, retry_in_seconds = delay, "webhook failed; will retry");
                WebhookAttempt::Failed {
                    error,
                    retry_at: now.saturating_add(delay),
                }
            }
        }
    };
    store.record_webhook_attempt(head.id, &outcome, unix_now())?;
    Ok(())
}

/// The running dispatcher: a thread per endpoint, so a slow or failing endpoint never holds
/// up another; [`Dispatcher::stop`] ends them after the requests under way.
#[derive(Debug)]
pub struct Dispatcher {
    threads: Vec<(mpsc::Sender<()>, JoinHandle<()>)>,
}

impl Dispatcher {
    /// Starts delivering the queue of the database at `database` to `endpoints`, each on a
    /// thread of its own with its own connection. `None` when no endpoint is configured.
    pub fn start(
        database: PathBuf,
        busy_timeout: Duration,
        endpoints: Vec<ReadyEndpoint>,
    ) -> Result<Option<Dispatcher>, WebhookError> {
        if endpoints.is_empty() {
            return Ok(None);
        }
        let mut threads = Vec::with_capacity(endpoints.len());
        for endpoint in endpoints {
            let mut store = Store::open(&database)?;
            store.set_busy_timeout(busy_timeout)?;
            let name = endpoint.name().to_owned();
            let endpoints = HashMap::from([(name.clone(), endpoint)]);
            let (stop, stopped) = mpsc::channel::<()>();
            let thread = std::thread::Builder::new()
                .name(format!("webhooks {name}"))
                .spawn(move || {
                    tracing::info!(endpoint = %name, "webhook dispatcher started");
                    loop {
                        let wait = match deliver_round(&mut store, &endpoints) {
                            Ok((attempts, _)) if attempts > 0 => Duration::ZERO,
                            Ok((_, next)) => next
                                .map(|due| {
                                    Duration::from_secs(due.saturating_sub(unix_now()).max(0) as u64)
                                })
                                .unwrap_or(POLL)
                                .min(POLL),
                            Err(err) => {
                                tracing::warn!(endpoint = %name, error = %err, "webhook dispatcher: database error; trying again");
                                POLL
                            }
                        };
                        match stopped.recv_timeout(wait) {
                            Err(mpsc::RecvTimeoutError::Timeout) => {}
                            Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => break,
                        }
                    }
                })
                .map_err(|err| WebhookError::Thread(err.to_string()))?;
            threads.push((stop, thread));
        }
        Ok(Some(Dispatcher { threads }))
    }

    /// Stops the threads after the requests under way, and waits for them.
    pub fn stop(self) {
        for (stop, _) in &self.threads {
            let _ = stop.send(());
        }
        for (_, thread) in self.threads {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;

    use super::*;

    fn endpoint(url: String, timeout_seconds: u64) -> ReadyEndpoint {
        let endpoint = WebhookEndpoint {
            name: "crm".into(),
            url,
            events: vec![tiercare_store::WebhookEventType::TierChanged],
            secret_env: "S".into(),
            timeout_seconds,
            give_up_after: 60,
            retry_base_seconds: 10,
            retry_max_seconds: 100,
        };
        ReadyEndpoint::new(&endpoint, &|_| {
            Some("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw".into())
        })
        .unwrap()
    }

    /// A server on loopback answering one request with `answer` (or never, when `None`).
    fn server(answer: Option<&'static str>) -> (String, std::thread::JoinHandle<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let thread = std::thread::spawn(move || {
            let (mut stream, _) = listener.accept().unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            match answer {
                Some(answer) => {
                    let _ = stream.write_all(answer.as_bytes());
                }
                // Hold the connection without answering until the client gives up.
                None => while stream.read(&mut request).is_ok_and(|read| read > 0) {},
            }
        });
        (url, thread)
    }

    #[test]
    fn a_redirect_is_a_failure_and_is_not_followed() {
        let (url, thread) = server(Some(
            "HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\n\r\n",
        ));
        let answer = endpoint(url, 5).send("evt_1", "{}", 1);
        assert_eq!(answer, Err("HTTP 302 (redirects are not followed)".into()));
        thread.join().unwrap();
    }

    #[test]
    fn a_silent_endpoint_times_out() {
        let (url, thread) = server(None);
        let started = std::time::Instant::now();
        let answer = endpoint(url, 1).send("evt_1", "{}", 1);
        assert!(
            answer
                .as_ref()
                .is_err_and(|error| error.contains("timeout")),
            "{answer:?}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        thread.join().unwrap();
    }

    #[test]
    fn the_backoff_doubles_with_jitter_up_to_the_maximum() {
        let ready = endpoint("http://127.0.0.1:9/".into(), 1);
        for _ in 0..100 {
            assert!((5..=10).contains(&ready.backoff(1)));
            assert!((10..=20).contains(&ready.backoff(2)));
            assert!((40..=80).contains(&ready.backoff(4)));
            assert!((50..=100).contains(&ready.backoff(30)));
        }
    }
}
