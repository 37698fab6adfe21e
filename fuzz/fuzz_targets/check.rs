//! `nova::check` in both modes and across microversions 2.0–2.127, chosen
//! by the first two input bytes; the rest is the body. Byte 0: bit 0 the
//! mode, bits 1–3 the release, bits 4–5 the Python (the differential replay
//! of this corpus reads only bit 0 and runs the release under test).
//!
//! Oracles: every rejection has a 4xx status and its message is one ASCII
//! JSON string token, readable by the Python-semantics JSON reader (it may
//! hold a lone-surrogate escape, as Nova's own `json.dumps` output does, so
//! serde_json is not the judge here);
//! applying an accepted body's rewrite gives a body that is accepted again
//! with no further rewrite (canonical text is a fixed point); an update body
//! is always judged, never deferred to Nova.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nova_guard::nova::{check, json, Microversion, Mode, Profile, Python, Release, Verdict};

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let mode = if data[0] & 1 == 0 { Mode::V21 } else { Mode::LegacyV2 };
    let release = Release::ALL[usize::from(data[0] >> 1 & 7) % Release::ALL.len()];
    let python = Python::ALL[usize::from(data[0] >> 4 & 3)];
    let profile = Profile::new(release, python);
    let version = Microversion::new(2, u16::from(data[1] & 0x7f));
    let body = &data[2..];
    match check(profile, mode, version, body) {
        Verdict::Reject(r) => {
            let status = r.status();
            assert!((400..500).contains(&status), "status {status}");
            let m = r.message_json.as_bytes();
            assert!(m.is_ascii() && m.len() >= 2 && m[0] == b'"', "{:?}", r.message_json);
            assert!(
                matches!(json::parse(m), Ok(json::Value::Str(_))),
                "message not a JSON string: {:?}",
                r.message_json
            );
        }
        // Only create and rebuild bodies are ever left to Nova.
        Verdict::Defer => panic!("an update body deferred"),
        Verdict::Accept { rewrite: None } => {}
        Verdict::Accept {
            rewrite: Some(rewrite),
        } => {
            assert!(rewrite.span.start < rewrite.span.end && rewrite.span.end <= body.len());
            let again = rewrite.apply(body);
            match check(profile, mode, version, &again) {
                Verdict::Accept { rewrite: None } => {}
                other => panic!("rewritten body not a fixed point: {other:?}"),
            }
        }
    }
});
