//! Staff accounts and sessions of the web workspace: what `tiercare users` and the web server's
//! login share.
//!
//! - Passwords are hashed with **Argon2id** (RFC 9106) into PHC strings
//!   (`$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>`): 19 MiB of memory, 2 passes, 1 lane, a
//!   random 16-byte salt, a 32-byte output: OWASP's recommended minimum. A stored hash keeps
//!   its own parameters, so raising them later leaves old hashes verifiable.
//! - A session is a random 256-bit id (the cookie, hex), stored as its SHA-256 only; its CSRF
//!   token is another random 256-bit value. Sessions end after [`SessionPolicy::idle_seconds`]
//!   without a request and after [`SessionPolicy::absolute_seconds`] in any case.
//! - Logins are limited: after [`MAX_ACCOUNT_FAILURES`] failures for an account, or
//!   [`MAX_CLIENT_FAILURES`] from a client, within [`LOGIN_WINDOW_SECONDS`], every attempt is
//!   refused, with the same answer as a wrong password. An unknown login costs the same
//!   Argon2 verification as a known one, so timing does not tell which logins exist.

use std::sync::OnceLock;

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use ring::rand::{SecureRandom, SystemRandom};
use tiercare_store::{StaffRole, StaffSession, StaffUser, Store, StoreError};

use crate::http_config::HttpConfig;

/// Failed logins for one account within [`LOGIN_WINDOW_SECONDS`] after which it is locked
/// (until the window has passed).
pub const MAX_ACCOUNT_FAILURES: u64 = 5;

/// Failed logins from one client address within [`LOGIN_WINDOW_SECONDS`] after which it is
/// refused.
pub const MAX_CLIENT_FAILURES: u64 = 20;

/// The window of the login limits, in seconds (15 minutes).
pub const LOGIN_WINDOW_SECONDS: i64 = 15 * 60;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_CHARS: usize = 10;

/// What went wrong with a staff account or session.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    /// The database refused or failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A login name or password that cannot be used; the message says what to do.
    #[error("{0}")]
    Invalid(String),
    /// Hashing failed (out of memory) or no random bytes were available.
    #[error("cannot hash the password or draw random bytes: {0}")]
    Crypto(String),
}

/// How long staff sessions last, from `[http]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionPolicy {
    /// Seconds without a request after which a session ends.
    pub idle_seconds: i64,
    /// Seconds after sign-in after which a session ends in any case.
    pub absolute_seconds: i64,
}

impl SessionPolicy {
    /// The policy of the `[http]` settings.
    pub fn from_config(config: &HttpConfig) -> SessionPolicy {
        let seconds = |n: u64, unit: u64| i64::try_from(n.saturating_mul(unit)).unwrap_or(i64::MAX);
        SessionPolicy {
            idle_seconds: seconds(config.staff_idle_minutes, 60),
            absolute_seconds: seconds(config.staff_session_hours, 3600),
        }
    }
}

/// A session begun by [`login`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSession {
    /// The cookie's value: the session id (64 hex digits). Never stored or logged.
    pub cookie: String,
    /// The session's CSRF token.
    pub csrf_token: String,
    /// The account.
    pub user: StaffUser,
}

fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, Some(32)).expect("valid Argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// `n` random bytes from the system's generator, as lowercase hex.
pub fn random_hex(n: usize) -> Result<String, StaffError> {
    let mut bytes = vec![0u8; n];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StaffError::Crypto("the system's random generator failed".to_owned()))?;
    Ok(bytes.iter().map(|byte| format!("{byte:02x}")).collect())
}

/// The stored form of a session id: its SHA-256, hex.
pub fn session_hash(cookie: &str) -> String {
    ring::digest::digest(&ring::digest::SHA256, cookie.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Hashes `password` with Argon2id and a random salt into a PHC string, after checking it is
/// long enough.
pub fn hash_password(password: &str) -> Result<String, StaffError> {
    if password.chars().count() < MIN_PASSWORD_CHARS {
        return Err(StaffError::Invalid(format!(
            "the password is too short: use at least {MIN_PASSWORD_CHARS} characters (a few \
             words make a good one)"
        )));
    }
    if password.len() > 1024 {
        return Err(StaffError::Invalid(
            "the password is too long: use at most 1024 bytes".to_owned(),
        ));
    }
    let mut salt = [0u8; 16];
    SystemRandom::new()
        .fill(&mut salt)
        .map_err(|_| StaffError::Crypto("the system's random generator failed".to_owned()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|err| StaffError::Crypto(err.to_string()))?;
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|err| StaffError::Crypto(err.to_string()))
}

/// Whether `password` matches the PHC string `hash` (a constant-time comparison of the
/// outputs; a malformed hash matches nothing).
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password is checked against successfully in practice, verified for unknown
/// logins so they cost the same time as known ones.
fn decoy_hash() -> &'static str {
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| {
        hash_password("decoy password that is never used")
            .unwrap_or_else(|_| "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$AAAA".to_owned())
    })
}

/// Checks a login name: 1 to 64 characters of letters, digits, `.`, `_`, `-` and `@`.
pub fn check_login(login: &str) -> Result<(), StaffError> {
    let fine = !login.is_empty()
        && login.chars().count() <= 64
        && login
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if fine {
        Ok(())
    } else {
        Err(StaffError::Invalid(format!(
            "login {login:?} is not usable: use 1 to 64 letters, digits, '.', '_', '-' or '@'"
        )))
    }
}

/// Adds the account `login` (`tiercare users add`).
pub fn add_user(
    store: &mut Store,
    login: &str,
    role: StaffRole,
    manager_id: Option<&str>,
    password: &str,
    now: i64,
) -> Result<StaffUser, StaffError> {
    check_login(login)?;
    let hash = hash_password(password)?;
    Ok(store.add_staff_user(login, role, manager_id, &hash, now)?)
}

/// Sets a new password for `login` and ends its sessions (`tiercare users passwd`).
pub fn set_password(
    store: &mut Store,
    login: &str,
    password: &str,
    now: i64,
) -> Result<(), StaffError> {
    let hash = hash_password(password)?;
    Ok(store.set_staff_password(login, &hash, now)?)
}

/// Signs `login` in with `password` from `client` at `now`: a new session (replacing the
/// browser's earlier session cookie `previous`, so the id changes at login), or `None` for a
/// wrong login or password, a disabled account, or too many failures (the same answer for
/// each, so none can be told from the others).
pub fn login(
    store: &mut Store,
    login: &str,
    password: &str,
    client: &str,
    previous: Option<&str>,
    now: i64,
) -> Result<Option<NewSession>, StaffError> {
    let window = now - LOGIN_WINDOW_SECONDS;
    let failed = store.failed_staff_logins(login, client, window)?;
    let throttled = failed.account >= MAX_ACCOUNT_FAILURES || failed.client >= MAX_CLIENT_FAILURES;
    let found = store.staff_user_with_password(login)?;
    let hash = found
        .as_ref()
        .map_or(decoy_hash(), |(_, hash)| hash.as_str());
    let matches = verify_password(hash, password);
    let user = match found {
        Some((user, _)) if matches && user.active && !throttled => user,
        _ => {
            tracing::info!(throttled, "a staff login was refused");
            store.record_failed_staff_login(login, client, now, window)?;
            return Ok(None);
        }
    };
    let cookie = random_hex(32)?;
    let csrf_token = random_hex(32)?;
    let replacing = previous.map(session_hash);
    store.start_staff_session(
        &session_hash(&cookie),
        user.id,
        &csrf_token,
        replacing.as_deref(),
        client,
        now,
    )?;
    Ok(Some(NewSession {
        cookie,
        csrf_token,
        user,
    }))
}

/// The live session of the cookie value `cookie` at `now` under `policy`, if any.
pub fn session(
    store: &mut Store,
    cookie: &str,
    policy: SessionPolicy,
    now: i64,
) -> Result<Option<StaffSession>, StaffError> {
    Ok(store.touch_staff_session(
        &session_hash(cookie),
        now - policy.idle_seconds,
        now - policy.absolute_seconds,
        now,
    )?)
}

/// Ends the session of the cookie value `cookie` (logout).
pub fn logout(store: &mut Store, cookie: &str) -> Result<(), StaffError> {
    Ok(store.end_staff_session(&session_hash(cookie))?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_as_argon2id_and_verify() {
        let hash = hash_password("correct horse battery").unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse battery!"));
        assert!(!verify_password("not a hash", "x"));
        assert!(matches!(
            hash_password("short"),
            Err(StaffError::Invalid(_))
        ));
    }

    #[test]
    fn login_rotates_limits_and_expires() {
        let mut store = Store::open_in_memory().unwrap();
        add_user(
            &mut store,
            "ada",
            StaffRole::Admin,
            None,
            "a long password",
            0,
        )
        .unwrap();
        assert!(check_login("no spaces").is_err());
        let policy = SessionPolicy {
            idle_seconds: 600,
            absolute_seconds: 3600,
        };
        let first = login(&mut store, "ada", "a long password", "c1", None, 10)
            .unwrap()
            .unwrap();
        assert!(
            session(&mut store, &first.cookie, policy, 20)
                .unwrap()
                .is_some()
        );
        let second = login(
            &mut store,
            "ada",
            "a long password",
            "c1",
            Some(&first.cookie),
            30,
        )
        .unwrap()
        .unwrap();
        assert_ne!(first.cookie, second.cookie);
        assert!(
            session(&mut store, &first.cookie, policy, 31)
                .unwrap()
                .is_none()
        );
        // Idle for longer than the policy: gone.
        assert!(
            session(&mut store, &second.cookie, policy, 30 + 601)
                .unwrap()
                .is_none()
        );

        for at in 0..MAX_ACCOUNT_FAILURES {
            let now = 1000 + i64::try_from(at).unwrap();
            assert!(
                login(&mut store, "ada", "wrong password", "c2", None, now)
                    .unwrap()
                    .is_none()
            );
        }
        // Locked: the right password is refused too, the same way.
        assert!(
            login(&mut store, "ada", "a long password", "c3", None, 1100)
                .unwrap()
                .is_none()
        );
        assert!(
            login(
                &mut store,
                "ada",
                "a long password",
                "c3",
                None,
                1010 + LOGIN_WINDOW_SECONDS
            )
            .unwrap()
            .is_some()
        );
        assert!(
            login(&mut store, "nobody", "a long password", "c3", None, 5000)
                .unwrap()
                .is_none()
        );
    }
}
