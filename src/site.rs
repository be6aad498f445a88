//! The TUK exam server's one request handler: the `Host` check, the body allowance decided
//! before a body is read, and the routing of every path to the module that answers it —
//! participant pages and `/api/v1` (`server`), `/admin` (`console`), `/cek` and `/metrics`.
//! It sits above `server` and `console` (both use `server`'s HTTP helpers; only this module
//! knows both), and below `deploy` and `cli`, which start it.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use hyper::Method;
use tokio::net::TcpListener;

use crate::app::App;
use crate::exam::{self, Refused};
use crate::server::http::{self, BodyError, Req, Resp};
use crate::server::{
    self, ANON_BODY, accept, api, assets, body_deadline, cek, error, host_allowed, metrics,
    not_found, participant, upload_deadline,
};

/// Serves the exam (participant pages, API, console) on `listener`, over TLS when `tls` is
/// given, until `shutdown` resolves; then drains for at most `drain`.
pub(crate) async fn serve(
    app: Arc<App>,
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    shutdown: impl Future<Output = ()>,
    drain: Duration,
) -> Result<()> {
    http::set_https(tls.is_some());
    // Boxed: the connection's task then holds only a pointer while no request runs.
    let handler = move |req, peer| Box::pin(handle(app.clone(), req, peer));
    accept(listener, tls, handler, shutdown, drain).await
}

/// How much body a request may send, decided from its method, path and cookies *before*
/// anything of the body is read: `Err` answers it at once (the body is never read).
fn body_allowance(app: &App, req: &Req) -> std::result::Result<(usize, Duration), Box<Resp>> {
    if matches!(req.method, Method::GET | Method::HEAD) {
        return Ok((0, body_deadline()));
    }
    let staff = server::staff(app, req);
    // Package uploads are the one large body, and only an admin may send one.
    if req.path == "/admin/impor" {
        return match staff {
            Some(s) if s.role == exam::Role::Admin => Ok((
                crate::package::MAX_PACKAGE_BYTES as usize,
                upload_deadline(),
            )),
            Some(_) => Err(Box::new(error(req, Refused::Forbidden))),
            None => Err(Box::new(http::redirect("/admin"))),
        };
    }
    if req.path.starts_with("/admin/") && req.path != "/admin/masuk" && staff.is_none() {
        return Err(Box::new(http::redirect("/admin")));
    }
    let participant = req
        .participant_cookie_id()
        .is_some_and(|id| app.read().web.contains_key(&id));
    if staff.is_some() || participant {
        Ok((http::SMALL_BODY, body_deadline()))
    } else {
        Ok((ANON_BODY, body_deadline()))
    }
}

pub(crate) async fn handle(
    app: Arc<App>,
    req: hyper::Request<hyper::body::Incoming>,
    peer: SocketAddr,
) -> Resp {
    let started = std::time::Instant::now();
    let (parts, body) = req.into_parts();
    let mut req = Req::head(parts, peer.ip());
    if !host_allowed(&req) {
        let mut r = error(&req, crate::server::refusal::BAD_HOST);
        close(&mut r);
        return r;
    }
    // Nothing of the body is read before the request is allowed.
    let (limit, deadline) = match body_allowance(&app, &req) {
        Ok(x) => x,
        Err(r) => {
            let mut r = *r;
            close(&mut r);
            return r;
        }
    };
    match tokio::time::timeout(deadline, req.read_body(body, limit)).await {
        Ok(Ok(())) => {}
        Ok(Err(BodyError::TooLarge)) => {
            let mut r = error(&req, crate::server::refusal::TOO_LARGE);
            close(&mut r);
            return r;
        }
        Ok(Err(BodyError::Broken)) => return error(&req, crate::server::refusal::BROKEN_BODY),
        Err(_) => {
            let mut r = error(&req, crate::server::refusal::TOO_SLOW);
            close(&mut r);
            return r;
        }
    }
    let resp = route(&app, &req).await;
    metrics::observe(
        &req.method,
        &req.path,
        resp.status().as_u16(),
        started.elapsed(),
    );
    tracing::debug!(
        method = %req.method,
        path = %crate::auth::log_safe(&req.path, 200),
        status = resp.status().as_u16(),
        us = started.elapsed().as_micros() as u64,
        "request"
    );
    resp
}

/// Asks hyper to close the connection after this response (its body was not read).
fn close(r: &mut Resp) {
    r.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
    );
}

async fn route(app: &App, req: &Req) -> Resp {
    let segs: Vec<&str> = req.path.split('/').filter(|s| !s.is_empty()).collect();
    let changes = !matches!(req.method, Method::GET | Method::HEAD);
    if changes && !req.same_origin() {
        return error(req, crate::server::refusal::CROSS_SITE);
    }
    // Each feature's future is boxed (issue 17): a future is as large as its largest
    // branch, and an unboxed `route` made every connection's task carry the console's
    // and the pages' futures (17.5 KiB resident per idle connection, measured).
    match (&req.method, segs.as_slice()) {
        (&Method::GET, ["static", name]) => assets::serve(name),
        (&Method::GET, ["media", package, name]) => participant::media(app, req, package, name),
        (_, ["api", "v1", rest @ ..]) => Box::pin(api::route(app, req, rest)).await,
        (_, ["api", ..]) => not_found(req),
        (_, ["cek", rest @ ..]) => Box::pin(cek::route(app, req, rest)).await,
        (&Method::GET, ["metrics"]) => metrics::handle(app, req),
        (_, ["admin", "pcs", rest @ ..]) => Box::pin(cek::admin(app, req, rest)).await,
        (_, ["admin", rest @ ..]) => Box::pin(crate::console::route(app, req, rest)).await,
        _ => Box::pin(participant::route(app, req, &segs)).await,
    }
}
