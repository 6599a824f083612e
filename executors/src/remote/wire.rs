//! What travels through the broker: a run to a worker, its outcome back, both signed.
//!
//! A frame is one line with the HMAC-SHA256 of the body in hex (`-` when unsigned), then the
//! body, JSON. The MAC covers the exact body bytes, so a worker checks it before parsing.

use hmac::{Hmac, Mac};
use scheduler_core::chrono::{DateTime, Utc};
use scheduler_core::executor::wire::{RunReport, RunRequest};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// A run on its way to a worker: the shared [`RunRequest`] and what the transport adds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct RunEnvelope {
    /// The scheduler's namespace: a worker of another namespace refuses the run.
    pub(crate) namespace: String,
    /// Deliveries after which a worker gives up on the run and reports it refused.
    pub(crate) max_attempts: u32,
    /// How often the worker tells the broker the run is still going (a third of its ack
    /// wait). Seconds on the wire.
    pub(crate) progress_every: f64,
    /// The run; its `attempt` is set by the worker from the broker's delivery count.
    pub(crate) request: RunRequest,
}

/// A worker's answer: the shared [`RunReport`] and what the executor needs to report it
/// without having sent it (after a restart).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct OutcomeEnvelope {
    pub(crate) namespace: String,
    pub(crate) job_id: String,
    pub(crate) jobstore: String,
    pub(crate) scheduled_run_time: DateTime<Utc>,
    /// The worker's name.
    pub(crate) worker: String,
    /// Which delivery of the run this was (1 = the first).
    pub(crate) attempt: u32,
    pub(crate) report: RunReport,
}

/// The shared key that signs and checks frames.
#[derive(Clone)]
pub(crate) struct SigningKey(Vec<u8>);

impl std::fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SigningKey(..)")
    }
}

impl SigningKey {
    pub(crate) fn new(key: impl Into<Vec<u8>>) -> Self {
        SigningKey(key.into())
    }

    fn mac(&self) -> Hmac<Sha256> {
        // HMAC takes a key of any length.
        Hmac::<Sha256>::new_from_slice(&self.0).expect("HMAC accepts every key length")
    }
}

/// Why a frame was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum FrameError {
    /// Not a frame at all.
    Malformed(String),
    /// Unsigned, or signed with another key (forged or misconfigured).
    BadSignature,
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::Malformed(why) => write!(f, "malformed frame: {why}"),
            FrameError::BadSignature => {
                f.write_str("bad signature: the frame was not signed with this key (forged?)")
            }
        }
    }
}

/// Serializes `body` and signs it with `key` (or marks it unsigned).
pub(crate) fn encode<T: Serialize>(
    body: &T,
    key: Option<&SigningKey>,
) -> Result<Vec<u8>, serde_json::Error> {
    let body = serde_json::to_vec(body)?;
    let mut frame = Vec::with_capacity(body.len() + 65);
    match key {
        Some(key) => {
            let mut mac = key.mac();
            mac.update(&body);
            frame.extend_from_slice(hex(&mac.finalize().into_bytes()).as_bytes());
        }
        None => frame.push(b'-'),
    }
    frame.push(b'\n');
    frame.extend_from_slice(&body);
    Ok(frame)
}

/// Checks the signature of `frame` with `key` (any frame passes without a key) and parses it.
pub(crate) fn decode<T: for<'de> Deserialize<'de>>(
    frame: &[u8],
    key: Option<&SigningKey>,
) -> Result<T, FrameError> {
    let newline = frame
        .iter()
        .position(|&b| b == b'\n')
        .ok_or_else(|| FrameError::Malformed("no signature line".into()))?;
    let (tag, body) = (&frame[..newline], &frame[newline + 1..]);
    if let Some(key) = key {
        let tag = unhex(tag).ok_or(FrameError::BadSignature)?;
        let mut mac = key.mac();
        mac.update(body);
        // `verify_slice` compares in constant time.
        mac.verify_slice(&tag)
            .map_err(|_| FrameError::BadSignature)?;
    }
    serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

fn unhex(text: &[u8]) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    text.chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).ok()?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_signed_frame_passes_only_with_its_key() {
        let key = SigningKey::new(b"shared secret".to_vec());
        let frame = encode(&vec![1, 2, 3], Some(&key)).unwrap();
        assert_eq!(
            decode::<Vec<u32>>(&frame, Some(&key)).unwrap(),
            vec![1, 2, 3]
        );
        let other = SigningKey::new(b"another".to_vec());
        assert_eq!(
            decode::<Vec<u32>>(&frame, Some(&other)).unwrap_err(),
            FrameError::BadSignature
        );
        let unsigned = encode(&vec![1, 2, 3], None).unwrap();
        assert_eq!(
            decode::<Vec<u32>>(&unsigned, Some(&key)).unwrap_err(),
            FrameError::BadSignature
        );
        // A body changed after signing is refused.
        let mut tampered = frame;
        let last = tampered.len() - 2;
        tampered[last] = b'9';
        assert_eq!(
            decode::<Vec<u32>>(&tampered, Some(&key)).unwrap_err(),
            FrameError::BadSignature
        );
    }

    #[test]
    fn garbage_is_a_malformed_frame_not_a_panic() {
        let key = SigningKey::new(b"k".to_vec());
        for frame in [&b""[..], b"abc", b"-\n{", b"\xff\xfe\n"] {
            assert!(matches!(
                decode::<Vec<u32>>(frame, None),
                Err(FrameError::Malformed(_))
            ));
            assert!(decode::<Vec<u32>>(frame, Some(&key)).is_err());
        }
        // Without a key the tag is not looked at; with one, a tag that is not hex is refused.
        assert_eq!(decode::<Vec<u32>>(b"zz\n[1]", None).unwrap(), vec![1]);
        assert_eq!(
            decode::<Vec<u32>>(b"zz\n[1]", Some(&key)).unwrap_err(),
            FrameError::BadSignature
        );
    }
}
