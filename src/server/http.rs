//! The small HTTP vocabulary the handlers share: a fully read request, response builders,
//! cookies, form and JSON bodies, and the language a browser asked for.

use std::collections::HashMap;
use std::net::IpAddr;

use bytes::{Buf, BufMut, Bytes};
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::{Method, Response, StatusCode};
use serde::Serialize;

use super::i18n::{Lang, msg};
use crate::server::Refusal;

/// Every response body: usually one buffer, a stream for server-sent events.
pub(crate) type Body = http_body_util::combinators::UnsyncBoxBody<Bytes, std::convert::Infallible>;
pub(crate) type Resp = Response<Body>;

/// Bodies larger than this are refused with 413 (answers and forms are tiny).
pub(crate) const SMALL_BODY: usize = 64 * 1024;

pub(crate) const PARTICIPANT_COOKIE: &str = "tuk";
pub(crate) const STAFF_COOKIE: &str = "tuk_staff";

/// A request whose body has been read (within its limit).
pub(crate) struct Req {
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) query: String,
    pub(crate) headers: HeaderMap,
    pub(crate) ip: IpAddr,
    pub(crate) body: Bytes,
    pub(crate) lang: Lang,
}

/// `headers` with every value in an allocation of its own (see [`Req::head`]).
fn owned_headers(headers: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        // `from_bytes` copies; it cannot fail on bytes that were a valid value already
        let mut copy = HeaderValue::from_bytes(value.as_bytes())
            .unwrap_or_else(|_| HeaderValue::from_static(""));
        copy.set_sensitive(value.is_sensitive());
        out.append(name.clone(), copy);
    }
    out
}

pub(crate) enum BodyError {
    TooLarge,
    Broken,
}

impl Req {
    /// The request line and headers only (the body is read later, once the request is
    /// allowed: see `site::handle`).
    ///
    /// The header values are copied out of hyper's read buffer: hyper's values are slices
    /// of the connection's 8 KiB buffer, and a request that keeps one (say, while its save
    /// waits for the commit) makes the connection take a fresh buffer for its next read.
    /// At 2,000 connections that was 1,165 extra buffers, 9 MiB (dhat, issue 17); a copy
    /// of a few hundred bytes of headers is cheaper.
    pub(crate) fn head(parts: hyper::http::request::Parts, ip: IpAddr) -> Req {
        let lang = Lang::from_headers(&parts.headers);
        Req {
            method: parts.method,
            path: parts.uri.path().to_string(),
            query: parts.uri.query().unwrap_or("").to_string(),
            headers: owned_headers(&parts.headers),
            ip,
            body: Bytes::new(),
            lang,
        }
    }

    /// Reads the body, refusing it (413) as soon as it passes `limit` bytes, or before
    /// reading when `Content-Length` already says so.
    pub(crate) async fn read_body(
        &mut self,
        body: hyper::body::Incoming,
        limit: usize,
    ) -> Result<(), BodyError> {
        let declared = self
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok());
        if declared.is_some_and(|n| n > limit) {
            return Err(BodyError::TooLarge);
        }
        match Limited::new(body, limit).collect().await {
            Ok(c) => {
                // One copy into a buffer of the body's own, for the reason given at
                // `head`: a body that came in one piece is a slice of the connection's
                // read buffer (`to_bytes` would hand that slice on, and copy the others).
                let chunks = c.aggregate();
                let mut body = Vec::with_capacity(chunks.remaining());
                body.put(chunks);
                self.body = Bytes::from(body);
                Ok(())
            }
            Err(e)
                if e.downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some() =>
            {
                Err(BodyError::TooLarge)
            }
            Err(_) => Err(BodyError::Broken),
        }
    }

    /// The host name of the `Host` header, without the port (`None` when absent).
    pub(crate) fn host_name(&self) -> Option<String> {
        let h = self.headers.get(header::HOST)?.to_str().ok()?.trim();
        let name = if let Some(rest) = h.strip_prefix('[') {
            rest.split(']').next().unwrap_or("")
        } else {
            h.rsplit_once(':')
                .filter(|(_, p)| p.chars().all(|c| c.is_ascii_digit()))
                .map_or(h, |(n, _)| n)
        };
        Some(name.trim_end_matches('.').to_ascii_lowercase())
    }

    pub(crate) fn cookie(&self, name: &str) -> Option<String> {
        for v in self.headers.get_all(header::COOKIE) {
            let Ok(s) = v.to_str() else { continue };
            for part in s.split(';') {
                if let Some((k, val)) = part.trim().split_once('=')
                    && k == name
                {
                    return Some(val.to_string());
                }
            }
        }
        None
    }

    /// The cookie id (blake3) of the participant's browser session, if any.
    pub(crate) fn participant_cookie_id(&self) -> Option<crate::exam::CookieId> {
        self.cookie(PARTICIPANT_COOKIE)
            .map(|c| crate::exam::secrets::cookie_id(&c))
    }

    pub(crate) fn form(&self) -> HashMap<String, Vec<String>> {
        let mut out: HashMap<String, Vec<String>> = HashMap::new();
        for (k, v) in form_urlencoded::parse(&self.body) {
            out.entry(k.into_owned()).or_default().push(v.into_owned());
        }
        out
    }

    /// The first value of a form field, or "" when it is missing.
    pub(crate) fn form_field(&self, name: &str) -> String {
        form_urlencoded::parse(&self.body)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    }

    pub(crate) fn query_param(&self, name: &str) -> Option<String> {
        form_urlencoded::parse(self.query.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    }

    pub(crate) fn json<T: for<'de> serde::Deserialize<'de>>(&self) -> Result<T, Refusal> {
        serde_json::from_slice(&self.body).map_err(|_| crate::server::refusal::MALFORMED_JSON)
    }

    pub(crate) fn ip_string(&self) -> String {
        // Show IPv4-mapped addresses as plain IPv4 on the board.
        match self.ip {
            IpAddr::V6(v6) => v6
                .to_ipv4_mapped()
                .map(|v4| v4.to_string())
                .unwrap_or_else(|| v6.to_string()),
            v4 => v4.to_string(),
        }
    }

    /// A state-changing request from another site is refused: browsers send `Origin` on
    /// POST/PUT, and it must name this host.
    pub(crate) fn same_origin(&self) -> bool {
        let Some(origin) = self
            .headers
            .get(header::ORIGIN)
            .and_then(|v| v.to_str().ok())
        else {
            return true;
        };
        let host = self
            .headers
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        origin
            .split_once("://")
            .is_some_and(|(_, rest)| rest == host)
    }
}

fn with_security_headers(mut r: Resp) -> Resp {
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if https() {
        h.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000"),
        );
    }
    r
}

pub(crate) fn response(
    status: StatusCode,
    content_type: &'static str,
    body: impl Into<Bytes>,
) -> Resp {
    let mut r = Response::new(Full::new(body.into()).boxed_unsync());
    *r.status_mut() = status;
    r.headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_security_headers(r)
}

pub(crate) fn html(status: StatusCode, markup: maud::Markup) -> Resp {
    response(status, "text/html; charset=utf-8", markup.into_string())
}

pub(crate) fn json<T: Serialize>(status: StatusCode, value: &T) -> Resp {
    response(
        status,
        "application/json",
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

/// An API error: `{"code": ..., "message": ...}` with the refusal's status.
pub(crate) fn api_error(r: impl Into<Refusal>, lang: Lang) -> Resp {
    let r = r.into();
    json(
        r.status_code(),
        &serde_json::json!({"code": r.code, "message": msg(lang, r.code)}),
    )
}

pub(crate) fn redirect(to: &str) -> Resp {
    let mut r = response(StatusCode::SEE_OTHER, "text/plain; charset=utf-8", "");
    if let Ok(v) = HeaderValue::from_str(to) {
        r.headers_mut().insert(header::LOCATION, v);
    }
    r
}

/// Set once at start by a server that runs HTTPS: every cookie then gets `Secure` and every
/// response `Strict-Transport-Security`.
static HTTPS: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Marks this process as serving HTTPS (see [`HTTPS`]).
pub(crate) fn set_https(on: bool) {
    HTTPS.store(on, std::sync::atomic::Ordering::Relaxed);
}

fn https() -> bool {
    HTTPS.load(std::sync::atomic::Ordering::Relaxed)
}

pub(crate) fn set_cookie(r: &mut Resp, name: &str, value: &str, max_age_s: u64) {
    let secure = if https() { "; Secure" } else { "" };
    let v =
        format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_s}{secure}");
    if let Ok(v) = HeaderValue::from_str(&v) {
        r.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn clear_cookie(r: &mut Resp, name: &str) {
    set_cookie(r, name, "", 0);
}

/// A `text/event-stream` response that sends whatever `next` yields, every `every`, until
/// `next` returns `None` (the browser's EventSource reconnects by itself).
pub(crate) fn event_stream<S: Send + 'static>(
    state: S,
    every: std::time::Duration,
    next: fn(&S) -> Option<String>,
) -> Resp {
    use hyper::body::Frame;
    let stream = futures_util::stream::unfold((state, true), move |(st, first)| async move {
        if !first {
            tokio::time::sleep(every).await;
        }
        let data = next(&st)?;
        let frame = Frame::data(Bytes::from(format!("data: {data}\n\n")));
        Some((Ok::<_, std::convert::Infallible>(frame), (st, false)))
    });
    let mut r = Response::new(http_body_util::StreamBody::new(stream).boxed_unsync());
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    with_security_headers(r)
}

/// A static asset, cached by the browser (the URL carries its hash).
pub(crate) fn asset(content_type: &'static str, body: &'static [u8]) -> Resp {
    let mut r = response(StatusCode::OK, content_type, Bytes::from_static(body));
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=31536000, immutable"),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A request keeps copies of its header values, not slices of hyper's read buffer,
    /// and the copies are equal, in order, with repeated names and sensitivity kept.
    #[test]
    fn headers_are_copied_whole() {
        let buffer = Bytes::from_static(b"tuk=abc; x=1text/html");
        let mut h = HeaderMap::new();
        let mut cookie = HeaderValue::from_maybe_shared(buffer.slice(0..11)).unwrap();
        cookie.set_sensitive(true);
        h.append(header::COOKIE, cookie);
        h.append(
            header::ACCEPT,
            HeaderValue::from_maybe_shared(buffer.slice(11..)).unwrap(),
        );
        h.append(header::COOKIE, HeaderValue::from_static("y=2"));
        let copy = owned_headers(&h);
        assert_eq!(copy, h);
        assert!(
            copy.get(header::COOKIE)
                .is_some_and(HeaderValue::is_sensitive)
        );
        let within = |v: &HeaderValue| {
            let (p, range) = (v.as_bytes().as_ptr(), buffer.as_ptr_range());
            range.contains(&p)
        };
        assert!(h.values().any(within), "the original shares the buffer");
        assert!(!copy.values().any(within), "the copy does not");
    }
}
