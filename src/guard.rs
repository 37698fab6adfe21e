//! Where the proxy meets the Nova knowledge: which requests are guarded,
//! and what becomes of a guarded request's body.
//!
//! Two pure steps, shared by every transport:
//!
//! 1. [`plan`], from the request head alone, in Nova's order of checks
//!    (nova-facts §5): route, size limit, token, microversion, Content-Type.
//!    A request Nova would answer before looking at its body is passed on
//!    unvalidated, so that the client gets Nova's own answer.
//! 2. [`judge`], once the body is read: Nova's verdict on it
//!    ([`nova::check_request`]) and its application, enforced (answer or
//!    rewrite) or only reported (forward as received, log what enforce mode
//!    would have done).
//!
//! [`Guard`] is the tower service that runs step 2: the one place where a
//! guarded request is intercepted, whichever transport carried it.

use std::convert::Infallible;
use std::future::{ready, Ready};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Method, StatusCode};

use crate::exchange::{Operation, RequestId, Rule, ValidationInfo, Verdict};
use crate::nova::microversion::requested;
use crate::nova::route::{match_action, match_create, match_update, method_override};
use crate::nova::urlmap::{content_type_api, Apis};
use crate::nova::{
    self, check_request, is_rebuild_action, AccessIpPolicy, Microversion, Mode, Profile,
};
use crate::rescue::{fault_answer, Answer, FaultContext};

/// Whether verdicts are acted on or only reported (`NOVA_GUARD_MODE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enforcement {
    /// Invalid bodies are answered by nova-guard; `accessIPv6` is rewritten.
    Enforce,
    /// Everything is forwarded unchanged; verdicts are only logged.
    Report,
}

impl Enforcement {
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::Enforce => "enforce",
            Enforcement::Report => "report",
        }
    }
}

/// What guarding needs from the configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The Nova release and Python whose answers are matched.
    pub profile: Profile,
    pub path_prefix: String,
    pub max_body_bytes: u64,
    pub max_microversion: Microversion,
    /// The whole body of a validated request must arrive within this; a
    /// streamed body may not pause longer than this.
    pub body_timeout: Duration,
    pub enforcement: Enforcement,
    pub access_ip_policy: AccessIpPolicy,
}

impl Settings {
    pub fn report(&self) -> bool {
        self.enforcement == Enforcement::Report
    }

    /// The body limit as a buffer size.
    pub fn body_limit(&self) -> usize {
        usize::try_from(self.max_body_bytes).unwrap_or(usize::MAX)
    }
}

/// The headers a plan is decided on, as they are forwarded (see
/// [`crate::admit`]).
#[derive(Debug, Clone, Copy, Default)]
pub struct Heads<'a> {
    pub token: bool,
    pub api_version: Option<&'a [u8]>,
    pub nova_api_version: Option<&'a [u8]>,
    pub content_type: Option<&'a [u8]>,
    /// The APIs a `version` parameter of `Accept` names.
    pub accept_apis: Apis,
    /// The body's length, when the request says it.
    pub content_length: Option<u64>,
}

/// A request whose body is to be read and judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guarded {
    pub op: nova::Operation,
    pub mode: Mode,
    pub version: Microversion,
}

impl Guarded {
    /// What is logged about it before its body is judged.
    pub fn info(&self) -> ValidationInfo {
        ValidationInfo {
            verdict: Verdict::Forwarded,
            operation: match self.op {
                // Until the body is read, an action is only an action.
                nova::Operation::Rebuild => Operation::Action,
                op => op.into(),
            },
            api: Some(self.mode),
            microversion: (self.mode == Mode::V21).then_some(self.version),
            ..ValidationInfo::passthrough()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// Not validated: forward as it is.
    Pass(ValidationInfo),
    /// Content-Length over the limit: 413 without reading (in report mode,
    /// forwarded and logged as such).
    TooLarge(ValidationInfo),
    Validate(Guarded),
}

/// Decide from the request head alone.
pub fn plan(settings: &Settings, method: &Method, target: &str, heads: &Heads<'_>) -> Plan {
    // Nova reads a body for its own POST and PUT alone.
    if *method != Method::PUT && *method != Method::POST {
        return Plan::Pass(ValidationInfo::passthrough());
    }
    // The router matches the method a `_method` query parameter names.
    let overridden = method_override(target);
    let routed_by = overridden.as_deref().unwrap_or(method.as_str());
    let route = |by_headers| {
        let prefix = &settings.path_prefix;
        match routed_by {
            "PUT" => match_update(prefix, target, by_headers).map(|m| (nova::Operation::Update, m)),
            "POST" => match_create(prefix, target, by_headers)
                .map(|m| (nova::Operation::Create, m))
                .or_else(|| {
                    match_action(prefix, target, by_headers).map(|m| (nova::Operation::Rebuild, m))
                }),
            _ => None,
        }
    };
    // A path without an API version goes to the one the headers name.
    let routed = route(None).or_else(|| {
        let by_headers = heads
            .content_type
            .and_then(content_type_api)
            .or_else(|| heads.accept_apis.mode())?;
        route(Some(by_headers))
    });
    let Some((op, mode)) = routed else {
        return Plan::Pass(ValidationInfo::passthrough());
    };
    let guarded = Guarded {
        op,
        mode,
        version: Microversion::MIN,
    };
    let mut info = guarded.info();
    info.verdict = Verdict::Passthrough;
    info.microversion = None;
    if heads
        .content_length
        .is_some_and(|len| len > settings.max_body_bytes)
    {
        info.verdict = Verdict::Rejected;
        info.rule = Some(Rule::MaxBodyBytes);
        return Plan::TooLarge(info);
    }
    if !heads.token {
        return Plan::Pass(info);
    }
    let version = match mode {
        // The legacy endpoint deletes the microversion headers.
        Mode::LegacyV2 => Microversion::MIN,
        Mode::V21 => match request_version(heads, settings.max_microversion) {
            Some(v) => v,
            None => return Plan::Pass(info),
        },
    };
    if !content_type_accepted(heads.content_type) {
        return Plan::Pass(info);
    }
    Plan::Validate(Guarded { version, ..guarded })
}

fn request_version(heads: &Heads<'_>, max: Microversion) -> Option<Microversion> {
    // One line each: nova-guard forwards repeated lines joined into one.
    let standard = heads.api_version.as_slice();
    let legacy = heads.nova_api_version.as_slice();
    requested(standard, legacy, max).ok()
}

/// Nova's `Request.get_content_type()`: absent, empty or exactly
/// `text/plain` means "none" (the body is still parsed); otherwise the part
/// before `;`, case- and space-sensitive, must be one of Nova's two types.
fn content_type_accepted(value: Option<&[u8]>) -> bool {
    let Some(value) = value else {
        return true;
    };
    let media_type = value.split(|b| *b == b';').next().unwrap_or_default();
    matches!(
        media_type,
        b"" | b"text/plain" | b"application/json" | b"application/vnd.openstack.compute+json"
    )
}

/// What becomes of a guarded request once its body is judged.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// Send this body on to Nova.
    Forward { body: Bytes, info: ValidationInfo },
    /// Answer the client with this; Nova never sees the request.
    Answer {
        answer: Answer,
        info: ValidationInfo,
    },
}

impl Outcome {
    pub fn info(&self) -> &ValidationInfo {
        match self {
            Outcome::Forward { info, .. } | Outcome::Answer { info, .. } => info,
        }
    }
}

/// Nova's verdict on `body`, applied as `settings` say.
pub fn judge(settings: &Settings, guarded: Guarded, body: Bytes, request_id: RequestId) -> Outcome {
    let Guarded { op, mode, version } = guarded;
    let report = settings.report();
    let verdict = check_request(
        settings.profile,
        op,
        mode,
        version,
        &body,
        &settings.access_ip_policy,
    );
    let mut info = guarded.info();
    if op == nova::Operation::Rebuild {
        // The operation the body turned out to be.
        info.operation = if verdict != nova::Verdict::Defer || is_rebuild_action(&body) {
            Operation::Rebuild
        } else {
            Operation::Action
        };
    }
    match verdict {
        nova::Verdict::Reject(rejection) => {
            info.field = rejection.field;
            info.rule = Some(Rule::Check(rejection.rule));
            if report {
                info.verdict = Verdict::Reported;
                info.would_status = Some(rejection.status());
                return Outcome::Forward { body, info };
            }
            info.verdict = Verdict::Rejected;
            let ctx = FaultContext {
                request_id,
                version: (mode == Mode::V21).then_some(version),
            };
            let status =
                StatusCode::from_u16(rejection.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Outcome::Answer {
                answer: fault_answer(status, &rejection.message_json, &ctx),
                info,
            }
        }
        nova::Verdict::Defer => {
            info.verdict = Verdict::Deferred;
            Outcome::Forward { body, info }
        }
        nova::Verdict::Accept { rewrite } => match rewrite {
            Some(rw) if !report => {
                info.ipv6_rewritten = true;
                Outcome::Forward {
                    body: Bytes::from(rw.apply(&body)),
                    info,
                }
            }
            rw => {
                if report {
                    info.would_rewrite_ipv6 = Some(rw.is_some());
                }
                Outcome::Forward { body, info }
            }
        },
    }
}

/// A guarded request with its whole body.
#[derive(Debug, Clone)]
pub struct Request {
    pub guarded: Guarded,
    pub body: Bytes,
    pub request_id: RequestId,
}

/// The tower service that judges guarded requests ([`judge`]).
#[derive(Debug, Clone)]
pub struct Guard {
    settings: Arc<Settings>,
}

impl Guard {
    pub fn new(settings: Arc<Settings>) -> Self {
        Guard { settings }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }
}

impl tower::Service<Request> for Guard {
    type Response = Outcome;
    type Error = Infallible;
    type Future = Ready<Result<Outcome, Infallible>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: Request) -> Self::Future {
        ready(Ok(judge(
            &self.settings,
            req.guarded,
            req.body,
            req.request_id,
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::ServiceExt;

    fn settings(enforcement: Enforcement) -> Settings {
        Settings {
            profile: Profile::default(),
            path_prefix: String::new(),
            max_body_bytes: 64,
            max_microversion: Microversion::new(2, 104),
            body_timeout: Duration::from_secs(1),
            enforcement,
            access_ip_policy: AccessIpPolicy::default(),
        }
    }

    fn heads<'a>(token: bool, version: Option<&'a [u8]>, ct: Option<&'a [u8]>) -> Heads<'a> {
        Heads {
            token,
            api_version: version,
            nova_api_version: None,
            content_type: ct,
            accept_apis: Apis::default(),
            content_length: Some(10),
        }
    }

    const SERVER: &str = "/v2.1/servers/4d7e2cde-9a10-4cbb-9d8b-0f0e2d7a1c11";

    #[test]
    fn plans_follow_nova_s_order_of_checks() {
        let s = settings(Enforcement::Enforce);
        let put = Method::PUT;
        let json = Some(&b"application/json"[..]);
        let v = |p: &Plan| matches!(p, Plan::Validate(_));
        assert!(v(&plan(&s, &put, SERVER, &heads(true, None, json))));
        // No token, bad microversion, refused Content-Type: Nova answers.
        assert!(!v(&plan(&s, &put, SERVER, &heads(false, None, json))));
        assert!(!v(&plan(
            &s,
            &put,
            SERVER,
            &heads(true, Some(b"compute 2.999"), json)
        )));
        assert!(!v(&plan(
            &s,
            &put,
            SERVER,
            &heads(true, None, Some(b"Application/JSON"))
        )));
        // Too large comes first, token or not.
        let mut big = heads(false, None, json);
        big.content_length = Some(65);
        assert!(matches!(plan(&s, &put, SERVER, &big), Plan::TooLarge(_)));
        // Not a guarded route.
        assert_eq!(
            plan(&s, &Method::GET, SERVER, &heads(true, None, json)),
            Plan::Pass(ValidationInfo::passthrough())
        );
        // A combined microversion line is read as Nova reads it.
        match plan(
            &s,
            &put,
            SERVER,
            &heads(true, Some(b"compute 2.1, compute 2.90"), json),
        ) {
            Plan::Validate(g) => assert_eq!(g.version, Microversion::new(2, 90)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn routed_as_nova_s_router_routes_it() {
        let s = settings(Enforcement::Enforce);
        let id = "4d7e2cde-9a10-4cbb-9d8b-0f0e2d7a1c11";
        let judged = |method: Method, target: &str, heads: &Heads<'_>| match plan(
            &s, &method, target, heads,
        ) {
            Plan::Validate(g) => Some((g.op, g.mode)),
            _ => None,
        };
        let json = heads(true, None, Some(b"application/json"));
        let update = Some((nova::Operation::Update, Mode::V21));
        // Routes' `_method` override: the router's method, Nova's body.
        for (method, target, want) in [
            (
                Method::POST,
                format!("/v2.1/servers/{id}?_method=PUT"),
                update,
            ),
            (
                Method::POST,
                format!("/v2.1/servers/{id}?_method=put"),
                update,
            ),
            (
                Method::POST,
                format!("/v2.1/servers/{id}?_method=pu%74"),
                update,
            ),
            (
                Method::PUT,
                format!("/v2.1/servers/{id}?_method=PUT"),
                update,
            ),
            (
                Method::PUT,
                "/v2.1/servers?_method=POST".into(),
                Some((nova::Operation::Create, Mode::V21)),
            ),
            (
                Method::PUT,
                format!("/v2.1/servers/{id}/action?_method=POST"),
                Some((nova::Operation::Rebuild, Mode::V21)),
            ),
            // Nova reads no body for a GET, and routes a PUT elsewhere.
            (Method::GET, format!("/v2.1/servers/{id}?_method=PUT"), None),
            (Method::PUT, format!("/v2.1/servers/{id}?_method=GET"), None),
            (
                Method::PUT,
                format!("/v2.1/servers/{id}?_method=PUT&_method=DELETE"),
                None,
            ),
            // Not the text `_method`: no override.
            (
                Method::POST,
                format!("/v2.1/servers/{id}?_metho%64=PUT"),
                None,
            ),
        ] {
            assert_eq!(
                judged(method.clone(), &target, &json),
                want,
                "{method} {target}"
            );
        }
        // A path without an API version: the one Content-Type, else
        // Accept, names.
        let unversioned = format!("/servers/{id}");
        let project = format!("/6f70656e737461636b20342065766572/servers/{id}");
        for (ct, accept, want) in [
            (
                &b"application/json;version=2.1/x"[..],
                Apis::default(),
                Some(Mode::V21),
            ),
            (
                b"application/json; version=2/x",
                Apis::default(),
                Some(Mode::LegacyV2),
            ),
            (b"application/json;version=2.1", Apis::default(), None),
            (b"application/json", Apis::default(), None),
            (
                b"application/json",
                Apis {
                    v21: true,
                    legacy_v2: false,
                },
                Some(Mode::V21),
            ),
            (
                b"application/json",
                Apis {
                    v21: true,
                    legacy_v2: true,
                },
                Some(Mode::LegacyV2),
            ),
            // Content-Type's version wins over Accept's.
            (
                b"application/json;version=2.1/x",
                Apis {
                    v21: false,
                    legacy_v2: true,
                },
                Some(Mode::V21),
            ),
        ] {
            let h = Heads {
                accept_apis: accept,
                ..heads(true, None, Some(ct))
            };
            for target in [&unversioned, &project] {
                let got = judged(Method::PUT, target, &h).map(|(_, mode)| mode);
                assert_eq!(got, want, "{target} {:?}", String::from_utf8_lossy(ct));
            }
        }
        // A path that names a version document is not sent on by headers.
        let h = heads(true, None, Some(b"application/json;version=2.1/x"));
        assert_eq!(judged(Method::PUT, "/v2.1", &h), None);
        assert_eq!(judged(Method::PUT, "/v3/servers/x", &h), None);
    }

    #[test]
    fn content_types_as_nova_reads_them() {
        for ok in [
            None,
            Some(&b""[..]),
            Some(b"text/plain"),
            Some(b"text/plain; charset=UTF-8"),
            Some(b"application/json"),
            Some(b"application/json; charset=UTF-8"),
            Some(b"application/json;foo"),
            Some(b"application/vnd.openstack.compute+json"),
        ] {
            assert!(content_type_accepted(ok), "{ok:?}");
        }
        for refused in [
            &b"Application/JSON"[..],
            b"application/json ; charset=UTF-8",
            b"application/xml",
            b"application/json, application/json",
        ] {
            assert!(!content_type_accepted(Some(refused)), "{refused:?}");
        }
    }

    #[tokio::test]
    async fn enforce_answers_and_report_forwards_the_same_verdict() {
        let guarded = Guarded {
            op: nova::Operation::Update,
            mode: Mode::V21,
            version: Microversion::new(2, 19),
        };
        let body = Bytes::from_static(br#"{"server": {"name": ""}}"#);
        let req = Request {
            guarded,
            body: body.clone(),
            request_id: RequestId::new(),
        };
        let enforce = Guard::new(Arc::new(settings(Enforcement::Enforce)));
        match enforce.oneshot(req.clone()).await {
            Ok(Outcome::Answer { answer, info }) => {
                assert_eq!(answer.status(), 400);
                let answer = answer.into_response();
                assert_eq!(answer.headers()["openstack-api-version"], "compute 2.19");
                assert_eq!(info.verdict, Verdict::Rejected);
                assert_eq!(info.field, Some("name"));
            }
            other => panic!("{other:?}"),
        }
        let report = Guard::new(Arc::new(settings(Enforcement::Report)));
        match report.oneshot(req).await {
            Ok(Outcome::Forward { body: sent, info }) => {
                assert_eq!(sent, body);
                assert_eq!(info.verdict, Verdict::Reported);
                assert_eq!(info.would_status, Some(400));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bodies_as_deep_as_nova_parses_are_judged_on_a_worker_s_stack() {
        // A field error quotes the value: its repr walks all of it.
        let depth = crate::nova::json::MAX_DEPTH - 2;
        let value = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
        let body = Bytes::from(format!(r#"{{"server": {{"name": {value}}}}}"#));
        let deeper = Bytes::from(format!(
            r#"{{"server": {{"name": {}1{}}}}}"#,
            "[".repeat(depth + 1),
            "]".repeat(depth + 1)
        ));
        let guarded = Guarded {
            op: nova::Operation::Update,
            mode: Mode::V21,
            version: Microversion::new(2, 1),
        };
        // A tokio worker's stack.
        let judged = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || {
                let s = settings(Enforcement::Enforce);
                (
                    judge(&s, guarded, body, RequestId::new()),
                    judge(&s, guarded, deeper, RequestId::new()),
                )
            })
            .unwrap()
            .join()
            .unwrap();
        match judged {
            (Outcome::Answer { info: a, .. }, Outcome::Answer { info: b, answer }) => {
                assert_eq!(
                    (a.field, a.rule),
                    (Some("name"), Some(Rule::Check(crate::nova::Rule::Type)))
                );
                assert_eq!(b.rule, Some(Rule::Check(crate::nova::Rule::Json)));
                assert!(String::from_utf8_lossy(answer.body()).contains("Malformed request body"));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_accepted_body_is_rewritten_only_when_enforcing() {
        let guarded = Guarded {
            op: nova::Operation::Update,
            mode: Mode::LegacyV2,
            version: Microversion::MIN,
        };
        let body = Bytes::from_static(br#"{"server": {"accessIPv6": "2001:0DB8::1"}}"#);
        let s = settings(Enforcement::Enforce);
        match judge(&s, guarded, body.clone(), RequestId::new()) {
            Outcome::Forward { body, info } => {
                assert_eq!(&body[..], br#"{"server": {"accessIPv6": "2001:db8::1"}}"#);
                assert!(info.ipv6_rewritten);
                assert_eq!(info.microversion, None);
            }
            other => panic!("{other:?}"),
        }
        let s = settings(Enforcement::Report);
        match judge(&s, guarded, body.clone(), RequestId::new()) {
            Outcome::Forward { body: sent, info } => {
                assert_eq!(sent, body);
                assert_eq!(info.would_rewrite_ipv6, Some(true));
            }
            other => panic!("{other:?}"),
        }
    }
}
