//! The storage format of a signature file (`signature-N` in `dir:`),
//! containers/image's `internal/signature` `Blob` / `FromBlob`: a simple
//! signature is its raw OpenPGP bytes (which never start with a NUL byte);
//! any other format is `\0<format>\n` then the format's data. The only other
//! format is `sigstore-json`: `{"mimeType","payload","annotations"}` with
//! the payload base64-encoded (Go's `[]byte` in JSON).

use std::collections::BTreeMap;

use base64::Engine as _;
use bytes::Bytes;
use serde::{Deserialize, Serialize};

use crate::image::Signature;

const SIMPLE_SIGNING: &str = "simple-signing";
const SIGSTORE_JSON: &str = "sigstore-json";

#[derive(Serialize, Deserialize)]
struct SigstoreJson {
    #[serde(rename = "mimeType")]
    mime_type: String,
    payload: String,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
}

/// Encode a signature for storage.
pub fn encode(sig: &Signature) -> Vec<u8> {
    match sig {
        Signature::SimpleSigning(b) => b.to_vec(),
        Signature::Sigstore {
            media_type,
            payload,
            annotations,
        } => {
            let json = SigstoreJson {
                mime_type: media_type.clone(),
                payload: base64::engine::general_purpose::STANDARD.encode(payload),
                annotations: annotations.clone(),
            };
            let mut out = format!("\0{SIGSTORE_JSON}\n").into_bytes();
            out.extend(serde_json::to_vec(&json).expect("strings serialise"));
            out
        }
    }
}

/// Decode a stored signature; the error says what is wrong.
pub fn decode(data: Bytes) -> Result<Signature, String> {
    if data.first() != Some(&0) {
        return Ok(Signature::SimpleSigning(data));
    }
    let nl = data
        .iter()
        .position(|b| *b == b'\n')
        .ok_or("signature file has a format marker but no format name")?;
    let format = String::from_utf8_lossy(&data[1..nl]).into_owned();
    let rest = data.slice(nl + 1..);
    match format.as_str() {
        SIMPLE_SIGNING => Ok(Signature::SimpleSigning(rest)),
        SIGSTORE_JSON => {
            let j: SigstoreJson = serde_json::from_slice(&rest)
                .map_err(|e| format!("invalid sigstore-json signature: {e}"))?;
            let payload = base64::engine::general_purpose::STANDARD
                .decode(&j.payload)
                .map_err(|e| format!("invalid sigstore-json payload: {e}"))?;
            Ok(Signature::Sigstore {
                media_type: j.mime_type,
                payload: payload.into(),
                annotations: j.annotations,
            })
        }
        other => Err(format!("unsupported signature format {other:?}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_both_formats() {
        let simple = Signature::SimpleSigning(Bytes::from_static(b"\xa3\x01pgp"));
        assert_eq!(encode(&simple), b"\xa3\x01pgp");
        assert_eq!(decode(encode(&simple).into()).unwrap(), simple);
        let sigstore = Signature::Sigstore {
            media_type: "application/vnd.dev.cosign.simplesigning.v1+json".into(),
            payload: Bytes::from_static(b"{}"),
            annotations: BTreeMap::from([(
                "dev.cosignproject.cosign/signature".into(),
                "MEU=".into(),
            )]),
        };
        let enc = encode(&sigstore);
        assert!(enc.starts_with(b"\0sigstore-json\n{\"mimeType\":"));
        assert_eq!(decode(enc.into()).unwrap(), sigstore);
        assert!(decode(Bytes::from_static(b"\0other\nx")).is_err());
    }
}
